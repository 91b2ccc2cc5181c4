"""Hit confirmation: the record's owner NCB must confirm a hit within a deadline.

Theory of operation
-------------------
A hit is acted on, but it is only a fact once the NCB that owns the record (issued the
notice, reported the document) confirms it still stands. ``answer_check`` returns a
``HitConfirmationRequest`` per hit; the shell ``open``s an exchange for each::

    open(request, now)          deadline = now + DEADLINES[urgency] / scale
    confirm(confirmation, now)  the owner answered; in time closes the exchange
    due(now)                    Reminders and Breaches now owed, each exactly once

``DEADLINES``: urgent (nominal and SLTD hits) 10 minutes, routine 1 hour, divided by
``scale`` like ``streams.clocks.HandlingClocks`` so a demo sees them fire. At **half
time** an unconfirmed exchange owes a ``Reminder`` to the owner; **after the deadline** it
owes a ``Breach``, which the shell escalates to the hub on duty; then it is forgotten.

As in ``streams.clocks``, what is owed depends only on when things happened, not on how
often ``due`` is polled: a reminder is owed iff the exchange was still open at half time
(a confirmation exactly at half time is in time), a breach iff it was still open at the
deadline; a confirmation after the deadline changes nothing (the breach stands). One
``due`` far in the future returns an exchange's reminder, then its breach.

An exchange is open until confirmed in time (``closed_at``) and forgotten once its
deadline has been processed by ``due``.

Worked example (scale 60: urgent deadline 10 s): opened at 12:00:00, ``due(12:00:04)``
is empty, ``due(12:00:05)`` is one Reminder, ``due(12:00:10)`` empty (a confirmation at
the deadline would be in time), ``due(12:00:11)`` one Breach, 1 s late; nothing after.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import count

from schemas.checks import HitConfirmation, HitConfirmationRequest, Urgency
from streams.clocks import InvalidClockScale, as_utc

__all__ = [
    "DEADLINES",
    "Breach",
    "HitConfirmations",
    "Reminder",
]

DEADLINES: dict[Urgency, timedelta] = {
    Urgency.URGENT: timedelta(minutes=10),
    Urgency.ROUTINE: timedelta(hours=1),
}


@dataclass(frozen=True, slots=True)
class Reminder:
    """Half time has passed without a confirmation: remind the owner."""

    confirmation_id: str
    owner: str
    urgency: Urgency
    deadline: datetime


@dataclass(frozen=True, slots=True)
class Breach:
    """The deadline passed without a confirmation: escalate to the hub on duty."""

    confirmation_id: str
    owner: str
    asker: str
    urgency: Urgency
    deadline: datetime
    late_seconds: float


@dataclass(slots=True)
class _Exchange:
    request: HitConfirmationRequest
    half_time: datetime
    deadline: datetime
    closed_at: datetime | None = None  # confirmed in time, at this moment


_REMIND, _BREACH = 0, 1


class HitConfirmations:
    """Open hit-confirmation exchanges, by confirmation id; see the module docstring."""

    __slots__ = ("_exchanges", "_heap", "_serials", "scale")

    def __init__(self, scale: float = 1.0) -> None:
        if not (math.isfinite(scale) and scale > 0):
            raise InvalidClockScale(f"clock scale must be finite and above 0, got {scale!r}")
        self.scale = scale
        self._exchanges: dict[str, _Exchange] = {}
        self._heap: list[tuple[datetime, int, int, str]] = []
        self._serials = count()

    def deadline_for(self, urgency: Urgency) -> timedelta:
        """The time the owner has to confirm, after scaling."""
        return DEADLINES[urgency] / self.scale

    def open(self, request: HitConfirmationRequest, now: datetime) -> None:
        """Start the exchange; opening one already open changes nothing."""
        now = as_utc(now)
        if request.confirmation_id in self._exchanges:
            return
        allowed = self.deadline_for(request.urgency)
        exchange = _Exchange(request, now + allowed / 2, now + allowed)
        self._exchanges[request.confirmation_id] = exchange
        for moment, kind in ((exchange.half_time, _REMIND), (exchange.deadline, _BREACH)):
            entry = (moment, kind, next(self._serials), request.confirmation_id)
            heapq.heappush(self._heap, entry)

    def confirm(self, confirmation: HitConfirmation, now: datetime) -> bool:
        """True when this closed an open exchange in time; a late or repeated confirmation,
        an unknown id or one not from the record's owner changes nothing."""
        now = as_utc(now)
        exchange = self._exchanges.get(confirmation.confirmation_id)
        if (
            exchange is None
            or exchange.closed_at is not None
            or confirmation.owner != exchange.request.owner
            or now > exchange.deadline
        ):
            return False
        exchange.closed_at = now
        return True

    def due(self, now: datetime) -> list[Reminder | Breach]:
        """Reminders (half time reached) and breaches (deadline passed) owed, in time order;
        each exactly once."""
        now = as_utc(now)
        owed: list[Reminder | Breach] = []
        while self._heap:
            moment, kind, _, confirmation_id = self._heap[0]
            if moment > now or (kind == _BREACH and moment == now):
                break
            heapq.heappop(self._heap)
            exchange = self._exchanges[confirmation_id]
            request = exchange.request
            closed_at = exchange.closed_at
            if kind == _REMIND:
                if closed_at is None or closed_at > moment:
                    owed.append(
                        Reminder(confirmation_id, request.owner, request.urgency, exchange.deadline)
                    )
                continue
            del self._exchanges[confirmation_id]
            if closed_at is None:
                late = (now - moment).total_seconds()
                owed.append(
                    Breach(
                        confirmation_id, request.owner, request.asker, request.urgency, moment, late
                    )
                )
        return owed

    @property
    def open_count(self) -> int:
        """Exchanges not yet confirmed and not yet reported breached."""
        return sum(1 for e in self._exchanges.values() if e.closed_at is None)
