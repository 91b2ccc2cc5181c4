"""Replay memory: has this message id been admitted before, and from where?

Theory of operation
-------------------
Kafka delivers at least once, so intake may read the same record twice; and anyone who
can write to the inbound topic can re-publish a sealed message, signature and all. Both
look like "an id seen before"; the place the record was read tells them apart::

    observe(id, origin, created_at, now)
      id unknown                        -> NEW          remember it; admit the message
      id known, from the same origin    -> REDELIVERY   our own reprocessing: drop silently
      id known, from another origin     -> REPLAY       re-published: dead-letter it

``origin`` is ``(topic, partition, offset)``: a record never moves, so the same origin
means the same record read again (after a restart or a rebalance), never a copy.

Horizon, and its coupling to intake's freshness window
------------------------------------------------------
An id is remembered until ``horizon`` seconds after its *created* time (the signed
``created_at`` of the header, which a replayer cannot change), then forgotten. That is safe
only because intake refuses as stale any message created more than its freshness window
ago, before it asks this memory: a forgotten id can only come back stale. So ``horizon``
must be at least intake's freshness window (the hub passes the same
``I247_FRESHNESS_SECONDS`` to both). Ids are forgotten in created-at order from a heap, so
memory holds only ids created within the horizon (plus intake's future-skew allowance):
bounded by the arrival rate times the horizon, about 60,000 ids at 200 messages a second
and 300 s. There is deliberately no capacity cap that would evict younger ids: an evicted
id could be replayed as NEW.

After a restart the memory is rebuilt from the lanes (``streams.hub.replay_memory``), which
record where intake read each admitted message: ``remember`` loads one entry at a time.

Worked example (horizon 300 s): ``observe("m1", ("i247.inbound", 0, 7), 12:00:00,
12:00:01)`` is NEW; the same call again is REDELIVERY; with origin
``("i247.inbound", 2, 40)`` it is REPLAY. After 12:05:00 (created + 300 s) m1 is forgotten,
and intake refuses it as stale before asking.
"""

from __future__ import annotations

import heapq
import math
from datetime import datetime, timedelta
from enum import StrEnum

from streams.core.clocks import as_utc

__all__ = ["InvalidHorizon", "Origin", "SeenMessages", "Verdict"]

Origin = tuple[str, int, int]
"""Where intake read a record: (topic, partition, offset)."""


class Verdict(StrEnum):
    """What an id seen at an origin is."""

    NEW = "new"
    REDELIVERY = "redelivery"  # same id, same origin: ours, suppress silently
    REPLAY = "replay"  # same id, another origin: someone re-published it, dead-letter it


class InvalidHorizon(ValueError):
    """The horizon must be a finite number of seconds above zero."""


class SeenMessages:
    """Ids admitted within the horizon, each with the origin it was first admitted from."""

    __slots__ = ("_expiry", "_origins", "horizon")

    def __init__(self, horizon: float = 300.0) -> None:
        if not (math.isfinite(horizon) and horizon > 0):
            raise InvalidHorizon(f"horizon must be finite seconds above 0, got {horizon!r}")
        self.horizon = horizon
        self._origins: dict[str, Origin] = {}
        self._expiry: list[tuple[datetime, str]] = []  # (created_at, id): one per known id

    def observe(
        self, message_id: str, origin: Origin, created_at: datetime, now: datetime
    ) -> Verdict:
        """Classify ``message_id`` read at ``origin``, remembering it when NEW."""
        limit = self._forget_old(now)
        known = self._origins.get(message_id)
        if known is None:
            self._add(message_id, origin, created_at, limit)
            return Verdict.NEW
        return Verdict.REDELIVERY if known == origin else Verdict.REPLAY

    def remember(
        self, message_id: str, origin: Origin, created_at: datetime, now: datetime
    ) -> bool:
        """Load an id admitted earlier (rebuilding after a restart); True if it was added.

        An id already known keeps its first origin; one created before the horizon is not
        loaded, since intake would refuse it as stale anyway.
        """
        limit = self._forget_old(now)
        if message_id in self._origins:
            return False
        return self._add(message_id, origin, created_at, limit)

    def origin_of(self, message_id: str) -> Origin | None:
        """Where ``message_id`` was first admitted, if remembered: for a replay's reason."""
        return self._origins.get(message_id)

    def __len__(self) -> int:
        return len(self._origins)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._origins

    def _add(self, message_id: str, origin: Origin, created_at: datetime, limit: datetime) -> bool:
        created_at = as_utc(created_at, "created_at")
        if created_at < limit:
            return False  # already past the horizon: stale for intake, nothing to remember
        self._origins[message_id] = origin
        heapq.heappush(self._expiry, (created_at, message_id))
        return True

    def _forget_old(self, now: datetime) -> datetime:
        """Forget ids created before the horizon; return that limit."""
        limit = as_utc(now) - timedelta(seconds=self.horizon)
        while self._expiry and self._expiry[0][0] < limit:
            _, message_id = heapq.heappop(self._expiry)
            del self._origins[message_id]
        return limit
