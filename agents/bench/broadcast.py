"""The broadcast measure: how long a worldwide Red Notice takes to reach all 196 bureaus.

Theory of operation: ``bench_broadcast(settings, notices=20, rate=1.0)`` starts (or uses)
a broker, provisions a fresh prefix and starts one hub process (``i247 hub --site lyon``).
One reader, group-less (``assign``), follows the control topic and all 196 NCB inboxes
from offset 0; once the hub has journaled ``hub-ready``, random NCBs send sound worldwide
Red Notice requests (``agents.sim.notice_traffic.red_notice``, each for a different person)
to ``ccc`` at ``rate`` a second. The hub's notice desk publishes each and copies it to
every inbox, each copy sealed for its bureau alone (one signature, one key wrap; the same
message id). The reader opens each copy with that NCB's adapter and notes, per notice and
NCB, when the hub's producer took the copy (its record timestamp), when the copy was read
(its fetch) and when it was opened. Per notice: request sent -> last of 196 opened (and
read), published (``Notice.published_at``, the hub's clock; one machine, one clock) ->
last opened and -> last handed to the hub's producer (where the time goes: in the hub, or
in the broker and the reader), and sent -> first opened; p50/p99 over the notices that
reached all 196, and how many did. One process fetches and opens all 196 copies in turn,
so "last opened" includes this reader's CPU (196 opens of a small envelope per notice).

The baseline is the same shape in plain aiokafka on the same broker, at the same rate and
with the same record sizes (the request's, and the median notice copy's): a request topic
-> one consume-and-fan-out consumer producing one copy to each of 196 inbox topics -> one
reader of the 196 topics; request sent -> last of 196 received. No sealing, no review.
Nothing here asserts a speed; refused notices (none are expected) are counted, not timed.

Worked example::

    figures = await bench_broadcast(settings, notices=20, rate=1.0)
    figures["backbone"]["sent_to_last_opened"]["p50_ms"]   # e.g. 900.0
    print_broadcast_bench(figures, Console())
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import statistics
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from subprocess import Popen
from typing import Any, Literal

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.console import Console
from rich.table import Table

from agents.demo.run import start_hub
from agents.ncb.adapter import NcbAdapter, Opened
from agents.ops.keyring import load_all
from agents.ops.operations import provision_all
from agents.sim.notice_traffic import red_notice, red_notice_id
from agents.stats import latency_summary
from brokers.access import process_security
from brokers.clients import make_producer, terminate
from brokers.embedded import broker_for
from brokers.provisioning import provision
from brokers.record_headers import envelope_type
from brokers.settings import Settings
from brokers.tail import received_from_kafka
from schemas.bodies import NoticeBody, NoticeRequestBody
from schemas.header import MessageType
from schemas.journal import HubReady, NoticeDecided, parse_control_event
from schemas.notices import NoticeRequest, subject_identity
from schemas.participants import CCC
from schemas.registry import default_registry
from schemas.topics import TopicKind, TopicSpec

__all__ = [
    "Reach",
    "bench_broadcast",
    "print_broadcast_bench",
    "red_notices",
    "to_all",
    "to_first",
]

log = structlog.get_logger("i247.bench")

READY_SECONDS = 180.0  # a full-size database build precedes hub-ready the first time
DRAIN_SECONDS = 60.0  # after the last request, for the last copies to be read
NOTICE_TYPE = envelope_type(MessageType.NOTICE).encode()  # the copies' ce_type: skip the rest
PUBLISHED = "published"

Stage = Literal["produced", "read", "opened"]


# --- pure summaries ---------------------------------------------------------------------


@dataclass
class Reach:
    """One notice (or baseline request): when it left, and when each recipient had it.

    Per recipient: ``produced_at`` the copy's record timestamp (set by the writing producer
    as it took the record), ``read_at`` when it was fetched, ``opened_at`` when opened (the
    baseline opens nothing); times are ``time.time()`` seconds.
    """

    key: str
    sent_at: float
    published_at: float | None = None
    produced_at: dict[str, float] = field(default_factory=dict)
    read_at: dict[str, float] = field(default_factory=dict)
    opened_at: dict[str, float] = field(default_factory=dict)

    def stamps(self, stage: Stage) -> dict[str, float]:
        return {"produced": self.produced_at, "read": self.read_at, "opened": self.opened_at}[stage]


def to_all(
    reach: Reach, recipients: int, *, stage: Stage = "opened", since_published: bool = False
) -> float | None:
    """Milliseconds from the send (or the hub's publish) to the last of ``recipients`` copies.

    ``None`` while fewer than ``recipients`` have it, or if the publish time is unknown.

    >>> to_all(Reach("n", 10.0, opened_at={"FRA": 10.2, "DEU": 10.5}), 2)
    500.0
    """
    stamps = reach.stamps(stage)
    start = reach.published_at if since_published else reach.sent_at
    if not stamps or len(stamps) < recipients or start is None:
        return None
    return round((max(stamps.values()) - start) * 1000, 3)


def to_first(reach: Reach, *, stage: Stage = "opened") -> float | None:
    """Milliseconds from the send to the first copy at ``stage``; ``None`` if none was."""
    stamps = reach.stamps(stage)
    return round((min(stamps.values()) - reach.sent_at) * 1000, 3) if stamps else None


# --- the run ----------------------------------------------------------------------------


async def bench_broadcast(
    settings: Settings, notices: int = 20, rate: float = 1.0, seed: int = 247
) -> dict[str, Any]:
    """Red Notices through a real hub and the plain-aiokafka fan-out; see the docstring."""
    if notices < 1 or rate <= 0:
        raise ValueError(f"give at least one notice and a positive rate, not {notices} at {rate}")
    async with broker_for(settings) as bootstrap:
        local = settings.model_copy(
            update={"bootstrap": bootstrap, "topic_prefix": f"bc{uuid.uuid4().hex[:8]}"}
        )
        codes = list(default_registry().codes())
        requests = red_notices(codes, notices, random.Random(seed))
        reaches, sizes, decisions = await _backbone(local, bootstrap, codes, requests, rate)
        copy_bytes = int(statistics.median(sizes["copy"])) if sizes["copy"] else 4096
        request_bytes = int(statistics.median(sizes["request"]))
        baseline = await _baseline(
            local, bootstrap, len(codes), notices, rate, request_bytes, copy_bytes
        )
    recipients = len(codes)
    published = sum(1 for d in decisions.values() if d == PUBLISHED)
    return {
        "notices": notices,
        "rate": rate,
        "recipients": recipients,
        "request_bytes": request_bytes,
        "copy_bytes": copy_bytes,
        "backbone": {
            "sent": len(reaches),
            "published": published,
            "not_published": {k: v for k, v in decisions.items() if v != PUBLISHED},
            "reached_all": sum(len(r.opened_at) >= recipients for r in reaches),
            "sent_to_last_opened": latency_summary(to_all(r, recipients) for r in reaches),
            "sent_to_last_read": latency_summary(
                to_all(r, recipients, stage="read") for r in reaches
            ),
            "published_to_last_opened": latency_summary(
                to_all(r, recipients, since_published=True) for r in reaches
            ),
            "published_to_last_produced": latency_summary(
                to_all(r, recipients, stage="produced", since_published=True) for r in reaches
            ),
            "sent_to_first_opened": latency_summary(to_first(r) for r in reaches),
            "per_notice": [_per_notice(r, recipients) for r in reaches],
        },
        "baseline": {
            "sent": len(baseline),
            "reached_all": sum(len(r.read_at) >= recipients for r in baseline),
            "sent_to_last_received": latency_summary(
                to_all(r, recipients, stage="read") for r in baseline
            ),
            "sent_to_first_received": latency_summary(to_first(r, stage="read") for r in baseline),
        },
    }


def red_notices(codes: Sequence[str], count: int, rng: random.Random) -> list[NoticeRequest]:
    """Sound worldwide Red Notice requests from random NCBs, each for a different person
    (a second notice for the same person would be refused as a duplicate)."""
    out: list[NoticeRequest] = []
    seen: set[tuple[str, ...]] = set()
    while len(out) < count:
        requester = rng.choice(codes)
        request_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        request = red_notice(requester, request_id, rng)
        if subject_identity(request.subject) not in seen:
            seen.add(subject_identity(request.subject))
            out.append(request)
    return out


def _per_notice(reach: Reach, recipients: int) -> dict[str, Any]:
    return {
        "notice_id": reach.key,
        "opened": len(reach.opened_at),
        "sent_to_last_opened_ms": to_all(reach, recipients),
        "published_to_last_opened_ms": to_all(reach, recipients, since_published=True),
        "published_to_last_produced_ms": to_all(
            reach, recipients, stage="produced", since_published=True
        ),
        "sent_to_first_opened_ms": to_first(reach),
    }


async def _backbone(
    local: Settings, bootstrap: str, codes: list[str], requests: list[NoticeRequest], rate: float
) -> tuple[list[Reach], dict[str, list[int]], dict[str, str]]:
    """Reaches per notice, record sizes seen, and the desk's decision per notice id."""
    await provision_all(local)
    directory, identities = load_all(Path(local.keys_dir), codes)
    adapters = {c: NcbAdapter(identities[c], directory, local.topics) for c in codes}
    run_dir = Path(local.data_dir) / "bench"
    run_dir.mkdir(parents=True, exist_ok=True)
    reaches = {red_notice_id(r): Reach(red_notice_id(r), 0.0) for r in requests}
    reader = _NoticeReader(local, bootstrap, adapters, reaches)
    await reader.start()
    hub = start_hub(local, "lyon", bootstrap, run_dir)
    producer = make_producer(bootstrap, local)
    await producer.start()
    sizes: dict[str, list[int]] = {"request": [], "copy": reader.copy_sizes}
    try:
        await reader.until(lambda: reader.ready, READY_SECONDS, hub, "the hub to be ready")
        start = time.monotonic()
        for index, request in enumerate(requests):
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            _, record = adapters[request.requesting_ncb].compose(
                [CCC], NoticeRequestBody(request=request), now=datetime.now(UTC),
                random_bytes=os.urandom,
            )  # fmt: skip
            sizes["request"].append(len(record.value))
            reaches[red_notice_id(request)].sent_at = time.time()
            await producer.send(
                record.topic, record.value, key=record.key, headers=list(record.headers)
            )
        await producer.flush()

        def done() -> bool:
            return all(
                len(r.opened_at) >= len(codes) or reader.decisions.get(k) not in (None, PUBLISHED)
                for k, r in reaches.items()
            )

        if not await reader.until(done, DRAIN_SECONDS, hub, "every notice in every inbox"):
            opened = {k: len(r.opened_at) for k, r in reaches.items()}
            log.warning("bench-broadcast-incomplete", opened=opened, decisions=reader.decisions)
    finally:
        await producer.stop()
        await reader.stop()
        terminate(hub)
    return list(reaches.values()), sizes, dict(reader.decisions)


class _NoticeReader:
    """One group-less reader of the control topic and every inbox: opens notice copies."""

    def __init__(
        self,
        local: Settings,
        bootstrap: str,
        adapters: Mapping[str, NcbAdapter],
        reaches: dict[str, Reach],
    ) -> None:
        self.local = local
        self.adapters = adapters
        self.reaches = reaches
        self.inboxes = {local.topics.inbox(c): c for c in adapters}
        self.ready = False
        self.decisions: dict[str, str] = {}
        self.copy_sizes: list[int] = []
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            **process_security(),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=local.fetch_max_wait_ms,
            max_partition_fetch_bytes=2 * local.max_message_bytes,
        )
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def start(self) -> None:
        await self._consumer.start()
        topics = [self.local.topics.control, *self.inboxes]
        self._consumer.assign([TopicPartition(t, 0) for t in topics])  # one partition each
        self._task = asyncio.create_task(self._run(), name="bench-broadcast-reader")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def until(
        self, holds: Callable[[], bool], timeout: float, hub: Popen[bytes], what: str
    ) -> bool:
        """Wait for ``holds()``; False after ``timeout``; raise if the hub process exits."""
        deadline = time.monotonic() + timeout
        while not holds():
            if hub.poll() is not None:
                raise RuntimeError(
                    f"the hub exited while waiting for {what}; see <data dir>/bench/hub-lyon.log"
                )
            if time.monotonic() > deadline:
                if what == "the hub to be ready":
                    raise TimeoutError(
                        "the hub did not become ready; see <data dir>/bench/hub-lyon.log"
                    )
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.5)
        return True

    async def _run(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=100, max_records=5000)
            read_at = time.time()
            for records in batch.values():
                for record in records:
                    if record.topic == self.local.topics.control:
                        self._journal(record.value or b"")
                    elif dict(record.headers or ()).get("ce_type") == NOTICE_TYPE:
                        self._notice(record, read_at)
            if batch:
                self._changed.set()

    def _journal(self, value: bytes) -> None:
        event = parse_control_event(value)
        if isinstance(event, HubReady):
            self.ready = True
        elif isinstance(event, NoticeDecided):
            self.decisions[event.notice_id] = event.decision

    def _notice(self, record: Any, read_at: float) -> None:
        code = self.inboxes[record.topic]
        item = self.adapters[code].receive(received_from_kafka(record))
        opened_at = time.time()
        if not (isinstance(item, Opened) and isinstance(item.body, NoticeBody)):
            return
        notice = item.body.notice
        reach = self.reaches.get(notice.notice_id)
        if reach is None or code in reach.opened_at:
            return
        reach.produced_at[code] = record.timestamp / 1000
        reach.read_at[code] = read_at
        reach.opened_at[code] = opened_at
        self.copy_sizes.append(len(record.value or b""))
        if notice.published_at is not None:
            reach.published_at = notice.published_at.timestamp()


# --- the baseline -----------------------------------------------------------------------


async def _baseline(
    local: Settings,
    bootstrap: str,
    fan_out: int,
    count: int,
    rate: float,
    request_bytes: int,
    copy_bytes: int,
) -> list[Reach]:
    """Plain aiokafka: request topic -> one fan-out consumer -> ``fan_out`` inbox topics."""
    prefix = f"{local.topic_prefix}.base"
    requests = f"{prefix}.req"
    inboxes = [f"{prefix}.inbox{i:03d}" for i in range(fan_out)]
    await provision(
        bootstrap,
        [TopicSpec(requests, TopicKind.INBOUND), *(TopicSpec(t, TopicKind.INBOX) for t in inboxes)],
        local.replication_factor,
    )
    reaches = {f"req-{i}": Reach(f"req-{i}", 0.0) for i in range(count)}
    stop = asyncio.Event()
    fan = asyncio.create_task(_fan_out(local, bootstrap, requests, inboxes, copy_bytes, stop))
    reader = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False,
        **process_security(),
        auto_offset_reset="earliest", fetch_max_wait_ms=local.fetch_max_wait_ms,
        max_partition_fetch_bytes=2 * local.max_message_bytes,
    )  # fmt: skip
    await reader.start()
    reader.assign([TopicPartition(t, 0) for t in inboxes])

    def complete() -> bool:
        return all(len(r.read_at) >= fan_out for r in reaches.values())

    async def collect(deadline: float) -> None:
        while not complete() and time.monotonic() < deadline:
            batch = await reader.getmany(timeout_ms=100, max_records=5000)
            now = time.time()
            for records in batch.values():
                for record in records:
                    reach = reaches.get((record.key or b"").decode())
                    if reach is not None:
                        reach.read_at.setdefault(record.topic, now)

    producer = make_producer(bootstrap, local)
    await producer.start()
    payload = os.urandom(request_bytes // 2 + 1).hex().encode()[:request_bytes]
    try:
        await asyncio.sleep(1)  # the fan-out consumer's first fetch
        collector = asyncio.create_task(collect(time.monotonic() + count / rate + DRAIN_SECONDS))
        start = time.monotonic()
        for index, reach in enumerate(reaches.values()):
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            reach.sent_at = time.time()
            await producer.send(requests, payload, key=reach.key.encode())
        await producer.flush()
        await collector
    finally:
        stop.set()
        await asyncio.gather(fan, return_exceptions=True)
        await producer.stop()
        await reader.stop()
    return list(reaches.values())


async def _fan_out(
    local: Settings,
    bootstrap: str,
    source: str,
    targets: list[str],
    copy_bytes: int,
    stop: asyncio.Event,
) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False,
        **process_security(),
        auto_offset_reset="earliest", fetch_max_wait_ms=local.fetch_max_wait_ms,
    )  # fmt: skip
    producer = make_producer(bootstrap, local)
    copy = os.urandom(copy_bytes // 2 + 1).hex().encode()[:copy_bytes]
    await consumer.start()
    consumer.assign([TopicPartition(source, 0)])
    await producer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=50, max_records=100)
            for records in batch.values():
                for record in records:
                    for target in targets:
                        await producer.send(target, copy, key=record.key)
    finally:
        await consumer.stop()
        await producer.stop()


# --- printing ---------------------------------------------------------------------------


def print_broadcast_bench(figures: Mapping[str, Any], console: Console) -> None:
    """The backbone's measures beside the plain fan-out's, and the ratio of their p50s."""
    n, recipients = figures["notices"], figures["recipients"]
    table = Table(
        title=f"Worldwide Red Notice broadcast: {n} notices at {figures['rate']:g}/s, "
        f"{recipients} inboxes each (copy {figures['copy_bytes']:,} bytes)"
    )
    for column in ("path", "reached all", "p50 ms", "p99 ms", "max ms", "p50 vs baseline"):
        table.add_column(column, justify="left" if column == "path" else "right")
    base, ours = figures["baseline"], figures["backbone"]
    reference = base["sent_to_last_received"]["p50_ms"]
    rows = (
        ("aiokafka fan-out: sent → last received", base, "sent_to_last_received"),
        ("backbone: sent → last read", ours, "sent_to_last_read"),
        ("backbone: sent → last opened", ours, "sent_to_last_opened"),
        (
            "backbone: published → last handed to the hub's producer",
            ours,
            "published_to_last_produced",
        ),
        ("backbone: published → last opened", ours, "published_to_last_opened"),
        ("backbone: sent → first opened", ours, "sent_to_first_opened"),
    )
    for label, part, key in rows:
        summary = part[key]
        p50 = summary["p50_ms"]
        ratio = "-" if p50 is None or not reference else f"{p50 / reference:.2f}×"
        table.add_row(
            label,
            f"{part['reached_all']}/{part['sent']}",
            _ms(p50),
            _ms(summary["p99_ms"]),
            _ms(summary["max_ms"]),
            "" if part is base and key == "sent_to_last_received" else ratio,
        )
    console.print(table)
    console.print(
        "read/opened: by one reader that fetches and opens the 196 copies in turn (one key "
        "wrap each), so both include its CPU; published: the notice's "
        "published_at (the hub's clock, same machine); handed to the producer: the copies' "
        "record timestamps"
    )
    if ours["not_published"]:
        console.print(f"[yellow]not published: {ours['not_published']}[/]")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"
