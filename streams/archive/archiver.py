"""The archiver: every record of every backbone topic, appended to the audit archive.

Theory of operation. A plain aiokafka consumer with ``assign()`` (no group: a join costs
half the session timeout on Tansu, and the archive is its own offset store) reads every
partition of every topic named ``<prefix>.*``. Each ``getmany`` batch is appended in one
SQLite transaction (brokers.archive_store); the next fetch position of a partition is
always its last archived offset + 1, so a crash at any point loses nothing and archives
nothing twice. Topics that appear later (team inboxes) are found by listing the broker's
metadata every ``refresh_seconds`` (a fresh MetadataRequest for all topics: the consumer's
own metadata cache only knows the topics it was told about).

Every ``head_seconds``, or after ``head_records`` new records, the archiver signs a tree
head with the auditor's key, stores it and publishes it to ``<prefix>.control`` as a
``tree-head`` journal event. That event is archived too; it does not by itself call for
another head, so an idle backbone gets no stream of heads about heads. A head is stored
(marked unpublished) before it is sent and marked published after the broker acknowledges
it; on start, heads still unpublished (a crash in between) are sent again, so every head
reaches the control topic at least once.

The archiver is ready (``/readyz`` on ``I247_METRICS_PORT``, ``streams.health.probes``) once it
has caught up with the backbone once: it archived up to the end offsets the broker reported
at start, or a fetch found nothing new (under steady traffic fetches are never empty).

After an empty fetch the archiver rests ``pace_ms`` (4 s) with its partitions paused
(``brokers.fetch_wait.FetchPace``): its fetches name every partition of the backbone.

Correctness never rests on the broker's end offsets (the embedded Tansu broker
under-reports them after multi-record batches): positions come from the archive, and
the loop simply fetches whatever follows them.

    archiver = Archiver(settings, path, load_identity(settings.keys_dir, AUDITOR))
    await archiver.start()
    ...
    await archiver.stop()  # signs a last head for whatever came since the previous one
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.client import AIOKafkaClient

from brokers.access import client_security
from brokers.archive_store import ArchiveStore
from brokers.clients import BACKGROUND_FETCH_WAIT_MS, make_consumer, make_producer
from brokers.fetch_wait import FetchPace, rest_paused
from brokers.record_headers import cloudevent_headers, header_value
from brokers.settings import Settings
from schemas.archive import ArchivedRecord, TreeHead, sign_tree_head
from schemas.header import format_timestamp
from schemas.keys import PrivateIdentity, load_identity
from schemas.participants import AUDITOR
from streams.health.metrics import ArchiverMetrics
from streams.health.probes import Probes, ProbeServer

__all__ = ["HEAD_EVENT_TYPE", "Archiver", "head_event", "run_archiver"]

log = structlog.get_logger("i247.archiver")

HEAD_EVENT_TYPE = "int.interpol.i247.control.tree-head.v1"
_SOURCE = f"/i247/{AUDITOR}"
ARCHIVE_PACE_MS = 4_000
"""After an empty fetch the archiver rests this long, its partitions paused: each fetch names
every partition of the backbone (Tansu's CPU per fetch grows with them), and nobody waits on
the archive; under traffic fetches are never empty, so it never rests then."""
ARCHIVE_BUSY_PACE_MS = 3_000
"""...and this long after a fetch that brought records: under traffic each fetch returns
records of the lanes and intake, and Tansu's CPU for such a fetch grows with the record
batches already in those partitions (``brokers.fetch_wait.FetchPace``). At idle the
journals' beats and renewals keep every fetch busy; each rest costs two fetches (aiokafka's
prefetch is in flight when the partitions pause), so 1.5 s made it one fetch a second of
218 partitions, a fifth of the broker's idle CPU; 3 s (and 4 s) halved it."""


def head_event(
    control_topic: str, head: TreeHead, event_id: str
) -> tuple[str, bytes, bytes, list[tuple[str, bytes]]]:
    """The journal record announcing a signed tree head: (topic, key, value, headers)."""
    when = datetime.fromtimestamp(head.timestamp_ms / 1000, UTC)
    body = {"event": "tree-head", "participant": AUDITOR, "time": format_timestamp(when)}
    body.update(head.to_json())
    headers = cloudevent_headers(
        event_id, _SOURCE, HEAD_EVENT_TYPE, when, content_type="application/json"
    )
    return control_topic, AUDITOR.encode(), json.dumps(body).encode(), headers


def _is_own_head(record: ArchivedRecord) -> bool:
    headers = [(name, value or b"") for name, value in record.headers]
    return (
        header_value(headers, "ce_type") == HEAD_EVENT_TYPE.encode()
        and header_value(headers, "ce_source") == _SOURCE.encode()
    )


class Archiver:
    """Consume every ``<prefix>.*`` topic into the archive; start, run in the background, stop."""

    def __init__(
        self,
        settings: Settings,
        archive_path: Path,
        identity: PrivateIdentity,
        *,
        head_seconds: float = 5.0,
        head_records: int = 10_000,
        refresh_seconds: float = 2.0,
        batch_records: int = 5_000,
        pace_ms: int = ARCHIVE_PACE_MS,
        busy_pace_ms: int = ARCHIVE_BUSY_PACE_MS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if identity.participant != AUDITOR:
            raise ValueError(f"tree heads are signed by {AUDITOR!r}, not {identity.participant!r}")
        self.settings = settings
        self.path = archive_path
        self.identity = identity
        self.head_seconds = head_seconds
        self.head_records = head_records
        self.refresh_seconds = refresh_seconds
        self.batch_records = batch_records
        self.clock = clock
        self.archived = 0  # records appended by this run (the file may hold more)
        self.heads_signed = 0  # tree heads signed by this run
        self.caught_up = False  # reached the end offsets seen at start, or found nothing new
        self._behind: dict[tuple[str, int], int] = {}  # end offsets at start not reached yet
        self.metrics = ArchiverMetrics()
        self._prefix = f"{settings.topic_prefix}."
        self._store: ArchiveStore | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._metadata: AIOKafkaClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._assigned: set[TopicPartition] = set()
        self._unsigned = 0  # records since the last head, our own head events aside
        self._pace = FetchPace(pace_ms, busy_pace_ms)
        self._last_head = 0.0

    @property
    def leaves(self) -> int:
        """Records in the archive file now (earlier runs included); 0 before ``start``."""
        return 0 if self._store is None else self._store.size

    async def start(self) -> None:
        self._store = await asyncio.to_thread(ArchiveStore.open_writer, self.path)
        # every partition of every topic in each fetch, and nobody waits on the archive:
        # fetch at the idle pace always (measured idle: the broker's share fell by half)
        self._consumer = make_consumer(
            self.settings,
            fetch_max_wait_ms=max(BACKGROUND_FETCH_WAIT_MS, self.settings.idle_fetch_wait_ms),
        )
        self._producer = make_producer(self.settings)
        self._metadata = AIOKafkaClient(
            bootstrap_servers=self.settings.bootstrap, **client_security(self.settings)
        )
        await self._metadata.bootstrap()
        await self._consumer.start()
        await self._producer.start()
        self._last_head = self.clock()
        for head in self._store.unpublished_heads():  # stored, then a crash before sending
            await self._publish(head)
            log.info("tree-head-republished", size=head.size, root=head.root.hex())
        await self._refresh()
        await self._note_ends()
        self._task = asyncio.create_task(self._run(), name="i247-archiver")
        log.info("archiver-started", archive=str(self.path), leaves=self._store.size)

    async def stop(self) -> None:
        """Stop consuming, sign a last head if anything new came, close everything."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            if self._store is not None and self._unsigned:
                await self._sign_head()
        finally:
            for client in (self._consumer, self._producer):
                if client is not None:
                    await client.stop()
            if self._metadata is not None:
                await self._metadata.close()
            if self._store is not None:
                self._store.close()
            log.info("archiver-stopped", archive=str(self.path), archived=self.archived)

    async def wait(self) -> None:
        """Until the background loop ends (it ends only by stop() or an error)."""
        if self._task is not None:
            await self._task

    async def _refresh(self) -> None:
        """Assign every partition of every topic under the prefix; new ones from their start."""
        assert self._consumer is not None
        assert self._store is not None
        assert self._metadata is not None
        cluster = await self._metadata.fetch_all_metadata()  # a fresh listing, not the cache
        wanted = {
            TopicPartition(topic, partition)
            for topic in cluster.topics()
            if topic.startswith(self._prefix)
            for partition in cluster.partitions_for_topic(topic) or ()
        }
        if wanted <= self._assigned:
            return
        self._consumer.assign(sorted(wanted))
        positions = self._store.positions()
        fresh: list[TopicPartition] = []
        for tp in sorted(wanted):
            last = positions.get((tp.topic, tp.partition))
            if last is None:
                fresh.append(tp)
            else:
                self._consumer.seek(tp, last + 1)
        if fresh:
            await self._consumer.seek_to_beginning(*fresh)
        log.info("archiver-assigned", partitions=len(wanted), new=len(wanted - self._assigned))
        self._assigned = wanted

    async def _run(self) -> None:
        assert self._consumer is not None
        assert self._store is not None
        next_refresh = self.clock() + self.refresh_seconds
        while True:
            if self.clock() >= next_refresh:
                await self._refresh()
                next_refresh = self.clock() + self.refresh_seconds
            batch = await self._consumer.getmany(timeout_ms=200, max_records=self.batch_records)
            records = [
                ArchivedRecord(
                    r.topic,
                    r.partition,
                    r.offset,
                    r.timestamp,
                    r.key,
                    r.value,
                    tuple(r.headers or ()),
                )
                for chunk in batch.values()
                for r in chunk
            ]
            if records:
                appended = await asyncio.to_thread(self._store.append, records)
                self.archived += len(appended)
                self._unsigned += sum(1 for r in appended if not _is_own_head(r))
                self.metrics.appended(len(appended), self._store.size)
            if not self.caught_up:
                self._catching_up(records)
            now = self.clock()
            if self._unsigned and (
                self._unsigned >= self.head_records or now - self._last_head >= self.head_seconds
            ):
                await self._sign_head()
            rest = self._pace.after(len(records), time.monotonic() * 1000)
            if rest:
                await self._rest(rest / 1000)

    async def _rest(self, seconds: float) -> None:
        """No fetch for ``seconds`` (every partition paused)."""
        assert self._consumer is not None
        await rest_paused(self._consumer, sorted(self._assigned), seconds)

    async def _note_ends(self) -> None:
        """The end offsets at start that the archive has not reached: caught up once none is
        left (Tansu may under-report them: an empty fetch also counts as caught up)."""
        assert self._consumer is not None
        assert self._store is not None
        ends = await self._consumer.end_offsets(sorted(self._assigned))
        archived = self._store.positions()
        self._behind = {
            (tp.topic, tp.partition): end
            for tp, end in ends.items()
            if archived.get((tp.topic, tp.partition), -1) + 1 < end
        }

    def _catching_up(self, records: list[ArchivedRecord]) -> None:
        for record in records:
            key = (record.topic, record.partition)
            if key in self._behind and record.offset + 1 >= self._behind[key]:
                del self._behind[key]
        if not records or not self._behind:
            self.caught_up = True
            log.info("archiver-caught-up", leaves=self.leaves)

    async def _sign_head(self) -> TreeHead:
        assert self._store is not None
        store = self._store
        now = self.clock()
        head = sign_tree_head(store.size, store.root(), int(now * 1000), self.identity.signing_key)
        await asyncio.to_thread(store.add_head, head)
        self._unsigned = 0
        self._last_head = now
        self.heads_signed += 1
        self.metrics.head_signed()
        await self._publish(head)
        log.info("tree-head", size=head.size, root=head.root.hex(), key_id=head.key_id)
        return head

    async def _publish(self, head: TreeHead) -> None:
        """Send a stored head to the control topic, then mark it sent (at least once)."""
        assert self._store is not None
        assert self._producer is not None
        topic, key, value, headers = head_event(
            self.settings.topics.control, head, str(uuid.uuid4())
        )
        await self._producer.send_and_wait(topic, value, key=key, headers=headers)
        await asyncio.to_thread(self._store.mark_published, head.size)


async def run_archiver(
    settings: Settings,
    archive_path: Path,
    identity: PrivateIdentity | None = None,
    *,
    stop: asyncio.Event | None = None,
    head_seconds: float = 5.0,
    head_records: int = 10_000,
) -> int:
    """Archive until ``stop`` is set (or forever); returns the number of records archived.

    ``identity`` defaults to the auditor's keys in ``settings.keys_dir``.
    """
    if identity is None:
        identity = load_identity(Path(settings.keys_dir), AUDITOR)
    archiver = Archiver(
        settings, archive_path, identity, head_seconds=head_seconds, head_records=head_records
    )
    server: ProbeServer | None = None
    ticking: asyncio.Task[None] | None = None
    if settings.metrics_port:
        probes = Probes(archiver.metrics.registry, ready=lambda: archiver.caught_up)
        server = ProbeServer(probes, settings.metrics_port)
        server.start()
        ticking = asyncio.create_task(probes.tick_forever(), name="probes")
    try:
        await archiver.start()
        try:
            loop = asyncio.create_task(archiver.wait())
            waiters: set[asyncio.Task[Any]] = {loop}
            if stop is not None:
                waiters.add(asyncio.create_task(stop.wait()))
            done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            if loop in done:
                loop.result()  # the loop ended only by an error: raise it
        finally:
            await archiver.stop()
    finally:
        if ticking is not None:
            ticking.cancel()
        if server is not None:
            server.stop()
    return archiver.archived
