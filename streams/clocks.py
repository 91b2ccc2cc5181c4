"""Handling clocks: each delivered message must be acknowledged within its objective.

Objectives follow military precedence: FLASH 10 min, IMMEDIATE 30 min, PRIORITY 3 h,
ROUTINE 6 h, divided by ``scale`` for demos. A clock closes when every recipient has
acknowledged; otherwise ``due`` reports one ``Breach`` when the deadline passes and
forgets the clock, so memory stays bounded by the messages in flight.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from schemas.header import Precedence

__all__ = ["OBJECTIVES", "Breach", "HandlingClocks"]

OBJECTIVES: dict[Precedence, timedelta] = {
    Precedence.FLASH: timedelta(minutes=10),
    Precedence.IMMEDIATE: timedelta(minutes=30),
    Precedence.PRIORITY: timedelta(hours=3),
    Precedence.ROUTINE: timedelta(hours=6),
}


class Breach(BaseModel):
    model_config = ConfigDict(frozen=True)

    message_id: str
    precedence: Precedence
    started_at: datetime
    deadline: datetime
    unacknowledged: tuple[str, ...]
    late_seconds: float


@dataclass
class _Clock:
    precedence: Precedence
    started_at: datetime
    deadline: datetime
    waiting: set[str]


@dataclass
class HandlingClocks:
    scale: float = 1.0
    _clocks: dict[str, _Clock] = field(default_factory=dict)
    _heap: list[tuple[datetime, str]] = field(default_factory=list)

    def objective(self, precedence: Precedence) -> timedelta:
        return OBJECTIVES[precedence] / self.scale

    def start(
        self, message_id: str, recipients: Iterable[str], precedence: Precedence, now: datetime
    ) -> None:
        waiting = set(recipients)
        if not waiting:
            return
        clock = self._clocks.get(message_id)
        if clock is not None:
            clock.waiting |= waiting
            return
        deadline = now + self.objective(precedence)
        self._clocks[message_id] = _Clock(precedence, now, deadline, waiting)
        heapq.heappush(self._heap, (deadline, message_id))

    def acknowledge(self, message_id: str, recipient: str, now: datetime) -> bool:
        """Record an acknowledgement; True when it closed the clock."""
        clock = self._clocks.get(message_id)
        if clock is None:
            return False
        clock.waiting.discard(recipient)
        if clock.waiting:
            return False
        del self._clocks[message_id]
        return True

    def due(self, now: datetime) -> list[Breach]:
        breaches = []
        while self._heap and self._heap[0][0] <= now:
            deadline, message_id = heapq.heappop(self._heap)
            clock = self._clocks.pop(message_id, None)
            if clock is None:
                continue
            breaches.append(
                Breach(
                    message_id=message_id,
                    precedence=clock.precedence,
                    started_at=clock.started_at,
                    deadline=deadline,
                    unacknowledged=tuple(sorted(clock.waiting)),
                    late_seconds=(now - deadline).total_seconds(),
                )
            )
        return breaches

    @property
    def open_count(self) -> int:
        return len(self._clocks)
