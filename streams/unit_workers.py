"""The work a hub does on a unit it holds: intake, or delivery from one lane.

Theory of operation: a worker lives for one lease term. It reads its unit's topic from
the term's start positions with a group-less consumer, hands each record to the pure core
(``admit`` or ``plan_delivery``), produces what comes back tagged with its unit, epoch and
input offset (``schemas.leases.fence_headers``), and only after the broker acknowledged a
batch's outputs moves its ``positions``, which the hub reports with its renewals. It
checks, record by record, that its lease is still good by its own clock and the journal,
so a hub that wakes from a stall stops instead of pressing on; readers fence the rest.
Each worker has a producer of its own (aiokafka keeps one produce request in flight per
connection, so a shared one queued every unit behind the others), and waits once per
fetched batch for its outputs' acknowledgements. A batch not acknowledged within
``ack_timeout`` (the lease TTL) ends the worker with ``OutputsNotAcknowledged``: the hub
restarts the term from the last positions with a new worker and producer, rather than hold
a lease it cannot work (Tansu can refuse a partition's produce for many seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from brokers.access import process_security
from brokers.records import OutboundRecord, ReceivedRecord
from brokers.tail import received_from_kafka
from schemas.leases import FenceTag, FenceVerdict, fence_headers, fence_tag

__all__ = ["OutputsNotAcknowledged", "RecordHandler", "UnitWorker", "WorkerContext"]

log = structlog.get_logger("i247.hub")


class RecordHandler(Protocol):
    async def __call__(self, record: ReceivedRecord, epoch: int) -> list[OutboundRecord]: ...


@dataclass
class WorkerContext:
    """What a worker needs from its hub."""

    bootstrap: str
    new_producer: Callable[[], AIOKafkaProducer]  # each worker's own (see the docstring)
    may_work: Callable[[str, int], bool]
    fetch_max_wait_ms: int
    max_fetch_bytes: int
    on_first_output: Callable[[str, int, datetime], Awaitable[None]]
    clock: Callable[[], datetime]
    ack_timeout: float = 3.0  # seconds a batch's outputs may wait for the broker's acks


class OutputsNotAcknowledged(RuntimeError):
    """The broker did not acknowledge a batch's outputs in time: the worker restarts (with a
    fresh producer) from its last positions; nothing past them was counted as done."""


class UnitWorker:
    """One unit, one term: consume from ``start``, produce tagged outputs, track positions."""

    def __init__(
        self,
        context: WorkerContext,
        unit: str,
        topic: str,
        epoch: int,
        start: dict[int, int],
        handle: RecordHandler,
    ) -> None:
        self.context = context
        self.unit = unit
        self.topic = topic
        self.epoch = epoch
        self.positions = dict(start)
        self._handle = handle
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=context.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=context.fetch_max_wait_ms,
            max_partition_fetch_bytes=context.max_fetch_bytes,
            **process_security(),
        )
        self._producer = context.new_producer()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._produced_any = False
        self.processed = 0

    async def start(self) -> None:
        await self._producer.start()
        await self._consumer.start()
        found = self._consumer.partitions_for_topic(self.topic) or {0}
        partitions = [TopicPartition(self.topic, p) for p in sorted(found)]
        self._consumer.assign(partitions)
        for tp in partitions:
            self._consumer.seek(tp, self.positions.get(tp.partition, 0))
        self._task = asyncio.create_task(self._run(), name=f"unit:{self.unit}@{self.epoch}")

    async def stop(self, grace: float = 5.0) -> dict[int, int]:
        """Finish the batch in hand (up to ``grace`` s), stop, and return final positions."""
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            except Exception:  # the failure was logged where it happened
                log.warning("unit-worker-failed", unit=self.unit, epoch=self.epoch)
        await self._consumer.stop()
        with contextlib.suppress(Exception):  # a producer stuck on unacked batches must not hang us
            await asyncio.wait_for(self._producer.stop(), 2.0)
        return dict(self.positions)

    def backlog(self) -> int:
        """Records known to the broker that this term has not finished (from the last fetch's
        high watermark; Tansu can under-report it, so read it as a floor)."""
        total = 0
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            if highwater is not None:
                total += max(0, highwater - self.positions.get(tp.partition, 0))
        return total

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()

    async def _run(self) -> None:
        try:
            while not self._stopping:
                if not self.context.may_work(self.unit, self.epoch):
                    await asyncio.sleep(0.05)
                    continue
                batch = await self._consumer.getmany(timeout_ms=100, max_records=500)
                if batch:
                    await self._process(batch)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("unit-worker-crashed", unit=self.unit, epoch=self.epoch)
            raise

    async def _process(self, batch: dict[TopicPartition, list[object]]) -> None:
        """Handle a fetched batch (every partition), wait once for all of its outputs'
        acknowledgements, then move the positions: a hop costs one round trip, not one per
        partition."""
        pending: list[asyncio.Future[object]] = []
        topics: dict[asyncio.Future[object], str] = {}
        advanced: dict[int, int] = {}
        for tp, records in batch.items():
            for raw in records:
                if not self.context.may_work(self.unit, self.epoch):
                    # the lease lapsed mid-batch: read the rest again if it is renewed, else
                    # the next term starts from the reported positions anyway
                    self._consumer.seek(tp, raw.offset)  # type: ignore[attr-defined]
                    break
                record = received_from_kafka(raw)
                outputs = await self._handle(record, self.epoch)
                tag = FenceTag(self.unit, self.epoch, record.partition, record.offset)
                for out in outputs:
                    headers = fence_headers(out.headers, tag)
                    asked = time.monotonic()
                    future = await self._producer.send(
                        out.topic, out.value, key=out.key, headers=list(headers)
                    )
                    if time.monotonic() - asked > 1.0:
                        log.warning(
                            "unit-worker-send-slow",
                            unit=self.unit,
                            topic=out.topic,
                            seconds=round(time.monotonic() - asked, 2),
                        )
                    topics[future] = out.topic
                    pending.append(future)
                advanced[tp.partition] = record.offset + 1
                self.processed += 1
        if pending:
            _, waiting = await asyncio.wait(pending, timeout=self.context.ack_timeout)
            if waiting:
                unacknowledged = sorted({topics[f] for f in waiting})
                log.warning(
                    "unit-worker-outputs-unacknowledged",
                    unit=self.unit,
                    epoch=self.epoch,
                    waiting=len(waiting),
                    topics=unacknowledged,
                    seconds=self.context.ack_timeout,
                )
                raise OutputsNotAcknowledged(
                    f"{len(waiting)} outputs to {unacknowledged} not acknowledged in "
                    f"{self.context.ack_timeout} s"
                )
            await asyncio.gather(*pending)
            if not self._produced_any:
                self._produced_any = True
                await self.context.on_first_output(self.unit, self.epoch, self.context.clock())
        self.positions.update(advanced)


def upstream_verdict(
    record: ReceivedRecord, judge: Callable[[FenceTag], FenceVerdict]
) -> tuple[FenceTag | None, FenceVerdict]:
    """The fence verdict on the record a worker consumes (a lane record's intake tag)."""
    tag = fence_tag(record.headers)
    if tag is None:
        return None, FenceVerdict.FENCED
    return tag, judge(tag)
