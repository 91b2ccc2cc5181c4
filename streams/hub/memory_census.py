"""A hub's memory census: where its Python allocations grew, for a soak that sees it grow.

``I247_MEMORY_CENSUS=60`` makes a hub trace its allocations (``tracemalloc``, one frame:
it slows the hub, so it is off unless asked) and log ``memory-census`` every 60 s: the
traced total and the source lines whose allocations grew most since the hub started. A
growing line that is a bounded structure filling (the replay memory, the delivery
ledger) levels off; a leak keeps growing.
"""

from __future__ import annotations

import asyncio
import os
import tracemalloc
from collections.abc import Mapping
from dataclasses import dataclass

import structlog

__all__ = [
    "CENSUS_VARIABLE",
    "CensusLine",
    "InvalidCensusInterval",
    "census_interval",
    "grown_lines",
    "take_census",
]

CENSUS_VARIABLE = "I247_MEMORY_CENSUS"
TOP_LINES = 12

log = structlog.get_logger("i247.hub")


class InvalidCensusInterval(ValueError):
    """``I247_MEMORY_CENSUS`` is not a number of seconds above zero."""


@dataclass(frozen=True, slots=True)
class CensusLine:
    """One source line: bytes it holds now, and how many more than at the baseline."""

    where: str
    size: int
    grown: int


def census_interval(environ: Mapping[str, str] = os.environ) -> float | None:
    """Seconds between census lines, or None when the census is off (unset or blank)."""
    text = environ.get(CENSUS_VARIABLE, "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise InvalidCensusInterval(
            f"{CENSUS_VARIABLE}={text!r}: give the seconds between census lines, e.g. 60 "
            "(unset it to turn the census off)"
        )
    return seconds


def grown_lines(
    baseline: tracemalloc.Snapshot, now: tracemalloc.Snapshot, top: int = TOP_LINES
) -> list[CensusLine]:
    """The ``top`` source lines whose allocations grew most between the two snapshots."""
    stats = now.compare_to(baseline, "lineno")
    stats.sort(key=lambda s: s.size_diff, reverse=True)
    return [
        CensusLine(f"{s.traceback[0].filename}:{s.traceback[0].lineno}", s.size, s.size_diff)
        for s in stats[:top]
        if s.size_diff > 0
    ]


def _snapshot() -> tracemalloc.Snapshot:
    return tracemalloc.take_snapshot().filter_traces(
        (tracemalloc.Filter(False, tracemalloc.__file__),)
    )


async def take_census(hub: str, seconds: float) -> None:
    """Trace allocations and log a census every ``seconds`` until cancelled."""
    if not tracemalloc.is_tracing():
        tracemalloc.start(1)
    baseline = await asyncio.to_thread(_snapshot)
    while True:
        await asyncio.sleep(seconds)
        now = await asyncio.to_thread(_snapshot)
        traced, peak = tracemalloc.get_traced_memory()
        log.info(
            "memory-census",
            hub=hub,
            traced_mib=round(traced / 2**20, 1),
            peak_mib=round(peak / 2**20, 1),
            grown=[
                {
                    "where": line.where,
                    "mib": round(line.size / 2**20, 2),
                    "grown_mib": round(line.grown / 2**20, 2),
                }
                for line in grown_lines(baseline, now)
            ],
        )
