"""Follow small journal topics from their first record, and catch up on demand.

Theory of operation: a ``TopicTail`` assigns every partition of its topics (no group, so
no join wait and no committed offsets: a journal is folded from its start by every
reader) and hands each record to ``on_record`` in offset order. ``catch_up()`` returns
once every record that existed when it was called has been handed over, which is how a
reader makes sure its fold is at least as new as something it has just read elsewhere
(a delivery made under a lease epoch it has not seen yet).

Used by hubs (one tail for all their journals), and by readers that fence deliveries; the
folding itself is the caller's (pure) business. The fetch wait adapts to the traffic
(``brokers.fetch_wait``): ``fetch_max_wait_ms`` while records flow, up to
``idle_fetch_wait_ms`` while the topics are quiet. With ``pace_ms`` the tail also rests
that long after an empty fetch (``FetchPace``: its partitions paused, no fetch at all);
anyone waiting on it (``catch_up``, ``wait_past``, ``wait_until``) ends the rest at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import structlog
from aiokafka import TopicPartition

from brokers.access import process_security
from brokers.clients import Consumer
from brokers.fetch_wait import DEFAULT_IDLE_FETCH_WAIT_MS, FetchPace, rest_paused
from brokers.records import ReceivedRecord

__all__ = ["TopicTail", "received_from_kafka"]

log = structlog.get_logger("i247.tail")

YIELD_SECONDS = 0.01  # longest stretch of folding before other tasks get the loop


def received_from_kafka(record: object) -> ReceivedRecord:
    """An aiokafka ``ConsumerRecord`` as the core's record type."""
    return ReceivedRecord(
        topic=record.topic,  # type: ignore[attr-defined]
        partition=record.partition,  # type: ignore[attr-defined]
        offset=record.offset,  # type: ignore[attr-defined]
        timestamp_ms=record.timestamp,  # type: ignore[attr-defined]
        key=record.key,  # type: ignore[attr-defined]
        value=record.value or b"",  # type: ignore[attr-defined]
        headers=tuple(record.headers or ()),  # type: ignore[attr-defined]
    )


class TopicTail:
    """A group-less reader of ``topics`` from offset 0 that keeps going until stopped."""

    def __init__(
        self,
        bootstrap: str,
        topics: Iterable[str],
        on_record: Callable[[ReceivedRecord], None],
        *,
        fetch_max_wait_ms: int = 10,
        security: Mapping[str, Any] | None = None,
        idle_fetch_wait_ms: int = DEFAULT_IDLE_FETCH_WAIT_MS,
        max_partition_fetch_bytes: int = 1_048_576,
        pace_ms: int = 0,
        busy_pace_ms: int = 0,
        waited_fetch_wait_ms: int | None = None,
    ) -> None:
        """``security``: aiokafka TLS/SASL options (default: this process's ``I247_*``);
        ``pace_ms``: the rest after an empty fetch, ``busy_pace_ms`` after one that brought
        records (0: none); ``waited_fetch_wait_ms``: the fetch wait while someone waits on
        the tail (a claim's read-back: each fetch of it is a hop of a handover)."""
        self._topics = list(topics)
        self._on_record = on_record
        self._consumer = Consumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=fetch_max_wait_ms,
            **(process_security() if security is None else security),
            idle_fetch_wait_ms=idle_fetch_wait_ms,
            max_partition_fetch_bytes=max_partition_fetch_bytes,
        )
        self._positions: dict[TopicPartition, int] = {}
        self._partitions: list[TopicPartition] = []
        self._advanced = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._pace = FetchPace(pace_ms, busy_pace_ms)
        self._waiters = 0  # callers waiting for records: no rest while there are any
        self._waited_wait_ms = waited_fetch_wait_ms
        self._wake = asyncio.Event()

    async def start(self) -> None:
        await self._consumer.start()
        for topic in self._topics:
            found = self._consumer.partitions_for_topic(topic)
            if not found:
                await self._consumer._client.force_metadata_update()
                found = self._consumer.partitions_for_topic(topic) or {0}
            self._partitions += [TopicPartition(topic, p) for p in sorted(found)]
        self._consumer.assign(self._partitions)
        await self._consumer.seek_to_beginning(*self._partitions)
        self._positions = dict.fromkeys(self._partitions, 0)
        self._task = asyncio.create_task(self._run(), name=f"tail:{','.join(self._topics)}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    async def _run(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=100)
            yielded = time.monotonic()
            for tp, records in batch.items():
                for record in records:
                    if time.monotonic() - yielded > YIELD_SECONDS:
                        await asyncio.sleep(0)  # a long fold must not starve other tasks
                        yielded = time.monotonic()
                    try:
                        self._on_record(received_from_kafka(record))
                    except Exception:  # a bad journal entry must not stop the fold
                        log.exception(
                            "journal-record-skipped", topic=tp.topic, offset=record.offset
                        )
                    self._positions[tp] = record.offset + 1
            if batch:
                async with self._advanced:
                    self._advanced.notify_all()
            count = sum(len(records) for records in batch.values())
            rest = self._pace.after(count, time.monotonic() * 1000, waiting=self._waiters)
            if rest:
                await self._rest(rest / 1000)

    async def _rest(self, seconds: float) -> None:
        """No fetch for ``seconds``, unless someone starts waiting for records."""
        self._wake.clear()
        await rest_paused(self._consumer, self._partitions, seconds, wake=self._wake)

    @contextlib.contextmanager
    def _waiting(self) -> Iterator[None]:
        """Mark a caller waiting for records: the tail fetches without resting meanwhile."""
        self._waiters += 1
        self._wake.set()
        if self._waiters == 1 and self._waited_wait_ms is not None:
            self._consumer.cap_wait(self._waited_wait_ms)
        try:
            yield
        finally:
            self._waiters -= 1
            if not self._waiters:
                self._consumer.cap_wait(None)

    def position(self, topic: str, partition: int = 0) -> int:
        """The next offset this tail will hand over for ``topic``/``partition``."""
        return self._positions.get(TopicPartition(topic, partition), 0)

    async def wait_past(self, topic: str, offset: int, partition: int = 0) -> None:
        """Return once the record at ``offset`` has been handed over."""
        tp = TopicPartition(topic, partition)
        with self._waiting():
            async with self._advanced:
                await self._advanced.wait_for(lambda: self._positions.get(tp, 0) > offset)

    async def wait_until(self, holds: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``holds()`` is true after some record was handed over; False on timeout."""
        try:
            with self._waiting():
                async with self._advanced:
                    await asyncio.wait_for(self._advanced.wait_for(holds), timeout)
        except TimeoutError:
            return False
        return True

    async def catch_up(self) -> None:
        """Return once everything written before this call has been handed over.

        Tansu 0.6 can under-report a partition's end offset after a batch of several
        records (helper-measured), so this is a floor, not proof: to wait for a record
        known to exist, use ``wait_until``.
        """
        with self._waiting():
            ends = await self._consumer.end_offsets(self._partitions)
            async with self._advanced:
                await self._advanced.wait_for(
                    lambda: all(self._positions.get(tp, 0) >= end for tp, end in ends.items())
                )
