"""The soak's verdict: is each process life's memory flat, and did the run pass?

Pure. A hub or gateway killed and restarted has several lives, each its own RSS series
(``hub:lyon#2``); a life grows while it starts (imports, keys, the journals' history, the
databases), so judging it from its first sample would call every restart a leak. Each
life is judged on the second half of its span only: the least-squares slope of the
samples taken after the midpoint between its first and last sample. A life shorter than
``MIN_LIFE_SECONDS`` (a hub's replay memory rightly grows through the first freshness
window, 300 s) or with fewer than ``min_samples`` samples in that half is ``short``
(not judged); the broker (Tansu on
memory storage keeps every record) and the simulator (its books keep every message) grow
by design and are ``exempt``.

Worked example::

    >>> life = [(0, 20.0), (60, 80.0), (120, 90.0), (180, 90.5), (240, 90.4), (300, 90.6)]
    >>> memory_verdict("hub:lyon#1", life).reading
    'flat'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "EXEMPT_ROLES",
    "FLAT_MB_PER_MIN",
    "MIN_LIFE_SECONDS",
    "MemoryVerdict",
    "memory_verdict",
    "second_half",
    "soak_summary",
]

Reading = Literal["flat", "grows", "short", "exempt"]

FLAT_MB_PER_MIN = 3.0
"""Second-half growth at or under this is flat: a leak of one KiB per message at the
soak's 200 messages a second is 12 MiB a minute; a hub's replay memory and open clocks
level off within the freshness window (300 s)."""

EXEMPT_ROLES = ("broker", "simulate")

MIN_LIFE_SECONDS = 300.0
"""Lives shorter than this are not judged: a hub remembers every message admitted within
the freshness window (``I247_FRESHNESS_SECONDS``, 300) before its memory levels off."""


@dataclass(frozen=True, slots=True)
class MemoryVerdict:
    """One life's reading and the figures behind it (MiB, MiB a minute)."""

    life: str
    reading: Reading
    samples: int
    judged_samples: int
    slope_mb_per_min: float | None
    last_mb: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "reading": self.reading,
            "samples": self.samples,
            "judged_samples": self.judged_samples,
            "second_half_slope_mb_per_min": self.slope_mb_per_min,
            "last_mb": self.last_mb,
        }


def second_half(samples: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The samples at or after the midpoint of the life's span.

    >>> second_half([(0, 1.0), (10, 2.0), (20, 3.0)])
    [(10, 2.0), (20, 3.0)]
    """
    if not samples:
        return []
    middle = (samples[0][0] + samples[-1][0]) / 2
    return [(t, m) for t, m in samples if t >= middle]


def _slope(samples: Sequence[tuple[float, float]]) -> float | None:
    times = [t for t, _ in samples]
    if len(samples) < 2 or max(times) == min(times):
        return None
    mean_t = sum(times) / len(times)
    mean_m = sum(m for _, m in samples) / len(samples)
    spread = sum((t - mean_t) ** 2 for t in times)
    return round(60 * sum((t - mean_t) * (m - mean_m) for t, m in samples) / spread, 2)


def memory_verdict(
    life: str,
    samples: Sequence[tuple[float, float]],
    *,
    flat_mb_per_min: float = FLAT_MB_PER_MIN,
    min_samples: int = 3,
    min_seconds: float = MIN_LIFE_SECONDS,
) -> MemoryVerdict:
    """Judge one life (``role#n``, or ``broker``/``simulate``) from its (seconds, MiB)."""
    judged = second_half(samples)
    slope = _slope(judged)
    last = round(samples[-1][1], 1) if samples else None
    reading: Reading
    if life.split("#", 1)[0] in EXEMPT_ROLES:
        reading = "exempt"
    elif len(judged) < min_samples or slope is None or samples[-1][0] - samples[0][0] < min_seconds:
        reading = "short"
    else:
        reading = "flat" if slope <= flat_mb_per_min else "grows"
    return MemoryVerdict(life, reading, len(samples), len(judged), slope, last)


def soak_summary(
    books: Mapping[str, Any],
    gateways: Mapping[str, Mapping[str, Any]],
    memory: Mapping[str, MemoryVerdict],
) -> tuple[bool, str]:
    """(passed, the one line a run ends with): lost 0, undecided 0, nothing handed over
    twice or invented by a gateway, and every judged life flat.

    >>> soak_summary({"lost": 0, "undecided": 0}, {"DEU": {"lost": 0, "duplicated": 0,
    ...     "unexpected": 0}}, {})
    (True, 'SOAK PASS: lost 0, undecided 0, duplicates 0, unexpected 0, memory not judged (no life of 300 s) (0 lives judged, 0 short, 0 exempt)')
    """  # noqa: E501  # a doctest line is as long as the line it checks
    lost = int(books.get("lost") or 0) + sum(int(g.get("lost", 0)) for g in gateways.values())
    undecided = int(books.get("undecided") or 0)
    duplicates = sum(int(g.get("duplicated", 0)) for g in gateways.values())
    unexpected = sum(int(g.get("unexpected", 0)) for g in gateways.values())
    readings = [v.reading for v in memory.values()]
    growing = sorted(life for life, v in memory.items() if v.reading == "grows")
    judged = readings.count("flat") + len(growing)
    missing = books.get("lost") is None or books.get("undecided") is None
    passed = not (lost or undecided or duplicates or unexpected or growing or missing)
    flat = "memory flat" if judged else f"memory not judged (no life of {MIN_LIFE_SECONDS:g} s)"
    if growing:
        flat = f"memory grows: {', '.join(growing)}"
    line = (
        f"SOAK {'PASS' if passed else 'FAIL'}: lost {lost}, undecided {undecided}, "
        f"duplicates {duplicates}, unexpected {unexpected}, {flat} ({judged} lives judged, "
        f"{readings.count('short')} short, {readings.count('exempt')} exempt)"
    )
    if missing:
        line += "; the simulator's books are missing (see its .err)"
    return passed, line
