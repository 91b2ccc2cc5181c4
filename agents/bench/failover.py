"""The failover measure: how fast the CCC notices a dead hub, how fast its successor
delivers in its place, and what the NCBs see meanwhile (issue 3).

Theory of operation: ``bench_failover(settings, kills=3, rate=50, ttl_ms=2000)`` starts (or
uses) a broker, provisions a fresh prefix and starts the three CCC hubs as processes
(``i247 hub --site S``, lease TTL ``ttl_ms``). Six NCBs send each other sealed messages at
``rate`` a second throughout; their inboxes are read as a bureau would (``NcbAdapter``,
fence-checked against the lease journal by a ``LeaseReader``), and each opened message's
latency is created -> opened. After a steady spell, each round SIGKILLs the hub holding
``intake`` (the hub on duty), then reads the hubs' journal (``i247.control``):

* detection: the first ``hub-dead`` for the victim, by any hub, minus the kill time;
* takeover: the first ``first-output`` with reason ``failover`` and the victim as previous
  owner, minus the kill time (the successor's first delivery of the dead hub's work);
* latency during the takeover: messages created in ``[kill, kill + takeover + 2 s]``.

The victim is then restarted and the round ends when it has claimed intake back
(``lease-claimed``, normally reason ``failback``; any other reason, say a stand-in that
missed its renewals on a loaded machine, is noted). Detection and takeover are summarised as median
and worst over the rounds (``spread``); latencies as percentiles, beside the steady state
(messages created in the seconds before the first kill, after a warm-up). Journal times
are the hubs' clocks, the kill time this process's: one machine, one clock. Nothing here
asserts a speed; a figure that could not be measured is ``None`` with the reason in ``note``.

Worked example::

    figures = await bench_failover(settings, kills=3, rate=50.0, ttl_ms=2000)
    figures.detection.median   # e.g. 2.4 (seconds)
    print_failover_bench(figures, Console())
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import structlog
from rich.console import Console
from rich.table import Table

from agents import stats
from agents.ncb.adapter import NcbAdapter, Opened
from agents.ncb.lease_reader import LeaseReader
from agents.ops.keyring import init_all, load_all
from agents.ops.operations import provision_all
from brokers.clients import make_producer, terminate
from brokers.embedded import broker_for
from brokers.records import ReceivedRecord
from brokers.settings import Settings
from brokers.tail import TopicTail
from schemas.bodies import MessageBody
from schemas.header import MessageType
from schemas.journal import (
    FirstOutput,
    HubDead,
    HubReady,
    JournalEventModel,
    LeaseClaimed,
    MalformedJournalEvent,
    parse_control_event,
)
from schemas.participants import HUB_SITES, hub_id

__all__ = [
    "FailoverFigures",
    "KillFigures",
    "Spread",
    "bench_failover",
    "print_failover_bench",
    "spread",
]

log = structlog.get_logger("i247.bench")

CODES = ("DEU", "ITA", "ESP", "NLD", "BEL", "AUT")
BODY = MessageBody(subject="Fugitive sighted", text="Seen boarding a ferry at 14:05")
WARM_UP_SECONDS = 3.0  # consumers joining, first fetches: not steady state
STEADY_SECONDS = 5.0
AFTER_TAKEOVER_SECONDS = 2.0
SETTLE_SECONDS = 2.0
DRAIN_SECONDS = 30.0
FAILBACK_PATIENCE_SECONDS = 90.0
INTAKE = "intake"  # the lease journal's unit for the inbound topic: held by the hub on duty


# --- pure summaries ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spread:
    """Median and worst (largest) of what was measured; ``missing`` rounds measured nothing."""

    median: float | None
    worst: float | None
    measured: int
    missing: int

    def as_json(self) -> dict[str, Any]:
        return {
            "median_s": _round(self.median),
            "worst_s": _round(self.worst),
            "measured": self.measured,
            "missing": self.missing,
        }


def spread(values: Iterable[float | None]) -> Spread:
    """Median and worst over the rounds that measured something (``None``: not measured).

    >>> spread([2.0, None, 3.0, 10.0])
    Spread(median=3.0, worst=10.0, measured=3, missing=1)
    """
    listed = list(values)
    measured = [v for v in listed if v is not None]
    if not measured:
        return Spread(None, None, 0, len(listed))
    return Spread(
        statistics.median(measured), max(measured), len(measured), len(listed) - len(measured)
    )


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, Any]:
    """Opened copies and their p50, p99 and max (ms, to the microsecond)."""
    return stats.latency_summary(latencies_ms, counted="opened", digits=3)


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


# --- figures ----------------------------------------------------------------------------


@dataclass
class KillFigures:
    """One round: the hub killed, and what the journal and the inboxes said about it."""

    victim: str
    killed_at: float
    detection_s: float | None = None
    detected_by: str | None = None
    takeover_s: float | None = None
    successor: str | None = None
    failback_s: float | None = None
    window_sent: int = 0
    window_latencies_ms: list[float] = field(default_factory=list)
    note: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "victim": self.victim,
            "detection_s": _round(self.detection_s),
            "detected_by": self.detected_by,
            "takeover_s": _round(self.takeover_s),
            "successor": self.successor,
            "failback_after_restart_s": _round(self.failback_s),
            "window_latency": {"sent": self.window_sent}
            | latency_summary(self.window_latencies_ms),
            "note": self.note,
        }


@dataclass
class FailoverFigures:
    ttl_ms: int
    rate: float
    kills: list[KillFigures]
    steady_latencies_ms: list[float]
    takeover_latencies_ms: list[float]
    sent: int
    opened: int
    verdicts: dict[str, int]
    steady_sent: int = 0

    @property
    def detection(self) -> Spread:
        return spread(k.detection_s for k in self.kills)

    @property
    def takeover(self) -> Spread:
        return spread(k.takeover_s for k in self.kills)

    @property
    def never_opened(self) -> int:
        return self.sent - self.opened

    def as_json(self) -> dict[str, Any]:
        return {
            "lease_ttl_ms": self.ttl_ms,
            "offered_per_s": self.rate,
            "detection": self.detection.as_json(),
            "takeover_first_delivery": self.takeover.as_json(),
            "latency_steady": {"sent": self.steady_sent}
            | latency_summary(self.steady_latencies_ms),
            "latency_during_takeover": {"sent": sum(k.window_sent for k in self.kills)}
            | latency_summary(self.takeover_latencies_ms),
            "sent": self.sent,
            "opened": self.opened,
            "never_opened": self.never_opened,
            "inbox_verdicts": self.verdicts,
            "kills": [k.as_json() for k in self.kills],
        }


# --- the rig ----------------------------------------------------------------------------


Event = TypeVar("Event", bound=JournalEventModel)


def _written_by(hub: str, event: JournalEventModel) -> bool:
    return event.hub == hub


class _Rig:
    """Three hub processes, the journal as it grows, and the NCBs' view of their inboxes."""

    def __init__(self, local: Settings, bootstrap: str, log_dir: Path) -> None:
        self.local = local
        self.bootstrap = bootstrap
        self.log_dir = log_dir
        self.hubs: dict[str, subprocess.Popen[bytes]] = {}
        self.events: list[JournalEventModel] = []
        self.sent: dict[str, float] = {}  # "message_id/recipient" -> created (epoch s)
        self.opened: dict[str, float] = {}  # same key -> latency ms
        self.verdicts: Counter[str] = Counter()
        self.leases = LeaseReader(bootstrap, local.topics.leases)
        self._inbox: asyncio.Queue[tuple[ReceivedRecord, float]] = asyncio.Queue()
        self._journal = TopicTail(bootstrap, [local.topics.control], self._note_event)
        self._inboxes = TopicTail(
            bootstrap,
            [local.topics.inbox(c) for c in CODES],
            lambda r: self._inbox.put_nowait((r, time.time())),
        )

    def _note_event(self, record: ReceivedRecord) -> None:
        try:
            event = parse_control_event(record.value)
        except MalformedJournalEvent as fault:
            log.warning("journal-event-malformed", offset=record.offset, detail=str(fault))
            return
        if isinstance(event, JournalEventModel):
            self.events.append(event)

    def start_hub(self, site: str) -> None:
        hub = self.local.replace(bootstrap=self.bootstrap)
        env = os.environ | hub.to_env(log_file=self.log_dir / f"hub-{site}.log")
        with (self.log_dir / f"hub-{site}.out").open("ab") as out:
            self.hubs[site] = subprocess.Popen(
                [sys.executable, "-m", "agents.cli", "hub", "--site", site],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill_hub(self, site: str) -> float:
        process = self.hubs.pop(site)
        killed_at = time.time()
        process.send_signal(signal.SIGKILL)
        process.wait()
        return killed_at

    def stop_hubs(self) -> None:
        for site in list(self.hubs):
            terminate(self.hubs.pop(site))

    async def wait_for(
        self, what: str, kind: type[Event], predicate: Callable[[Event], bool], timeout: float
    ) -> Event | None:
        """The first journal event of ``kind`` that satisfies ``predicate``, or ``None``
        after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if isinstance(event, kind) and predicate(event):
                    return event
            dead = [s for s, p in self.hubs.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(
                    f"hub {dead[0]} exited while waiting for {what}; see {self.log_dir}"
                )
            await asyncio.sleep(0.05)
        log.warning("bench-failover-gave-up", waiting_for=what, timeout=timeout)
        return None

    async def start(self) -> None:
        await self.leases.start()
        await self._journal.start()
        await self._inboxes.start()

    async def stop(self) -> None:
        self.stop_hubs()
        for tail in (self._inboxes, self._journal):
            await tail.stop()
        await self.leases.stop()

    async def open_inboxes(self, adapters: dict[str, NcbAdapter], stop: asyncio.Event) -> None:
        """Open every inbox record as its NCB would, fence-checked; note each latency."""
        topics = {self.local.topics.inbox(c): c for c in CODES}
        while not stop.is_set():
            try:
                record, read_at = await asyncio.wait_for(self._inbox.get(), 0.2)
            except TimeoutError:
                continue
            book = await self.leases.ready_for(record)
            code = topics[record.topic]
            item = adapters[code].receive(record, leases=book)
            self.verdicts[type(item).__name__] += 1
            if isinstance(item, Opened) and item.header.message_type is MessageType.MESSAGE:
                key = f"{item.header.message_id}/{code}"
                created = item.header.created_at.timestamp()
                self.opened.setdefault(key, (read_at - created) * 1000)

    async def send(self, adapters: dict[str, NcbAdapter], rate: float, stop: asyncio.Event) -> None:
        producer = make_producer(self.bootstrap, self.local)
        await producer.start()
        try:
            start = time.monotonic()
            index = 0
            while not stop.is_set():
                delay = start + index / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                sender = CODES[index % len(CODES)]
                recipient = CODES[(index + 1) % len(CODES)]
                created = datetime.now(UTC)
                header, record = adapters[sender].compose(
                    [recipient], BODY, now=created, random_bytes=os.urandom
                )
                await producer.send(
                    record.topic, record.value, key=record.key, headers=list(record.headers)
                )
                self.sent[f"{header.message_id}/{recipient}"] = created.timestamp()
                index += 1
            await producer.flush()
        finally:
            await producer.stop()

    def latencies(self, since: float, until: float) -> tuple[int, list[float]]:
        """Messages created in ``[since, until]``: how many, and the latencies of those opened."""
        keys = [k for k, created in self.sent.items() if since <= created <= until]
        return len(keys), [self.opened[k] for k in keys if k in self.opened]


async def _one_kill(rig: _Rig, ttl_s: float) -> KillFigures:
    victim = rig.leases.book.lease(INTAKE).owner
    if victim is None:
        raise RuntimeError("nobody holds intake in the lease journal: no hub on duty to kill")
    killed_at = rig.kill_hub(victim)
    figures = KillFigures(victim=victim, killed_at=killed_at)
    patience = 3 * ttl_s + 20
    takeover = await rig.wait_for(
        "the successor's first delivery",
        FirstOutput,
        lambda e: (
            e.reason == "failover" and e.previous_owner == victim and e.at.timestamp() >= killed_at
        ),
        patience,
    )
    dead = [
        e
        for e in rig.events
        if isinstance(e, HubDead) and e.site == victim and e.declared_at.timestamp() >= killed_at
    ]
    if dead:
        first = min(dead, key=lambda e: e.declared_at)
        figures.detection_s = first.declared_at.timestamp() - killed_at
        figures.detected_by = first.hub
    notes = []
    if not dead:
        notes.append(f"no hub-dead for {victim} journaled")
    if takeover is None:
        notes.append(f"no failover first-output within {patience:.0f} s")
        window_end = killed_at + patience
    else:
        figures.takeover_s = takeover.at.timestamp() - killed_at
        figures.successor = takeover.hub
        window_end = killed_at + figures.takeover_s + AFTER_TAKEOVER_SECONDS
    await asyncio.sleep(max(0.0, window_end - time.time()))
    restarted_at = time.time()
    rig.start_hub(victim)
    failback = await rig.wait_for(
        f"{victim} to take intake back",
        LeaseClaimed,
        lambda e: (
            e.unit == INTAKE and e.hub == hub_id(victim) and e.time.timestamp() >= restarted_at
        ),
        FAILBACK_PATIENCE_SECONDS,
    )
    if failback is None:
        notes.append(f"{victim} did not take intake back within {FAILBACK_PATIENCE_SECONDS:g} s")
    else:
        figures.failback_s = failback.time.timestamp() - restarted_at
        if failback.reason != "failback":  # e.g. the stand-in missed its renewals
            notes.append(
                f"{victim} took intake back by {failback.reason} "
                f"from {failback.previous_owner}, not by failback"
            )
    figures.note = "; ".join(notes) or None
    figures.window_sent, _ = rig.latencies(killed_at, window_end)
    return figures


async def bench_failover(
    settings: Settings,
    *,
    kills: int = 3,
    rate: float = 50.0,
    ttl_ms: int = 2000,
    console: Console | None = None,
) -> FailoverFigures:
    """Kill the hub on duty ``kills`` times under steady traffic; see the module docstring."""

    def say(text: str) -> None:
        if console is not None:
            console.print(text)

    if kills < 1 or rate <= 0:
        raise ValueError("bench_failover needs at least one kill and a positive rate")
    keys = Path(settings.keys_dir)
    init_all(keys)
    directory, identities = load_all(keys, list(CODES))
    log_dir = Path(settings.data_dir) / "bench" / "failover"
    log_dir.mkdir(parents=True, exist_ok=True)
    async with broker_for(settings) as bootstrap:
        local = settings.model_copy(
            update={
                "bootstrap": bootstrap,
                "topic_prefix": f"fo{uuid.uuid4().hex[:8]}",
                "lease_ttl_ms": ttl_ms,
            }
        )
        await provision_all(local)
        adapters = {c: NcbAdapter(identities[c], directory, local.topics) for c in CODES}
        readers = {c: NcbAdapter(identities[c], directory, local.topics) for c in CODES}
        rig = _Rig(local, bootstrap, log_dir)
        stop, stop_sending = asyncio.Event(), asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        rounds: list[KillFigures] = []
        await rig.start()
        try:
            for site in HUB_SITES:
                rig.start_hub(site)
            for site in HUB_SITES:
                ready = await rig.wait_for(
                    f"hub {site} ready", HubReady, partial(_written_by, hub_id(site)), 180
                )
                if ready is None:
                    raise TimeoutError(f"hub {site} not ready in 180 s; see {log_dir}")
            say(f"failover: three hubs ready (lease TTL {ttl_ms} ms); {rate:g} msgs/s steady")
            tasks = [
                asyncio.create_task(rig.open_inboxes(readers, stop)),
                asyncio.create_task(rig.send(adapters, rate, stop_sending)),
            ]
            traffic_start = time.time()
            await asyncio.sleep(WARM_UP_SECONDS + STEADY_SECONDS)
            first_kill = time.time()
            for number in range(1, kills + 1):
                figures = await _one_kill(rig, ttl_ms / 1000)
                rounds.append(figures)
                say(
                    f"failover: kill {number}/{kills} of {figures.victim}: detected "
                    f"{_s(figures.detection_s)}, successor's first delivery "
                    f"{_s(figures.takeover_s)}, failback {_s(figures.failback_s)} after restart"
                )
                await asyncio.sleep(SETTLE_SECONDS)
            stop_sending.set()
            await tasks[1]
            for _ in range(int(DRAIN_SECONDS / 0.2)):
                if len(rig.opened) >= len(rig.sent):
                    break
                await asyncio.sleep(0.2)
            log.info("bench-failover-drained", sent=len(rig.sent), opened=len(rig.opened))
        finally:
            stop.set()
            stop_sending.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await rig.stop()
    steady_sent, steady = rig.latencies(traffic_start + WARM_UP_SECONDS, first_kill)
    during: list[float] = []
    for figures in rounds:
        end = figures.killed_at + (
            figures.takeover_s + AFTER_TAKEOVER_SECONDS
            if figures.takeover_s is not None
            else 3 * ttl_ms / 1000 + 20
        )
        figures.window_sent, figures.window_latencies_ms = rig.latencies(figures.killed_at, end)
        during += figures.window_latencies_ms
    return FailoverFigures(
        ttl_ms=ttl_ms,
        rate=rate,
        kills=rounds,
        steady_latencies_ms=steady,
        takeover_latencies_ms=during,
        sent=len(rig.sent),
        opened=len(rig.opened),
        verdicts=dict(rig.verdicts),
        steady_sent=steady_sent,
    )


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def print_failover_bench(figures: FailoverFigures, console: Console) -> None:
    """Per-kill rows, median and worst, and latency in steady state beside the takeover."""
    table = Table(
        title=f"Failover: SIGKILL of the hub on duty, {len(figures.kills)}× "
        f"(lease TTL {figures.ttl_ms} ms, {figures.rate:g} msgs/s)"
    )
    for column in ("#", "victim", "detected", "successor's 1st delivery", "successor", "back"):
        table.add_column(column, justify="left" if column in ("victim", "successor") else "right")
    notes = []
    for number, kill in enumerate(figures.kills, 1):
        table.add_row(
            str(number),
            kill.victim,
            _s(kill.detection_s),
            _s(kill.takeover_s),
            (kill.successor or "-").removeprefix("hub:"),
            _s(kill.failback_s),
        )
        if kill.note:
            notes.append(f"kill {number}: {kill.note}")
    detection, takeover = figures.detection, figures.takeover
    table.add_row("median", "", _s(detection.median), _s(takeover.median), "", "")
    table.add_row("worst", "", _s(detection.worst), _s(takeover.worst), "", "")
    console.print(table)
    console.print(
        "detected: first hub-dead for the victim, by any hub; successor's 1st delivery: first "
        "failover first-output; back: the restarted victim's claim of intake after its restart"
    )
    for note in notes:
        console.print(f"[yellow]{note}[/]")
    latency = Table(title="Delivery latency, created → opened by the recipient (fence-checked)")
    for column in ("window", "sent", "opened", "p50 ms", "p99 ms", "max ms"):
        latency.add_column(column, justify="left" if column == "window" else "right")
    steady = figures.steady_latencies_ms
    latency.add_row(
        f"steady ({STEADY_SECONDS:g} s before 1st kill)",
        str(figures.steady_sent),
        str(len(steady)),
        _ms(stats.percentile(steady, 0.5)),
        _ms(stats.percentile(steady, 0.99)),
        _ms(max(steady) if steady else None),
    )
    during = figures.takeover_latencies_ms
    latency.add_row(
        f"takeovers (kill to 1st delivery + {AFTER_TAKEOVER_SECONDS:g} s)",
        str(sum(k.window_sent for k in figures.kills)),
        str(len(during)),
        _ms(stats.percentile(during, 0.5)),
        _ms(stats.percentile(during, 0.99)),
        _ms(max(during) if during else None),
    )
    console.print(latency)
    verdicts = ", ".join(f"{n} {k}" for k, n in sorted(figures.verdicts.items()))
    console.print(
        f"sent {figures.sent}, opened {figures.opened}, never opened {figures.never_opened} "
        f"(after a {DRAIN_SECONDS:g} s drain); inbox records: {verdicts or 'none'}"
    )
