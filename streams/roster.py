"""The duty roster: which CCC hub is on duty, as a pure function of UTC time.

Follow-the-sun in three 8-hour shifts (UTC): Singapore 22:00-06:00 (06:00-14:00 local),
Lyon 06:00-14:00 (07:00-15:00 CET), Buenos Aires 14:00-22:00 (11:00-19:00 local). A shift
includes its start instant and excludes its end. For demos, ``shift_seconds`` compresses
a shift to that many seconds, rotating Singapore, Lyon, Buenos Aires from ``epoch``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["ROTATION", "DutyRoster", "Shift"]

ROTATION: tuple[str, ...] = ("singapore", "lyon", "buenos-aires")
_FIRST_SHIFT_START_HOUR = 22  # Singapore's shift starts at 22:00 UTC the day before
_EPOCH = datetime(2000, 1, 1, 22, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Shift:
    site: str
    start: datetime
    end: datetime


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("the roster needs timezone-aware times; pass datetime.now(UTC)")
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class DutyRoster:
    """``DutyRoster()`` is the real schedule; ``DutyRoster(shift_seconds=10)`` a demo one."""

    shift_seconds: float | None = None
    epoch: datetime = _EPOCH

    @property
    def length(self) -> timedelta:
        return timedelta(seconds=self.shift_seconds) if self.shift_seconds else timedelta(hours=8)

    def shift_at(self, now: datetime) -> Shift:
        now = _utc(now)
        index = (now - _utc(self.epoch)) // self.length
        start = _utc(self.epoch) + index * self.length
        return Shift(ROTATION[index % len(ROTATION)], start, start + self.length)

    def hub_on_duty(self, now: datetime) -> str:
        return self.shift_at(now).site

    def next_handover(self, now: datetime) -> datetime:
        return self.shift_at(now).end

    @staticmethod
    def successor(site: str) -> str:
        """Who stands in for ``site``: the next hub in follow-the-sun order."""
        return ROTATION[(ROTATION.index(site) + 1) % len(ROTATION)]
