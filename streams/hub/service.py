"""A CCC hub as a plain asyncio service: leases, intake and delivery run by ``HubRuntime``.

Each hub is its own process. Ownership of intake and of each lane comes from leases on the
lease journal, not from consumer-group membership, so nothing here needs a stream
framework: ``HubService`` starts the runtime, runs four timers beside it (heartbeat every
TTL/3, handling clocks due and the desks' tick every second, statistics every 10 s), serves
``/metrics``, ``/healthz`` and ``/readyz`` when ``I247_METRICS_PORT`` is set, and
on SIGTERM/SIGINT stops them and lets the runtime hand its leases on (release with final
positions, then a leaving heartbeat), so successors take over at once. The
acknowledgements other hubs relay on the journal are folded by the runtime's journal tail.

The broker is watched beside (``brokers.broker_probe``, one Metadata request a second).
When it stops answering, or answers with its log lost (a restarted embedded broker), the
hub is *suspended*: it drops its runtime without writing (``HubRuntime.abandon``), logs
``hub-suspended`` once, and ``/readyz`` answers 503 saying why; it neither exits nor
retries in a loop of errors. When the broker answers again with its topics, a new runtime
starts (fresh terms: leases are claimed anew, the journals read from their start) and
``hub-resumed`` is logged and journaled with how long the hub was suspended.
Handling clocks are folded from the journal by every hub (``streams.core.desk_state``); the hub
holding intake journals the breaches they owe.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable

import structlog

from brokers.access import process_security
from brokers.broker_probe import BrokerWatcher
from brokers.broker_watch import BrokerChange, BrokerWatch, ChangeKind
from schemas.journal import HandlingBreach, HubResumed
from schemas.leases import fence_headers
from schemas.registry import default_registry
from streams.core.coordination import HubPhase
from streams.desks.hub_state import HubState, journal_event
from streams.health.probes import Probes, ProbeServer
from streams.hub.memory_census import census_interval, take_census
from streams.hub.native_heap import heap_figures, resident_mib, trim_heap
from streams.hub.runtime import HubRuntime

__all__ = ["HubService"]

log = structlog.get_logger("i247.hub")

HEAP_TRIM_SECONDS = 60.0
"""How often a hub hands the C heap's free pages back: a trim of a few hundred MiB heap
takes milliseconds, and a backlog builds up its high-water mark over minutes."""


def _heap_fields() -> dict[str, float]:
    figures = heap_figures()
    if figures is None:
        return {}
    return {"heap_in_use_mib": figures.in_use_mib, "heap_free_mib": figures.free_mib}


class HubService:
    """One hub's runtime and timers, until ``stop()`` or a SIGTERM/SIGINT."""

    def __init__(self, state: HubState) -> None:
        self.state = state
        self.runtime = HubRuntime(state)
        self._stop = asyncio.Event()
        self._timers: list[asyncio.Task[None]] = []
        self.probes = Probes(state.metrics.registry, ready=self.ready, refresh=self.refresh_metrics)
        self.probe_server: ProbeServer | None = None
        self.suspended: str | None = None  # why the hub waits for its broker (None: it does not)
        self._suspended_at = 0.0
        self.watcher: BrokerWatcher | None = None
        self._resuming: asyncio.Task[None] | None = None

    def ready(self) -> bool | str:
        """True when running on a usable broker; else why not (``/readyz`` says it)."""
        if self.suspended is not None:
            return f"suspended: {self.suspended}"
        return self.runtime.phase is HubPhase.RUNNING

    def stop(self) -> None:
        """Ask for a graceful stop (what SIGTERM and SIGINT do)."""
        self._stop.set()

    async def run(self) -> None:
        """Start, serve until asked to stop, then hand the leases on."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        ticking: asyncio.Task[None] | None = None
        if self.state.settings.metrics_port:
            self.probe_server = ProbeServer(self.probes, self.state.settings.metrics_port)
            self.probe_server.start()
            ticking = asyncio.create_task(self.probes.tick_forever(), name="probes")
        try:
            await self.runtime.start()
            await self._watch_broker()
            ttl_s = self.state.settings.lease_ttl_ms / 1000
            self._timers = [
                self._every(ttl_s / 3, "heartbeat", self.beat),
                self._every(1.0, "clocks-due", self.clocks_due),
                self._every(1.0, "desk-due", self.desk_due),
                self._every(10.0, "hub-stats", self.report),
                self._every(HEAP_TRIM_SECONDS, "heap-trim", self.trim),
            ]
            census = census_interval()
            if census is not None:
                self._timers.append(
                    asyncio.create_task(take_census(self.state.hub, census), name="census")
                )
            await self._stop.wait()
        finally:
            if self.watcher is not None:
                await self.watcher.stop()
            for task in [*self._timers, *([self._resuming] if self._resuming else [])]:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.runtime.stop()
            if ticking is not None:
                ticking.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticking
            if self.probe_server is not None:
                self.probe_server.stop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)

    def _every(
        self, seconds: float, name: str, action: Callable[[], Awaitable[None]]
    ) -> asyncio.Task[None]:
        async def repeat() -> None:
            while True:
                await asyncio.sleep(seconds)
                try:
                    await action()
                except asyncio.CancelledError:
                    raise
                except Exception:  # one failed tick must not end the timer
                    log.exception("timer-failed", hub=self.state.hub, timer=name)

        return asyncio.create_task(repeat(), name=name)

    # --- the broker --------------------------------------------------------------

    async def _watch_broker(self) -> None:
        settings = self.state.settings
        topics = [spec.name for spec in settings.topics.core()]
        topics.append(settings.topics.inbox(list(default_registry().codes())[-1]))  # made last
        self.watcher = BrokerWatcher(
            self.state.bootstrap,
            topics,
            self._on_broker,
            who=self.state.hub,
            security=process_security(),
        )
        await self.watcher.start()

    async def _on_broker(self, change: BrokerChange, watch: BrokerWatch) -> None:
        # a restart provisioned before any probe saw it down or empty: still a lost log
        unseen = change.kind is ChangeKind.LOG_READY and self.suspended is None
        if change.kind in (ChangeKind.UNREACHABLE, ChangeKind.LOG_LOST) or unseen:
            await self._suspend(ChangeKind.LOG_LOST.value if unseen else change.kind.value)
        if (
            watch.usable
            and self.suspended is not None
            and (self._resuming is None or self._resuming.done())
        ):
            self._resuming = asyncio.create_task(self._resume(change), name="resume")

    async def _suspend(self, why: str) -> None:
        """Drop the runtime (no writes) and wait for the broker; said once per suspension."""
        if self._resuming is not None and not self._resuming.done():
            self._resuming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resuming
        if self.suspended is not None:
            self.suspended = why  # e.g. unreachable, then back with its log lost
            await self.runtime.abandon()  # a resume may have been half way
            return
        self.suspended, self._suspended_at = why, time.monotonic()
        log.warning(
            "hub-suspended", hub=self.state.hub, reason=why, units=sorted(self.runtime.workers)
        )
        await self.runtime.abandon()

    async def _resume(self, change: BrokerChange) -> None:
        """Start a new runtime (fresh terms) until one starts or the broker goes again."""
        while self.suspended is not None and not self._stop.is_set():
            self.runtime = HubRuntime(self.state)
            try:
                await self.runtime.start()
            except asyncio.CancelledError:
                await self.runtime.abandon()
                raise
            except Exception as exc:
                log.warning("hub-resume-failed", hub=self.state.hub, cause=repr(exc)[:300])
                await self.runtime.abandon()
                await asyncio.sleep(2.0)
                continue
            resumed = HubResumed(
                hub=self.state.hub,
                time=self.state.clock(),
                reason=self.suspended,
                suspended_seconds=round(time.monotonic() - self._suspended_at, 3),
                fresh_log=change.kind is ChangeKind.LOG_READY,
                cluster_id=change.cluster_id,
                incarnation=self.runtime.incarnation,
            )
            self.suspended = None
            out = journal_event(self.state, resumed, self.state.hub)
            await self.runtime.producer.send(
                out.topic, out.value, key=out.key, headers=list(out.headers)
            )
            fields = resumed.model_dump(mode="json", exclude={"event", "hub", "time"})
            log.info("hub-resumed", hub=self.state.hub, **fields)
            return

    # --- timers -------------------------------------------------------------------

    async def beat(self) -> None:
        if self.suspended is None:
            await self.runtime.beat()

    async def clocks_due(self) -> None:
        if self.suspended is not None or not self.runtime.acting_for_desks():
            return
        tag = self.runtime.tick_tag()
        state = self.state
        for owed in state.desks.due_clocks(state.clock()):
            breach = HandlingBreach(
                hub=state.hub,
                time=state.clock(),
                message_id=owed.message_id,
                precedence=owed.precedence,
                started_at=owed.started_at,
                deadline=owed.deadline,
                unacknowledged=owed.unacknowledged,
                late_seconds=owed.late_seconds,
            )
            out = journal_event(state, breach, breach.message_id)
            headers = out.headers if tag is None else fence_headers(out.headers, tag)
            await self.runtime.producer.send(
                out.topic, out.value, key=out.key, headers=list(headers)
            )
            state.counts["breaches"] += 1
            state.metrics.breach(breach.precedence.value)
            log.warning(
                "handling-breach", message_id=breach.message_id, precedence=breach.precedence.value
            )

    async def desk_due(self) -> None:
        if self.suspended is not None:
            return
        tag = self.runtime.tick_tag()
        if tag is None:  # holding no unit, this hub may not speak for the CCC: wait
            return
        for out in self.runtime.desk.tick(self.state.clock()):
            headers = fence_headers(out.headers, tag)
            await self.runtime.producer.send(
                out.topic, out.value, key=out.key, headers=list(headers)
            )

    def refresh_metrics(self) -> None:
        """The gauges of the present: units held with their epochs and backlogs."""
        workers = {} if self.suspended else self.runtime.workers  # empty until it exists
        self.state.metrics.held(
            {unit: term.epoch for unit, term in workers.items()},
            {unit: self.runtime.work.backlog(unit) for unit in workers},
        )

    async def report(self) -> None:
        log.info(
            "hub-stats",
            hub=self.state.hub,
            units=[] if self.suspended else sorted(self.runtime.workers),
            suspended=self.suspended,
            **dict(self.state.counts),
            open_clocks=self.state.desks.open_clocks,
            open_confirmations=self.state.desks.open_exchanges,
            open_windows=self.state.desks.open_windows,
            ended_remembered=self.state.desks.remembered,
            replay_ids=len(self.state.seen),
            ledger_pairs=sum(len(ledger) for ledger in self.runtime.ledgers.values()),
            rss_mib=resident_mib(),
            **_heap_fields(),
        )

    async def trim(self) -> None:
        """Give the C heap's free pages back (``streams.hub.native_heap``), and say so."""
        result = trim_heap()
        if result is not None:
            log.info(
                "heap-trimmed",
                hub=self.state.hub,
                rss_before_mib=result.rss_before_mib,
                rss_after_mib=result.rss_after_mib,
                took_ms=result.took_ms,
            )
