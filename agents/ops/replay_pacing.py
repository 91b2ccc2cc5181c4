"""When each replayed record is sent: a pure schedule from original timestamps and a speed.

Theory of operation: the first selected record goes at once; each later one goes
``(t - t_first) / speed`` after it, where ``t`` is its original Kafka timestamp. Records
are sent in the order they are read (which keeps each key's order), so a record whose
timestamp is earlier than its predecessor's (producers' clocks differ) is never scheduled
before it: the schedule is the running maximum. ``Pace(None)`` sends as fast as possible.

Worked example, records at 0 s, 2 s, 1 s and 10 s at 10x::

    >>> schedule([0, 2_000, 1_000, 10_000], Pace(10.0))
    [0.0, 0.2, 0.2, 1.0]
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["Pace", "Pacer", "parse_pace", "schedule"]

_SPEED = re.compile(r"^(\d+(?:\.\d+)?)x?$")


@dataclass(frozen=True, slots=True)
class Pace:
    """A replay speed: 1.0 is the original pace, 10.0 ten times faster, None no waiting."""

    speed: float | None

    def __post_init__(self) -> None:
        if self.speed is not None and not self.speed > 0:
            raise ValueError(f"a replay speed must be above 0, not {self.speed}")

    def __str__(self) -> str:
        return "max" if self.speed is None else f"{self.speed:g}x"


def parse_pace(text: str) -> Pace:
    """``original`` (1x), ``max`` (no waiting), or a speed such as ``10x``, ``0.5x``, ``3``."""
    text = text.strip().lower()
    if text == "original":
        return Pace(1.0)
    if text == "max":
        return Pace(None)
    match = _SPEED.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"pace {text!r}: use original, max, or a speed above 0 such as 10x")
    return Pace(float(match.group(1)))


@dataclass(slots=True)
class Pacer:
    """The schedule one record at a time, for a stream whose length is unknown."""

    pace: Pace
    _first_ms: int | None = field(default=None, init=False)
    _last_due: float = field(default=0.0, init=False)

    def due(self, timestamp_ms: int) -> float:
        """Seconds after the first record at which the record stamped ``timestamp_ms`` goes."""
        if self._first_ms is None:
            self._first_ms = timestamp_ms
        if self.pace.speed is None:
            return 0.0
        offset = (timestamp_ms - self._first_ms) / 1000.0 / self.pace.speed
        self._last_due = max(self._last_due, offset)
        return self._last_due


def schedule(timestamps_ms: Iterable[int], pace: Pace) -> list[float]:
    """Send times in seconds after the first record, for records read in this order."""
    pacer = Pacer(pace)
    return [pacer.due(t) for t in timestamps_ms]
