"""Replay from the audit archive on a real broker: live traffic archived by the Archiver,
then ``i247 replay --archive`` by time range and sender, as France, and re-published; and a
tree head stored but never sent before a crash is sent when the archiver restarts."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agents.ops.replay_command import register_replay, run_replay
from brokers.archive_store import ArchiveStore, iter_archive
from brokers.provisioning import provision
from brokers.record_headers import read_replay_mark
from brokers.settings import Settings
from schemas.archive import ArchivedRecord, sign_tree_head
from schemas.keys import load_identity
from schemas.participants import AUDITOR
from streams.archive.archiver import HEAD_EVENT_TYPE, Archiver
from tests.integration.test_archive import _archived, _until
from tests.integration.test_replay import lines, publish_traffic, read_all

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register_replay(parser.add_subparsers(dest="command"))
    return parser.parse_args(["replay", *argv])


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _archiver(settings: Settings, path: Path) -> Archiver:
    identity = load_identity(Path(settings.keys_dir), AUDITOR)
    return Archiver(settings, path, identity, head_seconds=0.3, refresh_seconds=0.3)


async def test_replay_from_the_archive_by_time_sender_and_as_france(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "archive.sqlite3"
    start = int(time.time() * 1000) - 60_000
    first = await publish_traffic(settings, 2, start_ms=start - 10_000, step_ms=1_000)
    archiver = _archiver(settings, path)  # keys and topics exist now
    await archiver.start()
    try:
        sent = await publish_traffic(settings, 12, start_ms=start, step_ms=1_000)
        inbound = settings.topics.inbound
        wanted = len(first) + len(sent)
        await _until(lambda: sum(r.topic == inbound for r in _archived(path)) >= wanted)
    finally:
        await archiver.stop()
    assert archiver.archived >= wanted

    since, until = start + 2_500, start + 9_500
    expected = {h.message_id for h, at in sent if h.sender == "FRA" and since <= at < until}
    assert len(expected) == 3  # messages 4, 6 and 8
    out = tmp_path / "fra-window.jsonl"
    args = _args(
        *("--archive", str(path), "--since", _iso(since), "--until", _iso(until)),
        *("--sender", "FRA", "--format", "jsonl", "--output", str(out)),
    )
    assert await run_replay(settings, args) == 0
    got = lines(out.read_text())
    assert {x["routing"]["message_id"] for x in got} == expected
    assert len(got) == len(expected)
    assert all(since <= x["timestamp_ms"] < until for x in got)

    as_france = tmp_path / "as-fra.jsonl"
    args = _args(
        *("--archive", str(path), "--since", _iso(start), "--topic", "inbound"),
        *("--as", "FRA", "--format", "jsonl", "--output", str(as_france)),
    )
    assert await run_replay(settings, args) == 0
    entries = lines(as_france.read_text())
    assert len(entries) == len(sent)
    for entry in entries:
        routing = entry["routing"]
        frances = routing["sender"] == "FRA" or "FRA" in routing["recipients"]
        assert entry["opening"] == ("opened" if frances else "headers only")
        assert (entry["body"] is not None) == frances
    assert {e["opening"] for e in entries} == {"opened", "headers only"}

    args = _args("--archive", str(path), "--topic", "inbound", "--publish", "from-archive")
    assert await run_replay(settings, args) == 0
    replayed = await read_all(settings, settings.topics.replay("from-archive"))
    archived = [r for r in iter_archive(path) if r.topic == inbound]
    assert [r.value for r in replayed] == [r.value for r in archived]
    marks = [read_replay_mark(r.headers) for r in replayed]
    assert [(m.topic, m.offset) for m in marks if m] == [(r.topic, r.offset) for r in archived]


async def test_a_head_stored_but_never_sent_is_sent_on_restart(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "archive.sqlite3"
    await publish_traffic(settings, 3, start_ms=int(time.time() * 1000) - 5_000, step_ms=10)
    await provision(str(settings.bootstrap), settings.topics.core())
    identity = load_identity(Path(settings.keys_dir), AUDITOR)
    # what an archiver does before it crashes: append what it read, store a head, no send
    read = await read_all(settings, settings.topics.inbound)
    with ArchiveStore.open_writer(path) as store:
        store.append(
            ArchivedRecord(
                r.topic, r.partition, r.offset, r.timestamp_ms, r.key, r.value, r.headers
            )
            for r in read
        )
        orphan = sign_tree_head(
            store.size, store.root(), int(time.time() * 1000), identity.signing_key
        )
        store.add_head(orphan)
    assert orphan.size == len(read) == 3

    def sent_heads() -> list[int]:
        return [
            json.loads(r.value or b"{}")["size"]
            for r in _archived(path)
            if dict(r.headers).get("ce_type") == HEAD_EVENT_TYPE.encode()
        ]

    restarted = _archiver(settings, path)
    await restarted.start()
    try:
        await _until(lambda: orphan.size in sent_heads())
    finally:
        await restarted.stop()
    with ArchiveStore.open_writer(path) as store:
        assert store.unpublished_heads() == []
    inbound = [r for r in iter_archive(path) if r.topic == settings.topics.inbound]
    assert len(inbound) == 3  # the restart archived nothing twice
    assert sent_heads().count(orphan.size) == 1
