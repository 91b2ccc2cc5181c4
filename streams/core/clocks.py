"""The CCC's clocks: how long each is, and the core's one rule about time.

Theory of operation
-------------------
``OBJECTIVES`` are the military handling times for each precedence (FLASH 10 min,
IMMEDIATE 30 min, PRIORITY 3 h, ROUTINE 6 h) within which every recipient must
acknowledge a delivered message; ``CONFIRMATION_DEADLINES`` the time a record's owner has
to confirm a hit (urgent 10 min, routine 1 h; reminded at half time). A deployment divides
them by ``Settings.clock_scale`` so a demo sees them expire (scale 60: FLASH in 10 s).

The clocks themselves are desk state, folded from the journal by every hub
(``streams.core.desk_state``): the hub that delivers a message journals its deadline, and
whichever hub holds intake when it passes reports the breach.

The core takes timezone-aware datetimes only (``as_utc``), since a naive one is ambiguous
by hours across three hubs' time zones.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.checks import Urgency
from schemas.header import Precedence

__all__ = [
    "CONFIRMATION_DEADLINES",
    "OBJECTIVES",
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

CONFIRMATION_DEADLINES: dict[Urgency, timedelta] = {
    Urgency.URGENT: timedelta(minutes=10),
    Urgency.ROUTINE: timedelta(hours=1),
}


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
