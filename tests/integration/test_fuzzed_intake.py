"""Fuzzed intake on a real broker and a real hub: no processor stops, nothing is lost.

Spoiled records drawn by hypothesis (``tests.unit.fuzzing``) are interleaved with good
ones and good ones decorated with extra headers, each tagged with an input id in a header
of its own; the checker (``agents.bench.checker``) then compares what was sent with what the
real inbox and dead-letter topics hold. Good traffic sent after the whole batch must still
be delivered: a processor that stopped on a bad record would lose it.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from agents.bench.checker import Landing, check
from brokers.records import OutboundRecord, ReceivedRecord
from brokers.settings import Settings
from schemas.bodies import MessageBody
from schemas.keys import Directory, PrivateIdentity
from tests.integration.harness import Backbone, now, running
from tests.unit.fuzzing import decorated, fuzzed_record

pytestmark = pytest.mark.integration

BODY = MessageBody(subject="Fuzzing the intake", text="a good message among bad ones")
TAG = "t-input"
SPOILED, DECORATED, GOOD_BEFORE, GOOD_AFTER = 120, 10, 20, 10


def draw(strategy: st.SearchStrategy[OutboundRecord], count: int) -> list[OutboundRecord]:
    """``count`` examples of ``strategy``, generated (not shrunk) the same way every run."""
    drawn: list[OutboundRecord] = []

    @hypothesis_settings(
        max_examples=count,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(record: OutboundRecord) -> None:
        drawn.append(record)

    collect()
    return drawn[:count]


def tagged(record: OutboundRecord, input_id: str) -> OutboundRecord:
    return record.with_headers([(TAG, input_id.encode())])


def landing(record: ReceivedRecord, place: str) -> Landing:
    return ((record.header(TAG) or b"<untagged>").decode(), place)


async def test_fuzzed_records_are_dead_lettered_and_good_ones_still_delivered(
    settings: Settings,
    keys_dir: Path,
    keyring: tuple[Directory, dict[str, PrivateIdentity]],
    tmp_path: Path,
) -> None:
    async with running(settings, keys_dir, keyring, tmp_path) as backbone:
        await _run(backbone)


async def _run(backbone: Backbone) -> None:
    fra = backbone.adapter("FRA")
    max_bytes = backbone.settings.max_message_bytes
    topics = backbone.settings.topics

    def good() -> tuple[str, OutboundRecord]:
        header, record = fra.compose(["DEU"], BODY, now=now(), random_bytes=os.urandom)
        return header.message_id, record

    expected: dict[str, set[str]] = {}
    batch: list[OutboundRecord] = []
    seed_id, seed = good()
    for index, spoiled in enumerate(draw(fuzzed_record(seed, max_bytes=max_bytes), SPOILED)):
        expected[f"spoiled-{index}"] = {"deadletter"}
        batch.append(tagged(spoiled, f"spoiled-{index}"))
    for _ in range(GOOD_BEFORE):
        message_id, record = good()
        expected[message_id] = {"inbox:DEU"}
        batch.append(tagged(record, message_id))
    for extra in draw(decorated(seed), DECORATED):
        message_id, record = good()
        expected[message_id] = {"inbox:DEU"}
        batch.append(tagged(record.with_headers(extra.headers[len(seed.headers) :]), message_id))
    random.Random(12).shuffle(batch)
    for record in batch:
        await backbone.send(record)
    for _ in range(GOOD_AFTER):
        message_id, record = good()
        expected[message_id] = {"inbox:DEU"}
        await backbone.send(tagged(record, message_id))
    assert seed_id not in expected

    wanted = sum(len(places) for places in expected.values())
    watched = [topics.inbox("DEU"), topics.deadletter]
    await backbone.read(watched, until=lambda rs: len(rs) >= wanted, timeout=75)
    records = await backbone.read_all(watched)
    observed = [
        landing(r, "deadletter" if r.topic == topics.deadletter else "inbox:DEU") for r in records
    ]

    checked = check(expected, observed)
    assert checked.valid, checked
    assert checked.summary()["landings"] == wanted
    assert all(backbone_alive.poll() is None for backbone_alive in backbone.hubs.values())
    dead = [r for r in records if r.topic == topics.deadletter]
    for letter in dead:
        assert letter.header("i247.dlq.reason"), landing(letter, "deadletter")
        assert letter.header("i247.dlq.detail")
    if os.environ.get("FAULTS_REPORT"):
        reasons = Counter((r.header("i247.dlq.reason") or b"").decode() for r in dead)
        print(checked.summary(), dict(reasons))
