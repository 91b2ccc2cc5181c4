"""The audit archive's measure: archive write rate under live traffic, ``audit verify``
records/s, and replay records/s to JSON Lines and to a topic, over a large archive.

Theory of operation, four parts on one broker (``settings.bootstrap``, else an embedded
Tansu started here):

1. **Live**: an ``Archiver`` runs against the broker while sealed envelopes are produced
   to backbone topics (inbound, a lane, NCB inboxes) at ``live_rate`` records/s for
   ``live_seconds``. Reported: records archived per second (first send to last record
   archived), the largest lag seen (records acknowledged by the broker, not yet archived;
   sampled every 50 ms from counts, never from broker end offsets, which Tansu
   under-reports) and the catch-up time after the last send.
2. **Build**: an archive of ``records`` records written through the archive's own append
   path (sealed envelopes cycled from a pool, four inbound partitions, a signed head every
   100,000 records), cached as ``<data_dir>/audit-bench/archive-<records>.sqlite3`` and
   reused while its heads are signed by the bench keyring's auditor.
3. **Verify**: ``verify_archive`` over it (every leaf recomputed, every head checked).
4. **Replay**: the archive (or its first ``jsonl_records``: JSON Lines of sealed messages
   are ~6 KB a record, so a full million writes ~6 GB) to a JSON Lines file (deleted
   after), then the first
   ``topic_records`` to ``<prefix>.replay.bench`` as fast as possible: the embedded broker
   holds records in memory, so re-publishing a million 1.5 KB records there would measure
   its memory, not replay; ``replay_topic_full`` says whether the slice was the whole.

Nothing here asserts a speed; the figures are what was measured.

    figures = await bench_audit(settings, records=1_000_000)
    print_audit_bench(figures, Console())
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from rich.console import Console
from rich.table import Table

from agents.ncb.adapter import NcbAdapter
from agents.ops.audit import verify_archive
from agents.ops.replay import JsonLinesOutput, TopicOutput, replay
from agents.ops.replay_filter import ReplayFilter
from brokers.archive_source import ArchiveSource
from brokers.archive_store import ArchiveStore
from brokers.clients import make_producer
from brokers.embedded import broker_for
from brokers.logs import configure_logging
from brokers.provisioning import provision
from brokers.records import OutboundRecord
from brokers.settings import Settings
from schemas.archive import ArchivedRecord, sign_tree_head
from schemas.bodies import MessageBody
from schemas.header import Precedence
from schemas.keys import Directory, init_keyring, load_directory, load_identity
from schemas.participants import AUDITOR, HUB_SITES, hub_id
from schemas.topics import TopicCatalog, TopicKind, TopicSpec
from streams.archive.archiver import Archiver

__all__ = [
    "AuditBenchFigures",
    "bench_archive_path",
    "bench_audit",
    "full_bench_command",
    "print_audit_bench",
]

NCBS = ("FRA", "DEU", "ITA", "ESP")
TEXT = "Identification of suspect via fingerprints; request for criminal record check. " * 10
HEAD_EVERY = 100_000
BUILD_BATCH = 10_000


class BenchArchiveError(RuntimeError):
    """The live archiver fell too far behind to finish; the message gives the counts."""


@dataclass(frozen=True, slots=True)
class AuditBenchFigures:
    """What one ``bench_audit`` run measured (rates in records/s)."""

    records: int
    archive_bytes: int
    archive_reused: bool
    build_records_per_s: float | None  # None when the cached archive was reused
    live_records: int
    live_offered_per_s: float
    live_archived_per_s: float
    live_max_lag: int
    live_catch_up_s: float
    verify_records_per_s: float
    verify_s: float
    verify_heads: int
    replay_jsonl_records: int
    replay_jsonl_records_per_s: float
    replay_jsonl_full: bool
    replay_topic_records: int
    replay_topic_records_per_s: float
    replay_topic_full: bool

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def bench_archive_path(settings: Settings, records: int) -> Path:
    """Where the generated archive of ``records`` records is cached."""
    return Path(settings.data_dir) / "audit-bench" / f"archive-{records}.sqlite3"


def _keyring(settings: Settings) -> Path:
    keys = Path(settings.data_dir) / "audit-bench" / "keys"
    init_keyring(keys, [*NCBS, *(hub_id(s) for s in HUB_SITES), AUDITOR])
    return keys


def _envelopes(
    keys: Path, directory: Directory, topics: TopicCatalog, count: int
) -> list[OutboundRecord]:
    """``count`` sealed messages between the bench NCBs, as composed for the inbound topic."""
    adapters = {c: NcbAdapter(load_identity(keys, c), directory, topics) for c in NCBS}
    now = datetime.now(UTC)
    pool = []
    for n in range(count):
        sender = NCBS[n % len(NCBS)]
        recipient = NCBS[(n + 1) % len(NCBS)]
        _, record = adapters[sender].compose(
            [recipient],
            MessageBody(subject=f"bench {n}", text=TEXT),
            now=now,
            random_bytes=os.urandom,
        )
        pool.append(record)
    return pool


# --- 1. live ----------------------------------------------------------------------------


async def _live(
    settings: Settings, keys: Path, directory: Directory, *, rate: float, seconds: float
) -> dict[str, Any]:
    topics = settings.topics
    assert settings.bootstrap is not None
    await provision(settings.bootstrap, [*topics.core(), *topics.inboxes(list(NCBS))])
    pool = _envelopes(keys, directory, topics, 200)
    lane = topics.lane(HUB_SITES[0], Precedence.ROUTINE)
    targets = itertools.cycle(
        [topics.inbound, topics.inbound, lane, *(topics.inbox(c) for c in NCBS)]
    )
    total = max(1, int(rate * seconds))
    with tempfile.TemporaryDirectory(prefix="i247-live-archive-") as scratch:
        archiver = Archiver(
            settings,
            Path(scratch) / "live.sqlite3",
            load_identity(keys, AUDITOR),
            head_seconds=1.0,
            refresh_seconds=1.0,
        )
        await archiver.start()
        acked = [0]  # records the broker acknowledged so far, updated while sending
        max_lag = 0

        def lag() -> int:  # head events the archiver wrote itself are not traffic
            return max(0, acked[0] - (archiver.archived - archiver.heads_signed))

        async def watch() -> None:
            nonlocal max_lag
            while True:
                max_lag = max(max_lag, lag())
                await asyncio.sleep(0.05)

        watcher = asyncio.create_task(watch())
        try:
            async with make_producer(settings) as producer:
                started = time.perf_counter()
                await _produce_at(producer, pool, targets, total, rate, started, acked)
                sent_s = time.perf_counter() - started
            last_sent = time.perf_counter()
            deadline = last_sent + 120
            while lag():
                if time.perf_counter() > deadline:
                    raise BenchArchiveError(
                        f"the archiver is {lag()} of {acked[0]} records behind 120 s after the "
                        "last send; lower the live rate"
                    )
                await asyncio.sleep(0.01)
            done = time.perf_counter()
        finally:
            watcher.cancel()
            await archiver.stop()
    return {
        "live_records": acked[0],
        "live_offered_per_s": acked[0] / sent_s,
        "live_archived_per_s": acked[0] / (done - started),
        "live_max_lag": max(max_lag, 0),
        "live_catch_up_s": done - last_sent,
    }


async def _produce_at(
    producer: AIOKafkaProducer,
    pool: list[OutboundRecord],
    targets: Iterator[str],
    total: int,
    rate: float,
    started: float,
    acked: list[int],
) -> None:
    """Send ``total`` records at ``rate``/s in 20 ms slices, counting acks in ``acked[0]``."""
    pending: list[asyncio.Future[Any]] = []
    for n in range(total):
        record = pool[n % len(pool)]
        pending.append(
            await producer.send(
                next(targets), record.value, key=record.key, headers=list(record.headers)
            )
        )
        if len(pending) >= max(1, int(rate / 50)):
            await asyncio.gather(*pending)
            acked[0] += len(pending)
            pending = []
            ahead = started + (n + 1) / rate - time.perf_counter()
            if ahead > 0:
                await asyncio.sleep(ahead)
    await asyncio.gather(*pending)
    acked[0] += len(pending)


# --- 2. build ---------------------------------------------------------------------------


def _usable(path: Path, records: int, auditor_kids: set[str]) -> bool:
    if not path.exists():
        return False
    try:
        with ArchiveStore.open_reader(path) as store:
            heads = store.heads()
            return (
                store.size == records
                and bool(heads)
                and heads[-1].size == records
                and all(h.key_id in auditor_kids for h in heads)
            )
    except Exception:  # a half-written or foreign file: build anew
        return False


def _build(path: Path, records: int, pool: list[OutboundRecord], keys: Path, prefix: str) -> float:
    """Write the archive through the append path; returns records/s."""
    for stale in path.parent.glob(path.name + "*"):
        stale.unlink()
    signing = load_identity(keys, AUDITOR).signing_key
    base_ms = int(time.time() * 1000) - records  # one record a millisecond, ending now
    started = time.perf_counter()
    with ArchiveStore.open_writer(path) as store:
        for first in range(0, records, BUILD_BATCH):
            store.append(
                ArchivedRecord(
                    f"{prefix}.inbound",
                    n % 4,
                    n // 4,
                    base_ms + n,
                    pool[n % len(pool)].key,
                    pool[n % len(pool)].value,
                    pool[n % len(pool)].headers,
                )
                for n in range(first, min(first + BUILD_BATCH, records))
            )
            if store.size % HEAD_EVERY == 0 or store.size == records:
                store.add_head(
                    sign_tree_head(store.size, store.root(), base_ms + store.size, signing)
                )
                store.mark_published(store.size)
    return records / (time.perf_counter() - started)


# --- 4. replay --------------------------------------------------------------------------


async def _replay_jsonl(path: Path, scratch: Path, limit: int | None) -> tuple[int, float]:
    target = scratch / "replay.jsonl"
    try:
        with ArchiveSource(path) as source, target.open("w") as out:
            started = time.perf_counter()
            summary = await replay(source, ReplayFilter(), JsonLinesOutput(out), limit=limit)
            elapsed = time.perf_counter() - started
    finally:
        target.unlink(missing_ok=True)
    return summary.selected, summary.selected / elapsed


async def _replay_topic(settings: Settings, path: Path, limit: int) -> tuple[int, float]:
    topic = settings.topics.replay("bench")
    assert settings.bootstrap is not None
    await provision(settings.bootstrap, [TopicSpec(topic, TopicKind.REPLAY)])
    async with make_producer(settings) as producer:
        with ArchiveSource(path) as source:
            started = time.perf_counter()
            summary = await replay(
                source, ReplayFilter(), TopicOutput(producer, topic, "bench"), limit=limit
            )
            elapsed = time.perf_counter() - started
    return summary.selected, summary.selected / elapsed


# --- the whole ----------------------------------------------------------------------------


async def bench_audit(
    settings: Settings,
    *,
    records: int = 1_000_000,
    live_rate: float = 2_000.0,
    live_seconds: float = 10.0,
    topic_records: int = 100_000,
    jsonl_records: int | None = None,
    console: Console | None = None,
) -> AuditBenchFigures:
    """Measure the archive live, build (or reuse) an archive of ``records``, verify it,
    replay it to JSON Lines and (up to ``topic_records``) to a topic."""

    def say(text: str) -> None:
        if console is not None:
            console.print(text)

    keys = _keyring(settings)
    directory = load_directory(keys)
    auditor_kids = set(directory.get(AUDITOR).signing)
    async with broker_for(settings) as bootstrap:
        run = settings.model_copy(
            update={"bootstrap": bootstrap, "topic_prefix": f"benchaudit{uuid.uuid4().hex[:6]}"}
        )
        say(f"live: archiver on {bootstrap}, {live_rate:,.0f} records/s for {live_seconds:g} s")
        live = await _live(run, keys, directory, rate=live_rate, seconds=live_seconds)
        say(f"live: {live['live_archived_per_s']:,.0f} records/s, max lag {live['live_max_lag']:,}")
        path = bench_archive_path(settings, records)
        path.parent.mkdir(parents=True, exist_ok=True)
        reused = await asyncio.to_thread(_usable, path, records, auditor_kids)
        build_rate: float | None = None
        if not reused:
            say(f"build: {records:,} records into {path}")
            pool = _envelopes(keys, directory, run.topics, 500)
            build_rate = await asyncio.to_thread(_build, path, records, pool, keys, "i247bench")
            say(f"build: {build_rate:,.0f} records/s")
        say(f"verify: {path}")
        report = await asyncio.to_thread(verify_archive, path, directory.get(AUDITOR).signing)
        if not report.ok:
            raise AssertionError(f"the bench archive fails verification: {report.first}")
        rate = report.records / report.seconds
        say(f"verify: {report.records:,} records, {rate:,.0f} records/s")
        say(f"replay: {min(records, jsonl_records or records):,} records to JSON Lines")
        with tempfile.TemporaryDirectory(prefix="i247-replay-", dir=path.parent) as scratch:
            jsonl_records, jsonl_rate = await _replay_jsonl(path, Path(scratch), jsonl_records)
        say(f"replay: {jsonl_records:,} records to JSON Lines at {jsonl_rate:,.0f} records/s")
        say(f"replay: {min(records, topic_records):,} records to a topic")
        topic_done, topic_rate = await _replay_topic(run, path, topic_records)
        say(f"replay: {topic_done:,} records to a topic at {topic_rate:,.0f} records/s")
    return AuditBenchFigures(
        records=report.records,
        archive_bytes=path.stat().st_size,
        archive_reused=reused,
        build_records_per_s=build_rate,
        verify_records_per_s=report.records / report.seconds,
        verify_s=report.seconds,
        verify_heads=report.heads,
        replay_jsonl_records=jsonl_records,
        replay_jsonl_records_per_s=jsonl_rate,
        replay_jsonl_full=jsonl_records == report.records,
        replay_topic_records=topic_done,
        replay_topic_records_per_s=topic_rate,
        replay_topic_full=topic_done == report.records,
        **live,
    )


def print_audit_bench(figures: AuditBenchFigures, console: Console) -> None:
    """The figures as one rich table."""
    table = Table(title=f"audit archive bench ({figures.records:,}-record archive)")
    table.add_column("measure")
    table.add_column("records", justify="right")
    table.add_column("records/s", justify="right")
    table.add_column("note")
    table.add_row(
        "archive, live traffic",
        f"{figures.live_records:,}",
        f"{figures.live_archived_per_s:,.0f}",
        f"offered {figures.live_offered_per_s:,.0f}/s; max lag {figures.live_max_lag:,} records; "
        f"caught up {figures.live_catch_up_s:.2f} s after the last send",
    )
    build = (
        "reused (cached)"
        if figures.build_records_per_s is None
        else f"{figures.build_records_per_s:,.0f}"
    )
    table.add_row(
        "archive, bulk append",
        f"{figures.records:,}",
        build,
        f"file {figures.archive_bytes / 1e9:.2f} GB",
    )
    table.add_row(
        "audit verify",
        f"{figures.records:,}",
        f"{figures.verify_records_per_s:,.0f}",
        f"{figures.verify_s:.1f} s, {figures.verify_heads} signed heads",
    )
    table.add_row(
        "replay to JSON Lines",
        f"{figures.replay_jsonl_records:,}",
        f"{figures.replay_jsonl_records_per_s:,.0f}",
        "whole archive" if figures.replay_jsonl_full else "first records only (--jsonl-records)",
    )
    slice_note = (
        "whole archive"
        if figures.replay_topic_full
        else f"first {figures.replay_topic_records:,} only: the embedded broker keeps all in memory"
    )
    table.add_row(
        "replay to a topic",
        f"{figures.replay_topic_records:,}",
        f"{figures.replay_topic_records_per_s:,.0f}",
        slice_note,
    )
    console.print(table)


def full_bench_command(args: argparse.Namespace, settings: Settings) -> int:
    """``i247 audit bench --full``: the live archiver, verify and replay (see above)."""
    log_path = Path(settings.data_dir) / "audit-bench" / "bench.log"
    configure_logging("warning", log_path)
    console = Console()
    figures = asyncio.run(
        bench_audit(
            settings,
            records=args.records,
            live_rate=args.live_rate,
            live_seconds=args.live_seconds,
            topic_records=args.topic_records,
            jsonl_records=args.jsonl_records,
            console=console,
        )
    )
    print_audit_bench(figures, console)
    if args.json:
        args.json.write_text(json.dumps(figures.as_json(), indent=2), encoding="utf-8")
    return 0
