"""Read recent traffic straight from Kafka, by time, up to where the log ended at start.

Theory of operation: list the topics under the prefix from the cluster's metadata and
keep those ``select`` accepts; for each of their partitions ask the broker for the first
offset at or after ``since`` (``offsets_for_times``; the beginning when ``since`` is
unset) and capture the end offset *once*, at start. Partitions are ``assign()``-ed, with
no group, so nothing is committed and no one else's place moves. Reading stops when every
partition has reached its captured end, so a replay terminates however busy the topics
are; records appended since are left for the next replay.

The partitions' records are merged by timestamp (``TimeMerge``), each partition's own
order kept, so a replay at the original pace follows the traffic's time line.

The end offset is a lower bound: the embedded Tansu broker reports the end of a partition
as one past the *first* record of its last batch, so a partition is read one fetch beyond
it, keeping records stamped before the replay began and stopping at the first later one
(or at an empty fetch). On Kafka that fetch finds only newer records, or none.

Timestamps are checked again by the caller's filter: brokers seek by time only roughly
(a producer's clock may lag), and the embedded Tansu broker answers ``offsets_for_times``
with offset 0, which is correct if slow.

Worked example::

    async with KafkaTimeSource(settings, select=lambda t: t.endswith(".inbound"),
                               since_ms=now_ms - 900_000) as source:
        async for record in source:
            ...
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from brokers.clients import make_consumer
from brokers.records import ReceivedRecord
from brokers.settings import Settings
from brokers.tail import received_from_kafka

__all__ = ["KafkaTimeSource", "PartitionRange", "ReplaySourceError", "TimeMerge"]

log = structlog.get_logger("i247.replay")

PartitionKey = tuple[str, int]


class ReplaySourceError(RuntimeError):
    """The broker stopped answering before the captured end offsets were reached."""


@dataclass(frozen=True, slots=True)
class PartitionRange:
    """Offsets ``[start, end)`` of one partition to read."""

    topic: str
    partition: int
    start: int
    end: int

    @property
    def size(self) -> int:
        return max(0, self.end - self.start)


class TimeMerge:
    """Merge per-partition streams by timestamp without reordering any one partition.

    A record is released only when every partition still being read has a record
    waiting, so nothing later can arrive with an earlier timestamp at a partition's head.

    >>> merge = TimeMerge([("a", 0), ("b", 0)])
    >>> merge.push(("a", 0), [ReceivedRecord("a", 0, 0, 5, None, b"")])
    >>> merge.pop_ready()
    []
    >>> merge.push(("b", 0), [ReceivedRecord("b", 0, 0, 3, None, b"")])
    >>> [r.topic for r in merge.pop_ready()]
    ['b']
    >>> merge.finish(("b", 0))
    >>> [r.topic for r in merge.pop_ready()]
    ['a']
    """

    def __init__(self, keys: Iterable[PartitionKey]) -> None:
        self._queues: dict[PartitionKey, deque[ReceivedRecord]] = {k: deque() for k in keys}
        self._live = set(self._queues)
        self._starved = set(self._queues)
        self._heads: list[tuple[int, PartitionKey]] = []

    def push(self, key: PartitionKey, records: Iterable[ReceivedRecord]) -> None:
        queue = self._queues[key]
        was_empty = not queue
        queue.extend(records)
        if was_empty and queue:
            heapq.heappush(self._heads, (queue[0].timestamp_ms, key))
            self._starved.discard(key)

    def finish(self, key: PartitionKey) -> None:
        """No more records will come for ``key``."""
        self._live.discard(key)
        self._starved.discard(key)

    def pop_ready(self) -> list[ReceivedRecord]:
        ready: list[ReceivedRecord] = []
        while self._heads and not self._starved:
            _, key = heapq.heappop(self._heads)
            queue = self._queues[key]
            ready.append(queue.popleft())
            if queue:
                heapq.heappush(self._heads, (queue[0].timestamp_ms, key))
            elif key in self._live:
                self._starved.add(key)
        return ready

    @property
    def done(self) -> bool:
        return not self._live and not self._heads


class KafkaTimeSource:
    """Records of the selected topics from ``since_ms`` to the end offsets seen at start."""

    def __init__(
        self,
        settings: Settings,
        *,
        select: Callable[[str], bool],
        since_ms: int | None = None,
        idle_timeout_s: float = 30.0,
    ) -> None:
        self.settings = settings
        self.select = select
        self.since_ms = since_ms
        self.idle_timeout_s = idle_timeout_s
        self.ranges: list[PartitionRange] = []
        self._consumer: AIOKafkaConsumer | None = None
        self._planned_at_ms = 0

    @property
    def total(self) -> int:
        """Records in the planned ranges: an upper bound of what the replay reads."""
        return sum(r.size for r in self.ranges)

    async def __aenter__(self) -> KafkaTimeSource:
        consumer = make_consumer(self.settings, group_id=None)
        await consumer.start()
        self._consumer = consumer
        try:
            self.ranges = await self._plan(consumer)
        except BaseException:
            await self.close()
            raise
        log.info(
            "replay-source-planned",
            topics=len({r.topic for r in self.ranges}),
            partitions=len(self.ranges),
            records=self.total,
            since_ms=self.since_ms,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    async def _plan(self, consumer: AIOKafkaConsumer) -> list[PartitionRange]:
        self._planned_at_ms = int(time.time() * 1000)
        prefix = f"{self.settings.topic_prefix}."
        names = sorted(
            t for t in await consumer.topics() if t.startswith(prefix) and self.select(t)
        )
        partitions = [
            TopicPartition(name, p)
            for name in names
            for p in sorted(consumer.partitions_for_topic(name) or ())
        ]
        if not partitions:
            return []
        ends = await consumer.end_offsets(partitions)
        if self.since_ms is None:
            starts = await consumer.beginning_offsets(partitions)
        else:
            found = await consumer.offsets_for_times(dict.fromkeys(partitions, self.since_ms))
            starts = {tp: ends[tp] if hit is None else hit.offset for tp, hit in found.items()}
        return [PartitionRange(tp.topic, tp.partition, starts[tp], ends[tp]) for tp in partitions]

    def __aiter__(self) -> AsyncIterator[ReceivedRecord]:
        return self._records()

    async def _records(self) -> AsyncIterator[ReceivedRecord]:
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("use `async with KafkaTimeSource(...)` before iterating")
        todo = [r for r in self.ranges if r.size > 0]
        ends = {TopicPartition(r.topic, r.partition): r.end for r in todo}
        merge = TimeMerge((r.topic, r.partition) for r in todo)
        consumer.assign(list(ends))
        for r in todo:
            consumer.seek(TopicPartition(r.topic, r.partition), r.start)
        pending, past_end, closed = set(ends), set[TopicPartition](), set[TopicPartition]()
        quiet_since = time.monotonic()
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=200)
            if any(batch.values()):
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > self.idle_timeout_s:
                raise ReplaySourceError(
                    f"no records for {self.idle_timeout_s:.0f} s while "
                    f"{len(pending)} partition(s) were short of their end offsets "
                    f"(e.g. {sorted(pending)[0]}); is the broker up?"
                )
            for tp, chunk in batch.items():
                keep = []
                for raw in chunk:
                    if raw.offset < ends[tp] or raw.timestamp < self._planned_at_ms:
                        keep.append(received_from_kafka(raw))
                    else:
                        closed.add(tp)
                        break
                merge.push((tp.topic, tp.partition), keep)
            for tp in list(pending):
                if tp in closed or (tp in past_end and not batch.get(tp)):
                    pending.discard(tp)
                    merge.finish((tp.topic, tp.partition))
                elif await consumer.position(tp) >= ends[tp]:
                    past_end.add(tp)
            for record in merge.pop_ready():
                yield record
        for record in merge.pop_ready():
            yield record
