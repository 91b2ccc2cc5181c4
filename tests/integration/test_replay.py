"""Operators' replay against a real broker: by time and sender from Kafka, re-published to
a replay topic at 10x, and opened as France (the embedded broker unless I247_BOOTSTRAP)."""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agents.ncb.adapter import NcbAdapter
from agents.ops.replay import JsonLinesOutput, TopicOutput, replay
from agents.ops.replay_command import bench_replay, register_replay, run_replay, topic_selector
from agents.ops.replay_filter import ReplayFilter
from agents.ops.replay_pacing import Pace
from brokers.clients import make_producer
from brokers.provisioning import provision
from brokers.record_headers import read_replay_mark
from brokers.records import ReceivedRecord
from brokers.replay_source import KafkaTimeSource
from brokers.settings import Settings
from schemas.bodies import MessageBody
from schemas.header import RoutingHeader
from schemas.topics import TopicKind, TopicSpec
from tests.unit.keyring import small_keyring

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SENDS = [("FRA", ["DEU"]), ("DEU", ["FRA"]), ("FRA", ["ITA"]), ("ITA", ["ESP"])]


async def publish_traffic(
    settings: Settings, count: int, *, start_ms: int, step_ms: int
) -> list[tuple[RoutingHeader, int]]:
    """Sealed messages from FRA, DEU and ITA, ``step_ms`` apart, plus one journal record."""
    directory, identities = small_keyring(Path(settings.keys_dir))
    topics = settings.topics
    await provision(
        str(settings.bootstrap),
        [TopicSpec(topics.inbound, TopicKind.INBOUND, partitions=2), *topics.core()[-2:]],
    )
    adapters = {c: NcbAdapter(identities[c], directory, topics) for c in ("FRA", "DEU", "ITA")}
    sent: list[tuple[RoutingHeader, int]] = []
    async with make_producer(settings) as producer:
        for i in range(count):
            sender, recipients = SENDS[i % len(SENDS)]
            stamp = start_ms + i * step_ms
            header, record = adapters[sender].compose(
                recipients,
                MessageBody(subject=f"message {i}", text="details"),
                now=datetime.fromtimestamp(stamp / 1000, UTC),
                random_bytes=os.urandom,
            )
            await producer.send_and_wait(
                record.topic,
                record.value,
                key=record.key,
                headers=list(record.headers),
                timestamp_ms=stamp,
            )
            sent.append((header, stamp))
        await producer.send_and_wait(
            topics.control, b'{"event":"hub-ready"}', timestamp_ms=start_ms + step_ms
        )
    return sent


async def read_all(settings: Settings, topic: str) -> list[ReceivedRecord]:
    async with KafkaTimeSource(settings, select=lambda t: t == topic) as source:
        return [record async for record in source]


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in text.splitlines()]


async def test_replays_from_kafka_by_time_range_and_sender(settings: Settings) -> None:
    start = int(time.time() * 1000) - 60_000
    sent = await publish_traffic(settings, 12, start_ms=start, step_ms=1_000)
    since, until = start + 2_500, start + 9_500
    expected = {h.message_id for h, stamp in sent if h.sender == "FRA" and since <= stamp < until}
    flt = ReplayFilter(since_ms=since, until_ms=until, senders=frozenset({"FRA"}))
    out = io.StringIO()
    async with KafkaTimeSource(
        settings, select=topic_selector(flt, settings.topics), since_ms=since
    ) as source:
        assert {r.topic for r in source.ranges} >= {
            settings.topics.inbound,
            settings.topics.control,
        }
        summary = await replay(source, flt, JsonLinesOutput(out))
    got = lines(out.getvalue())
    assert len(expected) == 3  # messages 4, 6 and 8
    assert {x["routing"]["message_id"] for x in got} == expected
    assert summary.selected == len(got) == len(expected)
    assert all(x["routing"]["sender"] == "FRA" for x in got)
    # by time and topic alone, the journal record (no routing header) is replayed too
    everything = io.StringIO()
    async with KafkaTimeSource(settings, select=lambda t: True) as source:
        await replay(source, ReplayFilter(since_ms=start), JsonLinesOutput(everything))
    every = lines(everything.getvalue())
    assert len(every) == len(sent) + 1
    assert [x["routing"] is None for x in every].count(True) == 1
    assert [x["timestamp_ms"] for x in every] == sorted(x["timestamp_ms"] for x in every)


async def test_republishes_at_10x_in_order_per_key_and_marks_every_record(
    settings: Settings,
) -> None:
    start = int(time.time() * 1000) - 10_000
    sent = await publish_traffic(settings, 16, start_ms=start, step_ms=100)
    inbound = settings.topics.inbound
    originals = await read_all(settings, inbound)
    replay_topic = settings.topics.replay("drill")
    await provision(str(settings.bootstrap), [TopicSpec(replay_topic, TopicKind.REPLAY)])
    flt = ReplayFilter(topics=frozenset({inbound}))
    async with make_producer(settings) as producer:
        summary = await replay(
            originals, flt, TopicOutput(producer, replay_topic, "drill"), pace=Pace(10.0)
        )
    assert summary.selected == len(sent) == len(originals)
    replayed = await read_all(settings, replay_topic)
    assert [r.value for r in replayed] == [r.value for r in originals]
    by_origin = {(r.topic, r.partition, r.offset): r for r in originals}
    per_key: dict[bytes | None, list[int]] = defaultdict(list)
    for record in replayed:
        mark = read_replay_mark(record.headers)
        assert mark is not None
        assert mark.name == "drill"
        original = by_origin[(mark.topic, mark.partition, mark.offset)]
        assert (record.key, record.value, mark.timestamp_ms) == (
            original.key,
            original.value,
            original.timestamp_ms,
        )
        per_key[record.key].append(mark.offset)
    assert all(offsets == sorted(offsets) for offsets in per_key.values())
    assert len(per_key) == 3
    assert len(await read_all(settings, inbound)) == len(originals)  # nothing went live


async def test_as_fra_opens_frances_messages_and_no_one_elses(
    settings: Settings, tmp_path: Path
) -> None:
    start = int(time.time() * 1000) - 30_000
    sent = await publish_traffic(settings, 8, start_ms=start, step_ms=500)
    parser = argparse.ArgumentParser()
    register_replay(parser.add_subparsers(dest="command"))
    out = tmp_path / "fra.jsonl"
    args = parser.parse_args(
        [
            *("replay", "--from-kafka", "--since", "5m", "--topic", "inbound", "--as", "FRA"),
            *("--format", "jsonl", "--output", str(out)),
        ]
    )
    assert await run_replay(settings, args) == 0
    got = lines(out.read_text())
    assert len(got) == len(sent)
    for entry in got:
        routing = entry["routing"]
        frances = routing["sender"] == "FRA" or "FRA" in routing["recipients"]
        assert entry["opening"] == ("opened" if frances else "headers only")
        assert (entry["body"] is not None) == frances
        if frances:
            assert entry["body"]["subject"].startswith("message ")
    assert {e["opening"] for e in got} == {"opened", "headers only"}


async def test_bench_replay_reports_both_outputs(settings: Settings) -> None:
    """Also reads back a topic written in multi-record batches (Tansu under-counts its end)."""
    start = int(time.time() * 1000) - 10_000
    await publish_traffic(settings, 8, start_ms=start, step_ms=10)
    originals = await read_all(settings, settings.topics.inbound)
    figures = await bench_replay(originals, settings, name="bench")
    assert figures["records"] == len(originals) == 8
    assert figures["jsonl_records_per_s"] > 0
    assert figures["topic_records_per_s"] > 0
    assert len(await read_all(settings, settings.topics.replay("bench"))) == 8
