"""Handling clocks: each delivered message must be acknowledged within its objective.

Theory of operation
-------------------
The objectives are the military handling times for each precedence (``OBJECTIVES``:
FLASH 10 min, IMMEDIATE 30 min, PRIORITY 3 h, ROUTINE 6 h), divided by ``scale`` so a demo
sees them expire (scale 60: FLASH in 10 s). One clock per message::

    start(id, recipients, precedence, now)   opens it; deadline = now + objective
    acknowledge(id, recipient, now)          crosses a recipient off; the last one closes it
    due(now)                                 reports every clock whose deadline has passed

A clock ends in exactly one of two ways, and is then forgotten:

* **closed**: every recipient acknowledged at or before the deadline; never a breach;
* **breached**: ``due(now)`` with ``now`` past the deadline reports one ``Breach`` naming
  the recipients who had not acknowledged by the deadline, then drops the clock, so the
  breach is never reported twice.

An acknowledgement timed after the deadline does not cancel a breach that is owed, so the
breaches reported depend only on the times of the events, not on how often ``due`` is
polled. Acknowledgements of unknown (or already forgotten) messages are ignored.

Memory holds the open clocks only: a heap of deadlines finds the due ones in O(log n),
and entries left behind by closed clocks are swept out whenever they outnumber the open
ones, so the heap stays within a constant factor of the open clocks.

Worked example (scale 60): ``start("m1", ["DEU", "ITA"], FLASH, 12:00:00)`` sets the
deadline to 12:00:10. DEU acknowledges at 12:00:04; ``due(12:00:10)`` reports nothing (an
acknowledgement at the deadline is in time); ``due(12:00:11)`` reports one breach for m1,
unacknowledged ``("ITA",)``, 1 s late; ``due(12:00:12)`` reports nothing more.

This module also holds the core's one rule about time: it takes timezone-aware datetimes
only (``as_utc``), since a naive one is ambiguous by hours across three hubs' time zones.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count

from pydantic import BaseModel, ConfigDict

from schemas.header import Precedence, UtcTimestamp

__all__ = [
    "OBJECTIVES",
    "Breach",
    "HandlingClocks",
    "InvalidClockScale",
    "NaiveDatetimeError",
    "as_utc",
]

OBJECTIVES: dict[Precedence, timedelta] = {
    Precedence.FLASH: timedelta(minutes=10),
    Precedence.IMMEDIATE: timedelta(minutes=30),
    Precedence.PRIORITY: timedelta(hours=3),
    Precedence.ROUTINE: timedelta(hours=6),
}

_SWEEP_SLACK = 1024  # stale heap entries tolerated before a sweep, besides 1 per open clock


class NaiveDatetimeError(ValueError):
    """A datetime without a timezone reached the core: the caller's bug, not the wire's."""


class InvalidClockScale(ValueError):
    """The demo scale must be a finite number above zero."""


def as_utc(moment: datetime, name: str = "now") -> datetime:
    """``moment`` in UTC; refuses a naive datetime, whose meaning depends on the host."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise NaiveDatetimeError(
            f"{name} must be timezone-aware, got naive {moment.isoformat()}; "
            "pass datetime.now(UTC) or attach a tzinfo"
        )
    return moment.astimezone(UTC)


class Breach(BaseModel):
    """A message not acknowledged by every recipient in time; the shell journals it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: str
    precedence: Precedence
    started_at: UtcTimestamp
    deadline: UtcTimestamp
    unacknowledged: tuple[str, ...]  # sorted
    late_seconds: float  # how far past the deadline it was when reported


@dataclass(slots=True)
class _Clock:
    serial: int  # tells this clock's heap entry from a closed predecessor's with the same id
    precedence: Precedence
    started_at: datetime
    deadline: datetime
    waiting: set[str]


class HandlingClocks:
    """Open handling clocks, by message id; see the module docstring."""

    __slots__ = ("_clocks", "_heap", "_serials", "scale")

    def __init__(self, scale: float = 1.0) -> None:
        if not (math.isfinite(scale) and scale > 0):
            raise InvalidClockScale(f"clock scale must be finite and above 0, got {scale!r}")
        self.scale = scale
        self._clocks: dict[str, _Clock] = {}
        self._heap: list[tuple[datetime, int, str]] = []
        self._serials = count()

    def objective(self, precedence: Precedence) -> timedelta:
        """The time allowed to acknowledge a message of ``precedence``, after scaling."""
        return OBJECTIVES[precedence] / self.scale

    def start(
        self, message_id: str, recipients: Iterable[str], precedence: Precedence, now: datetime
    ) -> None:
        """Open the clock for ``message_id``, or add recipients to its open clock.

        The first delivery starts the clock: recipients added later (the rest of a message
        delivered in parts) share its deadline. No recipients, no clock.
        """
        now = as_utc(now)
        waiting = set(recipients)
        clock = self._clocks.get(message_id)
        if clock is not None:
            clock.waiting |= waiting
            return
        if not waiting:
            return
        serial = next(self._serials)
        deadline = now + self.objective(precedence)
        self._clocks[message_id] = _Clock(serial, precedence, now, deadline, waiting)
        heapq.heappush(self._heap, (deadline, serial, message_id))

    def holds(self, message_id: str) -> bool:
        """True while a clock runs for ``message_id`` here (another hub may hold it)."""
        return message_id in self._clocks

    def acknowledge(self, message_id: str, recipient: str, now: datetime) -> bool:
        """Cross ``recipient`` off; True when that closed the clock (everyone in time).

        Unknown ids, recipients not waited for, and acknowledgements after the deadline
        change nothing and return False: a late acknowledgement leaves the breach owed.
        """
        now = as_utc(now)
        clock = self._clocks.get(message_id)
        if clock is None or now > clock.deadline or recipient not in clock.waiting:
            return False
        clock.waiting.discard(recipient)
        if clock.waiting:
            return False
        del self._clocks[message_id]
        if len(self._heap) > 2 * len(self._clocks) + _SWEEP_SLACK:
            self._sweep()
        return True

    def due(self, now: datetime) -> list[Breach]:
        """Every clock whose deadline is before ``now``, as breaches, earliest first; each
        is reported once and then forgotten."""
        now = as_utc(now)
        breaches: list[Breach] = []
        while self._heap and self._heap[0][0] < now:
            deadline, serial, message_id = heapq.heappop(self._heap)
            clock = self._clocks.get(message_id)
            if clock is None or clock.serial != serial:
                continue  # closed already: a stale entry
            del self._clocks[message_id]
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
        """How many clocks are running (neither closed nor reported)."""
        return len(self._clocks)

    def _sweep(self) -> None:
        """Rebuild the heap from the open clocks, dropping closed clocks' entries."""
        self._heap = [(c.deadline, c.serial, m) for m, c in self._clocks.items()]
        heapq.heapify(self._heap)
