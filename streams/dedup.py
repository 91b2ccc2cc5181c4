"""Replay memory: has this message id been admitted before, and from where?

Same id, same origin (topic, partition, offset): our own at-least-once reprocessing after
a restart, dropped silently. Same id, another origin: someone re-published it, a replay.
Ids are remembered for ``horizon`` seconds after their creation time: intake refuses
anything older as stale, so older ids can never come back as anything but stale.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

__all__ = ["Origin", "SeenMessages", "Verdict"]

Origin = tuple[str, int, int]


class Verdict(StrEnum):
    NEW = "new"
    REDELIVERY = "redelivery"
    REPLAY = "replay"


@dataclass
class SeenMessages:
    horizon: float = 300.0
    _origins: dict[str, Origin] = field(default_factory=dict)
    _expiry: list[tuple[datetime, str]] = field(default_factory=list)

    def _forget_old(self, now: datetime) -> None:
        limit = now - timedelta(seconds=self.horizon)
        while self._expiry and self._expiry[0][0] < limit:
            _, message_id = heapq.heappop(self._expiry)
            self._origins.pop(message_id, None)

    def remember(
        self, message_id: str, origin: Origin, created_at: datetime, now: datetime
    ) -> None:
        """Load an id admitted earlier (rebuilding after a restart)."""
        if message_id not in self._origins:
            self._origins[message_id] = origin
            heapq.heappush(self._expiry, (created_at, message_id))
        self._forget_old(now)

    def observe(
        self, message_id: str, origin: Origin, created_at: datetime, now: datetime
    ) -> Verdict:
        self._forget_old(now)
        known = self._origins.get(message_id)
        if known is None:
            self.remember(message_id, origin, created_at, now)
            return Verdict.NEW
        return Verdict.REDELIVERY if known == origin else Verdict.REPLAY

    def __len__(self) -> int:
        return len(self._origins)
