"""Fetch waits that follow the traffic: short while records flow, long when a topic is idle.

Tansu wakes a waiting fetch late when a record arrives (measured: 91-701 ms after it, in
steps), so a consumer's ``fetch_max_wait_ms`` bounds its per-hop latency and sets how often
it costs the broker a fetch while nothing happens. ``AdaptiveFetchWait`` is the pure policy:
the wait is ``idle_share`` of the time since the last record, clamped to ``[short_ms,
idle_ms]``, and drops back to ``short_ms`` as soon as records arrive. A record after a
silence of S thus waits at most ``idle_share * S`` (and never more than ``idle_ms``) for its
fetch, while an idle consumer costs the broker one fetch per ``idle_ms`` instead of one per
``short_ms``.

``FetchPace`` is a reader's pacing on top of that: after an empty fetch it rests
``pace_ms`` (its partitions paused, so no fetch at all) before fetching again; a record
ends the pacing. Tansu 0.6 does end a waiting fetch soon after a record arrives, and its
CPU per fetch grows with the partitions named, so for readers off the message path
(journals, the archive) fewer fetches save more than shorter waits would cost.

``AdaptiveConsumer`` is an ``AIOKafkaConsumer`` whose ``getmany`` feeds the policy and
sets the wait its fetcher puts into the next FetchRequest (aiokafka reads
``_fetcher._fetch_max_wait_ms`` for each request it builds; the fetcher prefetches in a
background task, so the new wait applies from the next request on).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = [
    "DEFAULT_IDLE_FETCH_WAIT_MS",
    "AdaptiveConsumer",
    "AdaptiveFetchWait",
    "FetchPace",
    "rest_paused",
]

DEFAULT_IDLE_FETCH_WAIT_MS = 250
"""The idle cap where no settings are at hand (``I247_IDLE_FETCH_WAIT_MS`` sets it)."""


@dataclass
class AdaptiveFetchWait:
    """The fetch wait (ms) for the next request, from when records last arrived."""

    short_ms: int
    idle_ms: int
    idle_share: float = 0.25
    last_record_ms: float | None = None
    wait_ms: int = 0

    def __post_init__(self) -> None:
        self.idle_ms = max(self.idle_ms, self.short_ms)
        self.wait_ms = self.short_ms

    def observe(self, records: int, now_ms: float) -> int:
        """Note a poll that brought ``records`` at ``now_ms``; return the wait to use next."""
        if records or self.last_record_ms is None:
            self.last_record_ms = now_ms
            self.wait_ms = self.short_ms
            return self.wait_ms
        idle_for = max(0.0, now_ms - self.last_record_ms)
        self.wait_ms = int(min(self.idle_ms, max(self.short_ms, idle_for * self.idle_share)))
        return self.wait_ms


@dataclass
class FetchPace:
    """How long a reader rests before its next fetch: ``pace_ms`` after an empty one,
    ``busy_pace_ms`` after one that brought records (0 disables either), and nothing while
    someone waits for a record (a delivery under a lease term not read yet): a reader that
    needs the journal fetches at once.

    ``busy_pace_ms`` is for readers off the message path that name long partitions (the
    lanes): Tansu's CPU per fetch that returns records grows with the record batches
    already in the partition (0.66 ms at 1,000, 3.2 ms at 6,000, measured), so under
    traffic such a reader costs the broker in proportion to how often it fetches.

    >>> pace = FetchPace(pace_ms=250)
    >>> pace.after(0, now_ms=1_000), pace.rest_ms(now_ms=1_100), pace.after(3, now_ms=1_300)
    (250, 150, 0)
    >>> pace.after(0, now_ms=1_400, waiting=1)
    0
    >>> FetchPace(pace_ms=250, busy_pace_ms=100).after(3, now_ms=1_000)
    100
    """

    pace_ms: int
    busy_pace_ms: int = 0
    resume_at_ms: float = 0.0

    def after(self, records: int, now_ms: float, *, waiting: int = 0) -> int:
        """Note a fetch that brought ``records`` at ``now_ms`` while ``waiting`` callers
        wait for records; return the rest it earns."""
        rest = self.busy_pace_ms if records else self.pace_ms
        if waiting or rest <= 0:
            self.resume_at_ms = 0.0
            return 0
        self.resume_at_ms = now_ms + rest
        return rest

    def rest_ms(self, now_ms: float) -> float:
        """What is left of the current rest at ``now_ms`` (0 once it is over)."""
        return max(0.0, self.resume_at_ms - now_ms)


class AdaptiveConsumer(AIOKafkaConsumer):  # type: ignore[misc]
    """An AIOKafkaConsumer whose fetch wait adapts to the traffic (``AdaptiveFetchWait``)."""

    def __init__(self, *topics: str, idle_fetch_wait_ms: int, **options: Any) -> None:
        super().__init__(*topics, **options)
        self.fetch_wait = AdaptiveFetchWait(
            short_ms=int(options.get("fetch_max_wait_ms", 500)), idle_ms=idle_fetch_wait_ms
        )
        self._cap_ms: int | None = None

    def set_idle_wait(self, idle_ms: int) -> None:
        """The longest wait while nothing arrives, from the next poll on."""
        self.fetch_wait.idle_ms = max(idle_ms, self.fetch_wait.short_ms)

    def cap_wait(self, cap_ms: int | None) -> None:
        """Fetch with at most ``cap_ms`` of wait from the next request on (``None``: the
        policy's wait again): someone is waiting for the next record."""
        self._cap_ms = cap_ms
        self._set_wait(self.fetch_wait.wait_ms)

    def _set_wait(self, wait_ms: int) -> None:
        if self._cap_ms is not None:
            wait_ms = min(wait_ms, self._cap_ms)
        fetcher = getattr(self, "_fetcher", None)
        if fetcher is not None:
            fetcher._fetch_max_wait_ms = wait_ms

    async def getmany(self, *partitions: Any, timeout_ms: int = 0, **options: Any) -> Any:
        batch = await super().getmany(*partitions, timeout_ms=timeout_ms, **options)
        records = sum(len(chunk) for chunk in batch.values())
        self._set_wait(self.fetch_wait.observe(records, time.monotonic() * 1000))
        return batch


async def rest_paused(
    consumer: AIOKafkaConsumer,
    partitions: Collection[TopicPartition],
    seconds: float,
    *,
    wake: asyncio.Event | None = None,
) -> None:
    """No fetch of ``partitions`` for ``seconds`` (paused, then resumed), or until ``wake``
    is set: a ``FetchPace`` rest, for every reader that paces its fetches."""
    consumer.pause(*partitions)
    try:
        if wake is None:
            await asyncio.sleep(seconds)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), seconds)
    finally:
        consumer.resume(*partitions)
