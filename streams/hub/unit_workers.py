"""The work a hub does on the units it holds: intake, and delivery from its lanes.

Theory of operation: one ``WorkLoop`` per hub carries every unit the hub holds, each for
one lease term (a ``Term``: unit, topic, epoch, positions, handler), on ONE group-less
consumer and ONE producer. As leases change the loop assigns and unassigns partitions and
seeks each term's partitions to its start positions, always between two batches, so the
consumer's position of a partition equals its term's positions there. Each fetched batch
is handled in precedence order (``handling_plan``: FLASH lane records first, then
IMMEDIATE, then intake, then PRIORITY and ROUTINE; a rank's partitions in turns), each
record by the pure core (``admit`` or ``plan_delivery``) through its term's handler; the
outputs are produced tagged with unit, epoch and input offset
(``schemas.leases.fence_headers``). After ``BATCH_SECONDS`` of handling the rest of the
batch (FLASH lane records aside) is kept for the next one. The loop waits once per
batch for all outputs' acknowledgements, and only then moves the terms' ``positions``,
which the hub reports with its renewals.

It checks, record by record, that each term's lease is still good by its own clock and
the journal; a term that may not work has its partitions paused, so a hub that wakes
from a stall stops instead of pressing on; readers fence the rest. A batch not
acknowledged within ``ack_timeout`` (the lease TTL) first moves each term past the
records whose outputs all were acknowledged (``acknowledged_positions``: up to the first
that was not), then raises ``OutputsNotAcknowledged`` inside the loop: it restarts every
term from its positions with a fresh producer, rather than hold leases it cannot work
(Tansu can refuse a partition's produce for many seconds). A handler that fails on a
record pauses its term for a second and retries from the term's positions; the other
terms go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaProducer, TopicPartition

from brokers.fetch_wait import AdaptiveConsumer
from brokers.records import OutboundRecord, ReceivedRecord
from brokers.tail import received_from_kafka
from schemas.header import Precedence
from schemas.leases import FenceTag, FenceVerdict, fence_headers, fence_tag

__all__ = [
    "OutputsNotAcknowledged",
    "RecordHandler",
    "Term",
    "WorkLoop",
    "WorkerContext",
    "acknowledged_positions",
    "handling_plan",
    "handling_rank",
    "lane_rank",
    "upstream_verdict",
]

log = structlog.get_logger("i247.hub")

BATCH_RECORDS = 500  # records handled per batch (one acknowledgement wait each)
BATCH_SECONDS = 0.1
"""A batch's handling stops after this long except for FLASH lane records; the rest is kept
for the next batch: outputs are acknowledged and the next fetch's FLASH records come first,
instead of after a backlog of 500 records (half a second to a second of handling after a
handover)."""
RETRY_SECONDS = 1.0  # a term whose handler failed waits this long before reading again
YIELD_SECONDS = 0.01
"""Longest stretch of handling before the loop lets other tasks run: the handlers are CPU
work, and a 500-record batch on a busy machine held the event loop for seconds, so the
hub's renewals and heartbeats came late and its successor took its leases over."""


class RecordHandler(Protocol):
    async def __call__(self, record: ReceivedRecord, epoch: int) -> list[OutboundRecord]: ...


BatchFlush = Callable[[int], list[OutboundRecord]]
"""What a handler held back to write once per batch and partition (a batch's clock events
as one journal record): produced after the batch's records, under its last input's tag."""


@dataclass
class WorkerContext:
    """What the work loop needs from its hub."""

    new_consumer: Callable[[], AdaptiveConsumer]
    new_producer: Callable[[], AIOKafkaProducer]  # fresh after an unacknowledged batch
    may_work: Callable[[str, int], bool]
    on_first_output: Callable[[str, int, datetime], Awaitable[None]]
    clock: Callable[[], datetime]
    ack_timeout: float = 3.0  # seconds a batch's outputs may wait for the broker's acks


class OutputsNotAcknowledged(RuntimeError):
    """The broker did not acknowledge a batch's outputs in time: the loop restarts (with a
    fresh producer) every term from its last positions; nothing past them counted as done."""


def lane_rank(topic: str) -> int:
    """0 for a FLASH lane up to 3 for ROUTINE; 4 for anything else (intake's inbound)."""
    suffix = topic.rsplit(".", 1)[-1].upper()
    try:
        return Precedence(suffix).rank
    except ValueError:
        return len(Precedence)


def handling_rank(topic: str) -> int:
    """Where a topic's records come in a batch: the FLASH and IMMEDIATE lanes, then intake
    (a FLASH message still waiting for admission is behind everything admitted before it
    in its partition), then the PRIORITY and ROUTINE lanes."""
    rank = lane_rank(topic)
    intake = len(Precedence)
    if rank == intake:
        return Precedence.IMMEDIATE.rank + 1
    return rank if rank <= Precedence.IMMEDIATE.rank else rank + 1


def handling_plan(
    batch: Mapping[TopicPartition, Sequence[Any]], chunk: int = 16
) -> list[tuple[TopicPartition, Sequence[Any]]]:
    """A fetched batch as steps of at most ``chunk`` records: by ``handling_rank``, and the
    partitions of one rank in turns, so a batch cut short (``BATCH_SECONDS``) has
    advanced each of them, not the first partition alone. Each partition's records keep
    their order.

    >>> a, b = TopicPartition("i247.inbound", 0), TopicPartition("i247.inbound", 1)
    >>> f = TopicPartition("i247.hub.lyon.flash", 0)
    >>> [(tp.partition, list(r)) for tp, r in handling_plan({a: [1, 2, 3], b: [4], f: [9]}, 2)]
    [(0, [9]), (0, [1, 2]), (1, [4]), (0, [3])]
    """
    steps: list[tuple[TopicPartition, Sequence[Any]]] = []
    ranked = sorted((handling_rank(tp.topic), tp, records) for tp, records in batch.items())
    for _, same_rank in itertools.groupby(ranked, key=lambda item: item[0]):
        group = [(tp, records) for _, tp, records in same_rank]
        longest = max(len(records) for _, records in group)
        for start in range(0, longest, chunk):
            steps += [(tp, r[start : start + chunk]) for tp, r in group if r[start : start + chunk]]
    return steps


@dataclass
class Term:
    """One unit held for one lease term: where it stands and who handles its records."""

    unit: str
    topic: str
    epoch: int
    positions: dict[int, int]
    handle: RecordHandler
    partitions: list[TopicPartition] = field(default_factory=list)
    flush: BatchFlush | None = None
    produced_any: bool = False
    retry_at: float = 0.0  # monotonic time before which a failed term does not read
    processed: int = 0


@dataclass
class _BatchRun:
    """What handling one fetched batch has produced so far (and when it last yielded)."""

    by_topic: dict[str, Term]
    pending: list[asyncio.Future[Any]] = field(default_factory=list)
    topics: dict[asyncio.Future[Any], str] = field(default_factory=dict)
    advanced: list[tuple[Term, int, int]] = field(default_factory=list)
    last: dict[tuple[str, int], tuple[Term, FenceTag]] = field(default_factory=dict)
    outputs: list[tuple[asyncio.Future[Any], ...]] = field(default_factory=list)  # per advance
    flushed: dict[tuple[int, int], list[asyncio.Future[Any]]] = field(default_factory=dict)
    first: list[Term] = field(default_factory=list)
    yielded: float = field(default_factory=time.monotonic)


class WorkLoop:
    """Every term a hub holds, on one consumer and one producer (see the module doc)."""

    def __init__(self, context: WorkerContext) -> None:
        self.context = context
        self.terms: dict[str, Term] = {}
        self._consumer = context.new_consumer()
        self._producer = context.new_producer()
        self._task: asyncio.Task[None] | None = None
        self._reassign = False
        self._paused: set[TopicPartition] = set()
        self._in_hand: set[str] = set()  # units of the batch being handled
        self._between = asyncio.Event()
        self._between.set()
        self._stopping = False
        self._changed = asyncio.Event()  # set when a term is added or removed
        self._retiring: set[asyncio.Task[None]] = set()  # producers closing after a restart
        self._braced: int | None = None
        self._carry: dict[TopicPartition, list[Any]] = {}  # fetched, left by a cut batch

    async def start(self) -> None:
        await self._producer.start()
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="work-loop")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()
        await _retire(self._producer)
        if self._retiring:
            await asyncio.wait(self._retiring)

    def idle_wait(self, idle_ms: int) -> None:
        """The loop's longest fetch wait while its partitions are quiet."""
        self._consumer.set_idle_wait(idle_ms)

    def brace(self, cap_ms: int | None) -> None:
        """Fetch with at most ``cap_ms`` of wait (``None``: the adaptive wait again): a unit
        is about to be added, and aiokafka sends a new term's first fetch only after the
        fetch in flight, which an idle loop has made long."""
        if cap_ms != self._braced:
            self._consumer.cap_wait(cap_ms)
        self._braced = cap_ms

    async def add(
        self,
        unit: str,
        topic: str,
        epoch: int,
        start: dict[int, int],
        handle: RecordHandler,
        flush: BatchFlush | None = None,
    ) -> Term:
        """Carry ``unit`` for term ``epoch`` from ``start``; reading begins at the next batch."""
        # the consumer's metadata tracks only the topics assigned so far: ask the broker
        metadata = await self._consumer._client.fetch_all_metadata()
        found = metadata.partitions_for_topic(topic) or {0}
        term = Term(unit, topic, epoch, dict(start), handle, flush=flush)
        term.partitions = [TopicPartition(topic, p) for p in sorted(found)]
        self.terms[unit] = term
        self._reassign = True
        self._changed.set()
        return term

    async def remove(self, unit: str, grace: float = 5.0) -> dict[int, int]:
        """Stop carrying ``unit`` once the batch in hand is done (up to ``grace`` s); return
        its final positions (what the broker acknowledged)."""
        term = self.terms.get(unit)
        if term is None:
            return {}
        if grace > 0 and unit in self._in_hand:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._between.wait(), grace)
        if self.terms.get(unit) is term:
            del self.terms[unit]
            self._reassign = True
            self._changed.set()
        return dict(term.positions)

    def backlog(self, unit: str | None = None) -> int:
        """Records known to the broker that the terms have not finished (from the last
        fetch's high watermarks; Tansu can under-report them, so read it as a floor)."""
        total = 0
        for term in self.terms.values():
            if unit is not None and term.unit != unit:
                continue
            for tp in term.partitions:
                with contextlib.suppress(Exception):  # not assigned yet
                    highwater = self._consumer.highwater(tp)
                    if highwater is not None:
                        total += max(0, highwater - term.positions.get(tp.partition, 0))
        return total

    # --- the loop -----------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            try:
                if self._reassign:
                    self._assign()
                self._sync_pauses()
                if not self.terms:
                    await asyncio.sleep(0.05)
                    continue
                batch = await self._fetch()
                if self._reassign:
                    continue  # terms changed meanwhile: read again from their positions
                batch = self._with_carry(batch)
                if batch:
                    await self._process(batch)
            except asyncio.CancelledError:
                raise
            except Exception as failure:
                log.exception("work-loop-restarted", units=sorted(self.terms))
                await self._restart(failure)

    async def _fetch(self) -> dict[TopicPartition, list[Any]]:
        """The next batch, or none as soon as the terms change (a unit claimed or let go):
        an idle loop would otherwise sit out its poll before it reads a new term's records
        (intake just handed over to this hub)."""
        self._changed.clear()
        wait_ms = 0 if self._carry else 100  # records in hand: do not wait for more
        fetch = asyncio.ensure_future(
            self._consumer.getmany(timeout_ms=wait_ms, max_records=BATCH_RECORDS)
        )
        changed = asyncio.ensure_future(self._changed.wait())
        try:
            await asyncio.wait({fetch, changed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            if not fetch.done():
                fetch.cancel()
        try:
            batch: dict[TopicPartition, list[Any]] = await fetch
        except asyncio.CancelledError:
            if not self._changed.is_set():
                raise  # the loop itself was cancelled
            return {}
        return batch

    def _assign(self) -> None:
        """Assign every held term's partitions and seek them to the terms' positions."""
        self._reassign = False
        self._carry.clear()  # every partition is read again from its term's positions
        partitions = [tp for term in self.terms.values() for tp in term.partitions]
        self._consumer.assign(partitions)
        self._paused.clear()
        for term in self.terms.values():
            for tp in term.partitions:
                self._consumer.seek(tp, term.positions.get(tp.partition, 0))

    def _sync_pauses(self) -> None:
        """Pause the partitions of terms that may not work now (lapsed lease, retry wait)."""
        now = time.monotonic()
        wanted: set[TopicPartition] = set()
        for term in self.terms.values():
            if now < term.retry_at or not self.context.may_work(term.unit, term.epoch):
                wanted.update(term.partitions)
        if wanted - self._paused:
            self._consumer.pause(*(wanted - self._paused))
        if self._paused - wanted:
            self._consumer.resume(*(self._paused - wanted))
        self._paused = wanted

    async def _restart(self, failure: Exception) -> None:
        """After a failed batch: a fresh producer, every term again from its positions."""
        retiring = asyncio.create_task(_retire(self._producer), name="work-producer-retire")
        self._retiring.add(retiring)
        retiring.add_done_callback(self._retiring.discard)
        for term in self.terms.values():
            log.warning(
                "unit-worker-restarted",
                unit=term.unit,
                epoch=term.epoch,
                cause=type(failure).__name__,
            )
        self._producer = self.context.new_producer()
        try:
            await self._producer.start()
        except Exception:
            log.exception("work-producer-start-failed")
        self._reassign = True
        self._between.set()
        self._in_hand.clear()
        await asyncio.sleep(0.2)

    async def _process(self, batch: dict[TopicPartition, list[Any]]) -> None:
        """Handle a fetched batch (most urgent first), wait once for all of its outputs'
        acknowledgements, then move the positions: a hop costs one round trip per batch."""
        by_topic = {term.topic: term for term in self.terms.values()}
        self._in_hand = {by_topic[tp.topic].unit for tp in batch if tp.topic in by_topic}
        self._between.clear()
        try:
            await self._handle_batch(batch, by_topic)
        finally:
            self._in_hand = set()
            self._between.set()

    async def _handle_batch(
        self, batch: dict[TopicPartition, list[Any]], by_topic: dict[str, Term]
    ) -> None:
        run = _BatchRun(by_topic)
        deadline = time.monotonic() + BATCH_SECONDS
        stopped: set[TopicPartition] = set()  # read again from a position of their own
        plan = handling_plan(batch)
        for step, (tp, records) in enumerate(plan):
            if tp in stopped:
                continue
            if time.monotonic() > deadline and lane_rank(tp.topic) > 0:
                self._defer(plan[step:], stopped)
                break
            if not await self._handle_records(run, tp, records):
                stopped.add(tp)
        await self._flush(run)
        await self._settle(run)

    def _defer(
        self, steps: Sequence[tuple[TopicPartition, Sequence[Any]]], stopped: set[TopicPartition]
    ) -> None:
        """Keep the batch's remaining steps for the next batch, ahead of what the next fetch
        brings for the same partitions (no fetch again, no decoding again)."""
        for tp, records in steps:
            if tp not in stopped:
                self._carry.setdefault(tp, []).extend(records)
        stopped.update(tp for tp, _ in steps)

    def _with_carry(
        self, batch: dict[TopicPartition, list[Any]]
    ) -> dict[TopicPartition, list[Any]]:
        """``batch`` behind the records a cut batch left in hand, partition by partition; a
        carried partition paused or let go meanwhile is read again from its first record."""
        if not self._carry:
            return batch
        carried, self._carry = self._carry, {}
        merged: dict[TopicPartition, list[Any]] = {}
        assigned = self._consumer.assignment()
        for tp, records in carried.items():
            if tp in self._paused or tp not in assigned:
                if tp in assigned:
                    self._consumer.seek(tp, records[0].offset)
                continue
            merged[tp] = records + batch.pop(tp, [])
        merged.update(batch)
        return merged

    async def _flush(self, run: _BatchRun) -> None:
        """Each term's held-back outputs for the batch, per partition, tagged as its last
        input there: fenced, or redone by a successor, exactly with the inputs they cover.
        They are outputs of every record of that term and partition in the batch: none of
        those records counts as done until they are acknowledged."""
        for (_, partition), (term, tag) in run.last.items():
            if term.flush is None or self.terms.get(term.unit) is not term:
                continue
            for out in term.flush(partition):
                headers = list(fence_headers(out.headers, tag))
                future = await self._producer.send(
                    out.topic, out.value, key=out.key, headers=headers
                )
                run.topics[future] = out.topic
                run.pending.append(future)
                run.flushed.setdefault((id(term), partition), []).append(future)

    def _urgent_partitions(self, by_topic: dict[str, Term]) -> list[TopicPartition]:
        """The FLASH lanes' partitions this loop reads now (not paused)."""
        return [
            tp
            for topic, term in by_topic.items()
            if lane_rank(topic) == 0
            for tp in term.partitions
            if tp not in self._paused
        ]

    async def _take_urgent(self, run: _BatchRun) -> None:
        """FLASH records fetched while a lower lane's batch is in hand are handled at once,
        not after it: a lane record admitted after the batch was fetched would otherwise
        wait behind up to ``BATCH_RECORDS`` routine deliveries."""
        urgent = self._urgent_partitions(run.by_topic)
        if not urgent:
            return
        extra = await self._consumer.getmany(*urgent, timeout_ms=0)
        for tp, records in extra.items():
            term = run.by_topic.get(tp.topic)
            if term is not None and records:
                self._in_hand.add(term.unit)
                await self._handle_records(run, tp, records)

    async def _handle_records(self, run: _BatchRun, tp: TopicPartition, records: Any) -> bool:
        """Handle ``records`` of ``tp``; False if it stopped short (the partition is read
        again from a position of its own, or every term is re-sought)."""
        term = run.by_topic.get(tp.topic)
        if term is None:
            return False
        preemptible = lane_rank(tp.topic) > 0
        for raw in records:
            if time.monotonic() - run.yielded > YIELD_SECONDS:
                await asyncio.sleep(0)  # renewals and heartbeats run between records
                run.yielded = time.monotonic()
                if preemptible:
                    await self._take_urgent(run)
            if self.terms.get(term.unit) is not term:
                # released or lost meanwhile: nothing of the batch past its positions counts;
                # read it again if the unit comes back (a new term seeks to its own start)
                self._seek_back(tp, raw.offset)
                return False
            if not self.context.may_work(term.unit, term.epoch):
                # the lease lapsed mid-batch: read the rest again if it is renewed, else
                # the next term starts from the reported positions anyway
                self._consumer.seek(tp, raw.offset)
                return False
            record = received_from_kafka(raw)
            try:
                outputs = await term.handle(record, term.epoch)
            except Exception:
                log.exception(
                    "unit-worker-crashed", unit=term.unit, epoch=term.epoch, offset=raw.offset
                )
                term.retry_at = time.monotonic() + RETRY_SECONDS
                self._reassign = True  # back to the acknowledged positions
                return False
            tag = FenceTag(term.unit, term.epoch, record.partition, record.offset)
            futures: list[asyncio.Future[Any]] = []
            for out in outputs:
                future = await self._producer.send(
                    out.topic,
                    out.value,
                    key=out.key,
                    headers=list(fence_headers(out.headers, tag)),
                )
                run.topics[future] = out.topic
                run.pending.append(future)
                futures.append(future)
            if outputs and not term.produced_any:
                term.produced_any = True
                run.first.append(term)
            run.advanced.append((term, record.partition, record.offset + 1))
            run.last[(term.unit, record.partition)] = (term, tag)
            run.outputs.append(tuple(futures))
            term.processed += 1
        return True

    def _seek_back(self, tp: TopicPartition, offset: int) -> None:
        """Read ``tp`` again from ``offset`` (if still assigned) and re-seek every term."""
        if tp in self._consumer.assignment():
            self._consumer.seek(tp, offset)
        self._reassign = True

    async def _settle(self, run: _BatchRun) -> None:
        """Wait once for the batch's outputs' acknowledgements, then move the positions."""
        pending, topics, advanced, first = run.pending, run.topics, run.advanced, run.first
        if pending:
            _, waiting = await asyncio.wait(pending, timeout=self.context.ack_timeout)
            if waiting:
                unacknowledged = sorted({topics[f] for f in waiting})
                log.warning(
                    "unit-worker-outputs-unacknowledged",
                    units=sorted({term.unit for term, _, _ in advanced}),
                    waiting=len(waiting),
                    topics=unacknowledged,
                    seconds=self.context.ack_timeout,
                )
                for term in first:
                    term.produced_any = False
                steps = [(id(t), p, position) for t, p, position in advanced]
                done = [
                    all(_acknowledged(f) for f in futures)
                    and all(_acknowledged(f) for f in run.flushed.get((term_id, p), ()))
                    for futures, (term_id, p, _) in zip(run.outputs, steps, strict=True)
                ]
                by_id = {id(t): t for t, _, _ in advanced}
                for (term_id, partition), position in acknowledged_positions(steps, done).items():
                    by_id[term_id].positions[partition] = position
                raise OutputsNotAcknowledged(
                    f"{len(waiting)} outputs to {unacknowledged} not acknowledged in "
                    f"{self.context.ack_timeout} s"
                )
            for future in pending:
                future.result()  # a produce error raises here, before any position moves
        for term, partition, position in advanced:
            term.positions[partition] = position
        for term in first:
            await self.context.on_first_output(term.unit, term.epoch, self.context.clock())


async def _retire(producer: AIOKafkaProducer) -> None:
    """Stop a producer, giving its unacknowledged batches 2 s before its connections close:
    in the background after a restart, so the fresh producer does not wait for it."""
    try:
        await asyncio.wait_for(producer.stop(), 2.0)
    except Exception:
        with contextlib.suppress(Exception):
            await producer.client.close()


def _acknowledged(future: asyncio.Future[Any]) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None


def acknowledged_positions(
    steps: Sequence[tuple[Any, int, int]], acknowledged: Sequence[bool]
) -> dict[tuple[Any, int], int]:
    """Where each (term, partition) may move after a batch only partly acknowledged: past
    its records whose outputs all were, up to its first record that was not.

    ``steps`` are (term, partition, next position) in handling order, one per record;
    ``acknowledged[i]`` says whether every output of step ``i`` was acknowledged.

    >>> acknowledged_positions([("a", 0, 5), ("a", 0, 6), ("b", 0, 9), ("a", 0, 7)],
    ...                        [True, False, True, True])
    {('a', 0): 5, ('b', 0): 9}
    """
    moved: dict[tuple[Any, int], int] = {}
    stopped: set[tuple[Any, int]] = set()
    for (term, partition, position), done in zip(steps, acknowledged, strict=True):
        key = (term, partition)
        if key in stopped:
            continue
        if done:
            moved[key] = position
        else:
            stopped.add(key)
    return moved


def upstream_verdict(
    record: ReceivedRecord, judge: Callable[[FenceTag], FenceVerdict]
) -> tuple[FenceTag | None, FenceVerdict]:
    """The fence verdict on the record a worker consumes (a lane record's intake tag)."""
    tag = fence_tag(record.headers)
    if tag is None:
        return None, FenceVerdict.FENCED
    return tag, judge(tag)
