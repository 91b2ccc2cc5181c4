"""The one percentile (nearest rank) and the one latency summary every bench and view uses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.stats import latency_summary, percentile

LATENCIES = st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=200)
QUANTILES = st.floats(0, 1)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 0.5, None),
        ([7.0], 0.99, 7.0),
        ([4.0, 1.0, 3.0, 2.0], 0.5, 3.0),  # index ⌊0.5·4⌋ = 2 of the sorted
        ([4.0, 1.0, 3.0, 2.0], 0.0, 1.0),
        ([4.0, 1.0, 3.0, 2.0], 1.0, 4.0),  # index 4 clamped to the last
        ([4.0, 1.0, 3.0, 2.0], 0.74, 3.0),  # index ⌊2.96⌋ = 2: no interpolation
        (list(map(float, range(100))), 0.99, 99.0),
        (list(map(float, range(1000))), 0.99, 990.0),
    ],
)
def test_percentile_is_the_nearest_rank(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == expected


def test_percentile_rounds_only_when_asked() -> None:
    assert percentile([1.23456], 0.5) == 1.23456
    assert percentile([1.23456], 0.5, digits=1) == 1.2


@pytest.mark.parametrize("q", [-0.01, 1.5, float("nan")])
def test_percentile_refuses_a_quantile_outside_zero_to_one(q: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        percentile([1.0], q)


@given(LATENCIES, QUANTILES)
def test_the_percentile_is_a_measured_value_within_the_range(values: list[float], q: float) -> None:
    result = percentile(values, q)
    assert result in values
    assert min(values) <= result <= max(values)


@given(LATENCIES, QUANTILES)
def test_at_most_q_lie_below_it_and_more_than_q_at_or_below_it(
    values: list[float], q: float
) -> None:
    result = percentile(values, q)
    assert result is not None
    below = sum(v < result for v in values)
    at_or_below = sum(v <= result for v in values)
    assert below <= q * len(values)
    assert at_or_below > q * len(values) or at_or_below == len(values)


@given(LATENCIES, QUANTILES, QUANTILES)
def test_a_higher_quantile_is_never_lower(values: list[float], q: float, r: float) -> None:
    low, high = sorted((q, r))
    assert percentile(values, low) <= percentile(values, high)  # type: ignore[operator]


@given(LATENCIES, QUANTILES)
def test_the_order_of_the_values_does_not_matter(values: list[float], q: float) -> None:
    assert percentile(values, q) == percentile(list(reversed(values)), q)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], {"measured": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}),
        ([None, None], {"measured": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}),
        ([5.0, None], {"measured": 1, "p50_ms": 5.0, "p99_ms": 5.0, "max_ms": 5.0}),
        ([3.0, 1.0, 2.0, 4.0], {"measured": 4, "p50_ms": 3.0, "p99_ms": 4.0, "max_ms": 4.0}),
    ],
)
def test_latency_summary_counts_only_what_was_measured(
    values: list[float | None], expected: dict[str, object]
) -> None:
    assert latency_summary(values) == expected


def test_latency_summary_names_its_count_and_rounds_every_figure() -> None:
    summary = latency_summary([1.23456, 2.34567], counted="opened", digits=2)
    assert summary == {"opened": 2, "p50_ms": 2.35, "p99_ms": 2.35, "max_ms": 2.35}


@given(st.lists(st.one_of(st.none(), st.floats(0, 1e6)), max_size=100))
def test_the_summary_agrees_with_the_percentile(values: list[float | None]) -> None:
    measured = [v for v in values if v is not None]
    summary = latency_summary(values)
    assert summary["measured"] == len(measured)
    assert summary["p50_ms"] == percentile(measured, 0.5)
    assert summary["p99_ms"] == percentile(measured, 0.99)
    assert summary["max_ms"] == (max(measured) if measured else None)
    if measured:
        assert summary["p50_ms"] <= summary["p99_ms"] <= summary["max_ms"]  # type: ignore[operator]
