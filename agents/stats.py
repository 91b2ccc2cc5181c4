"""Percentiles and latency summaries: one definition for every bench, report and the dashboard.

A percentile here is the *nearest rank*, never an interpolation: the ``q`` percentile
(0 <= q <= 1) of ``n`` values is the value at index ``⌊q·n⌋`` of the sorted values, clamped
to the last index ``n - 1``. So every figure reported is a latency that was measured, and
figures from two benches compare::

    >>> percentile([4.0, 1.0, 3.0, 2.0], 0.5)   # index ⌊0.5·4⌋ = 2 of [1, 2, 3, 4]
    3.0
    >>> percentile([4.0, 1.0, 3.0, 2.0], 1.0)   # index 4, clamped to 3: the maximum
    4.0
    >>> percentile([], 0.99) is None
    True

Two properties define it (and ``tests/unit/test_stats.py`` checks them): at most a share
``q`` of the values lie strictly below the result, and more than a share ``q`` lie at or
below it (all of them when the index is clamped).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["latency_summary", "percentile"]


def percentile(values: Iterable[float], q: float, *, digits: int | None = None) -> float | None:
    """The nearest-rank ``q`` percentile of ``values`` (see above), rounded to ``digits`` if
    given; ``None`` if there are none. ``ValueError`` if ``q`` is outside 0-1."""
    if not 0 <= q <= 1:
        raise ValueError(f"a quantile is between 0 and 1, got {q}; p99 is 0.99")
    ordered = sorted(values)
    if not ordered:
        return None
    value = ordered[min(len(ordered) - 1, int(q * len(ordered)))]
    return value if digits is None else round(value, digits)


def latency_summary(
    values: Iterable[float | None], *, counted: str = "measured", digits: int | None = None
) -> dict[str, float | int | None]:
    """How many latencies were measured (under the key ``counted``), their p50, p99 and max
    in ms (``None`` when there are none); a ``None`` value is a latency not measured."""
    measured = [value for value in values if value is not None]
    top = max(measured) if measured else None
    return {
        counted: len(measured),
        "p50_ms": percentile(measured, 0.5, digits=digits),
        "p99_ms": percentile(measured, 0.99, digits=digits),
        "max_ms": top if top is None or digits is None else round(top, digits),
    }
