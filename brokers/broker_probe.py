"""The shell of ``brokers.broker_watch``: one Metadata request, and a loop that folds them.

``probe_broker`` opens a client, asks for the topics a process needs (never creating
them: ``allow_auto_topic_creation`` is off) and returns a ``Probe``: the cluster id and
the missing topics, or no answer and why. ``BrokerWatcher`` probes every ``every``
seconds, folds each answer into the pure ``BrokerWatch``, logs each change once (one
event, not one per retry) and hands it to the owner's ``on_change``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import structlog
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError
from aiokafka.protocol.metadata import MetadataRequest

from brokers.broker_watch import BrokerChange, BrokerWatch, ChangeKind, Probe

__all__ = ["BrokerWatcher", "probe_broker"]

log = structlog.get_logger("i247.broker")

UNKNOWN_TOPIC = 3  # Kafka's UNKNOWN_TOPIC_OR_PARTITION


async def probe_broker(
    bootstrap: str,
    topics: Sequence[str],
    *,
    security: Mapping[str, Any] | None = None,
    timeout: float = 3.0,
) -> Probe:
    """Ask ``bootstrap`` for ``topics``' metadata; a ``Probe`` whatever happens."""
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(timeout * 1000),
        client_id="i247-broker-probe",
        **dict(security or {}),
    )
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
        node = next(iter(client.cluster.brokers())).nodeId
        request = MetadataRequest(topics=list(topics), allow_auto_topic_creation=False)
        response = await asyncio.wait_for(client.send(node, request), timeout)
    except (KafkaError, OSError, TimeoutError, StopIteration) as exc:
        return Probe(None, error=f"{type(exc).__name__}: {exc}"[:300])
    finally:
        with contextlib.suppress(Exception):
            await client.close()
    present = {t[1] for t in response.topics if t[0] != UNKNOWN_TOPIC}
    missing = tuple(t for t in topics if t not in present)
    return Probe(str(getattr(response, "cluster_id", None) or "unknown"), missing)


class BrokerWatcher:
    """Probe, fold, log, tell the owner: until ``stop()``."""

    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        on_change: Callable[[BrokerChange, BrokerWatch], Awaitable[None]],
        *,
        who: str,
        every: float = 1.0,
        security: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bootstrap = bootstrap
        self.topics = list(topics)
        self.on_change = on_change
        self.who = who
        self.every = every
        self.security = security
        self.clock = clock
        self.watch: BrokerWatch | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> BrokerWatch:
        """The first probe (the broker as this process finds it), then the loop."""
        probe = await probe_broker(self.bootstrap, self.topics, security=self.security)
        self.watch = BrokerWatch.first(probe, self.clock())
        self._task = asyncio.create_task(self._run(), name="broker-watch")
        return self.watch

    async def stop(self) -> None:
        """End the loop between probes: a probe cancelled half way could leave its
        connection open (aiokafka's bootstrap registers it only once made)."""
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 5.0)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.every)
            if self._stopping.is_set():
                return
            probe = await probe_broker(self.bootstrap, self.topics, security=self.security)
            assert self.watch is not None
            self.watch, change = self.watch.observe(probe, self.clock())
            if change is None:
                continue
            trouble = change.kind in (ChangeKind.UNREACHABLE, ChangeKind.LOG_LOST)
            level = log.warning if trouble else log.info
            level(change.kind.value, who=self.who, bootstrap=self.bootstrap, **change.fields())
            try:
                await self.on_change(change, self.watch)
            except asyncio.CancelledError:
                raise
            except Exception:  # the watch must outlive one failed reaction
                log.exception("broker-change-failed", who=self.who, change=change.kind.value)
