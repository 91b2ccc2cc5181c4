"""The duty roster: which CCC hub is on duty, as a pure function of UTC time.

Theory of operation
-------------------
Follow-the-sun in three 8-hour shifts, fixed in UTC so no daylight-saving change ever
moves a handover (docs/duty-roster.md gives the local times):

=============  ===============  =================================================
hub            UTC              local
=============  ===============  =================================================
Singapore      23:00 - 07:00    07:00 - 15:00 (UTC+8)
Lyon           07:00 - 15:00    08:00 - 16:00 CET, 09:00 - 17:00 CEST
Buenos Aires   15:00 - 23:00    12:00 - 20:00 (UTC-3)
=============  ===============  =================================================

The boundaries put each shift inside its city's working day: shifting them an hour either
way sends one hub to 06:00 or 21:00 local. A shift includes its start and excludes its
end, so at a handover instant exactly one hub, the incoming one, is on duty.

Compressed time for demos: ``DutyRoster(shift_seconds=10)`` rotates Singapore, Lyon,
Buenos Aires every 10 s from ``epoch`` (by default ``REAL_EPOCH``, a Singapore shift start),
so a full rotation takes 30 s. Every process of one deployment computes the same duty
from the same ``shift_seconds`` and ``epoch``, without talking to the others.

``successor(site)`` is the failover order: the next hub in follow-the-sun order, the one
that takes the lanes at the next handover anyway, so traffic moved to it by a failover
never has to move again when the failed hub's shift ends.

Worked example: at 2026-11-23 06:59:59 UTC Singapore is on duty (shift 22 Nov 23:00 to
23 Nov 07:00) and the next handover is at 07:00:00, when Lyon comes on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict

from schemas.header import UtcTimestamp
from streams.core.clocks import as_utc

__all__ = [
    "REAL_EPOCH",
    "ROTATION",
    "SHIFT_LENGTH",
    "DutyRoster",
    "InvalidRoster",
    "Shift",
    "UnknownHubSite",
]

ROTATION: tuple[str, ...] = ("singapore", "lyon", "buenos-aires")  # follow-the-sun order
SHIFT_LENGTH = timedelta(hours=8)
REAL_EPOCH = datetime(2000, 1, 1, 23, 0, tzinfo=UTC)  # a Singapore shift starts at 23:00 UTC
_SMALLEST_SHIFT = 0.001  # seconds; below this a shift rounds to nothing at µs resolution


class InvalidRoster(ValueError):
    """The roster was configured with a shift length or epoch it cannot use."""


class UnknownHubSite(ValueError):
    """A site that is not one of the three CCC hubs."""


class Shift(BaseModel):
    """One hub's turn on duty: ``start`` included, ``end`` excluded, both UTC."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    site: str
    start: UtcTimestamp
    end: UtcTimestamp


@dataclass(frozen=True, slots=True)
class DutyRoster:
    """``DutyRoster()`` is the real schedule; ``DutyRoster(shift_seconds=10)`` a demo one.

    ``epoch`` is the start of a Singapore shift; only compressed time may move it, since
    the real schedule is anchored to the cities' working days.
    """

    shift_seconds: float | None = None
    epoch: datetime | None = None
    length: timedelta = field(init=False, repr=False, compare=False)
    anchor: datetime = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.shift_seconds is None:
            if self.epoch is not None:
                raise InvalidRoster(
                    "epoch only applies to compressed time (shift_seconds); the real "
                    "schedule is fixed at 23:00, 07:00 and 15:00 UTC"
                )
            length = SHIFT_LENGTH
        else:
            if not (math.isfinite(self.shift_seconds) and self.shift_seconds >= _SMALLEST_SHIFT):
                raise InvalidRoster(
                    f"shift_seconds must be a finite number of at least {_SMALLEST_SHIFT}, "
                    f"got {self.shift_seconds!r}"
                )
            length = timedelta(seconds=self.shift_seconds)
        anchor = REAL_EPOCH if self.epoch is None else as_utc(self.epoch, "epoch")
        object.__setattr__(self, "length", length)
        object.__setattr__(self, "anchor", anchor)

    def _index(self, now: datetime) -> int:
        """How many shifts have started since the epoch (negative before it)."""
        return (as_utc(now) - self.anchor) // self.length

    def shift_at(self, now: datetime) -> Shift:
        """The shift that contains ``now`` (timezone-aware, any zone)."""
        index = self._index(now)
        start = self.anchor + index * self.length
        return Shift(site=ROTATION[index % len(ROTATION)], start=start, end=start + self.length)

    def hub_on_duty(self, now: datetime) -> str:
        """The site of the hub on duty at ``now``: ``singapore``, ``lyon`` or ``buenos-aires``."""
        return ROTATION[self._index(now) % len(ROTATION)]

    def next_handover(self, now: datetime) -> datetime:
        """The first handover strictly after ``now``: the end of the current shift, in UTC."""
        return self.anchor + (self._index(now) + 1) * self.length

    @staticmethod
    def successor(site: str) -> str:
        """Who stands in for ``site`` when it is dark: the next hub in follow-the-sun order."""
        if site not in ROTATION:
            raise UnknownHubSite(f"unknown hub site {site!r}; sites are {', '.join(ROTATION)}")
        return ROTATION[(ROTATION.index(site) + 1) % len(ROTATION)]
