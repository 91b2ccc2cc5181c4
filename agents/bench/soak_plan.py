"""The soak's pure parts: a seeded schedule of kills, and what a memory series says.

``schedule`` draws when hubs are SIGKILLed (one at a time, each restarted before the next
is killed, so duty always has a hub to fail over to) and when bureau gateways are killed
and restarted; ``memory_trend`` turns one process's RSS samples into first, last, peak
and a least-squares slope, the figures ``docs/reliability.md`` reports.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Fault", "memory_trend", "schedule"]


@dataclass(frozen=True, slots=True)
class Fault:
    """Kill ``target`` (``hub:<site>``, ``gateway:<code>``) at ``at`` s, back after ``down_for``."""

    at: float
    target: str
    down_for: float


def schedule(
    seed: int,
    seconds: float,
    sites: Sequence[str],
    gateways: Sequence[str],
    *,
    hub_every: float = 60.0,
    gateway_every: float = 20.0,
) -> list[Fault]:
    """Faults over ``seconds`` of traffic, sorted by time; none starts after ``seconds``."""
    rng = random.Random(seed)
    faults: list[Fault] = []
    at = rng.uniform(0.5, 1.5) * hub_every
    while sites and at < seconds:
        down = rng.uniform(5.0, 20.0)
        faults.append(Fault(at, f"hub:{rng.choice(sites)}", down))
        at += down + rng.uniform(0.5, 1.5) * hub_every
    at = rng.uniform(0.5, 1.5) * gateway_every
    while gateways and at < seconds:
        down = rng.uniform(0.5, 5.0)
        faults.append(Fault(at, f"gateway:{rng.choice(gateways)}", down))
        at += rng.uniform(0.5, 1.5) * gateway_every
    return sorted(faults, key=lambda f: f.at)


def memory_trend(samples: Sequence[tuple[float, float]]) -> dict[str, float | int | None]:
    """``samples``: (seconds, RSS in MiB). First, last and peak MiB, and the slope in MiB a
    minute by least squares (None with fewer than two samples)."""
    if not samples:
        return {
            "samples": 0,
            "first_mb": None,
            "last_mb": None,
            "peak_mb": None,
            "slope_mb_per_min": None,
        }
    times = [t for t, _ in samples]
    sizes = [m for _, m in samples]
    slope = None
    if len(samples) >= 2 and max(times) > min(times):
        mean_t, mean_m = sum(times) / len(times), sum(sizes) / len(sizes)
        spread = sum((t - mean_t) ** 2 for t in times)
        slope = round(60 * sum((t - mean_t) * (m - mean_m) for t, m in samples) / spread, 2)
    return {
        "samples": len(samples),
        "first_mb": round(sizes[0], 1),
        "last_mb": round(sizes[-1], 1),
        "peak_mb": round(max(sizes), 1),
        "slope_mb_per_min": slope,
    }
