"""A CCC hub as a plain asyncio service: leases, intake and delivery run by ``HubRuntime``.

Each hub is its own process. Ownership of intake and of each lane comes from leases on the
lease journal, not from consumer-group membership, so nothing here needs a stream
framework: ``HubService`` starts the runtime, runs four timers beside it (heartbeat every
TTL/3, handling clocks due and the desks' tick every second, statistics every 10 s), serves
``/metrics``, ``/healthz`` and ``/readyz`` when ``I247_METRICS_PORT`` is set, and
on SIGTERM/SIGINT stops them and lets the runtime hand its leases on (release with final
positions, then a leaving heartbeat), so successors take over at once. Handling clocks are
folded from the journal by every hub (``streams.desk_state``); the hub holding intake
journals the breaches they owe.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable

import structlog

from schemas.journal import HandlingBreach
from schemas.leases import fence_headers
from streams.coordination import HubPhase
from streams.hub_runtime import HubRuntime
from streams.hub_state import HubState, journal_event
from streams.probes import Probes, ProbeServer

__all__ = ["HubService"]

log = structlog.get_logger("i247.hub")


class HubService:
    """One hub's runtime and timers, until ``stop()`` or a SIGTERM/SIGINT."""

    def __init__(self, state: HubState) -> None:
        self.state = state
        self.runtime = HubRuntime(state)
        self._stop = asyncio.Event()
        self._timers: list[asyncio.Task[None]] = []
        self.probes = Probes(
            state.metrics.registry,
            ready=lambda: self.runtime.phase is HubPhase.RUNNING,
            refresh=self.refresh_metrics,
        )
        self.probe_server: ProbeServer | None = None

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
            ttl_s = self.state.settings.lease_ttl_ms / 1000
            self._timers = [
                self._every(ttl_s / 3, "heartbeat", self.runtime.beat),
                self._every(1.0, "clocks-due", self.clocks_due),
                self._every(1.0, "desk-due", self.desk_due),
                self._every(10.0, "hub-stats", self.report),
            ]
            await self._stop.wait()
        finally:
            for task in self._timers:
                task.cancel()
            for task in self._timers:
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

    async def clocks_due(self) -> None:
        """Journal the handling breaches now owed, if this hub acts for the desks (holds
        intake); every hub folds the clocks from the journal, so a successor owes them."""
        if not self.runtime.acting_for_desks():
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
        workers = self.runtime.workers  # empty until the work loop exists
        self.state.metrics.held(
            {unit: term.epoch for unit, term in workers.items()},
            {unit: self.runtime.work.backlog(unit) for unit in workers},
        )

    async def report(self) -> None:
        log.info(
            "hub-stats",
            hub=self.state.hub,
            units=sorted(self.runtime.workers),
            **dict(self.state.counts),
            open_clocks=self.state.desks.open_clocks,
            open_confirmations=self.state.desks.open_exchanges,
            open_windows=self.state.desks.open_windows,
        )
