"""The failover bench's summaries: median and worst over kills, percentiles of latencies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.bench.failover import FailoverFigures, KillFigures, Spread, spread


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], Spread(None, None, 0, 0)),
        ([None, None], Spread(None, None, 0, 2)),
        ([2.5], Spread(2.5, 2.5, 1, 0)),
        ([3.0, 1.0, 2.0], Spread(2.0, 3.0, 3, 0)),
        ([1.0, 4.0], Spread(2.5, 4.0, 2, 0)),  # even count: the mean of the middle two
        ([2.0, None, 3.0, 10.0], Spread(3.0, 10.0, 3, 1)),  # an unmeasured kill is counted
    ],
)
def test_spread_is_median_and_worst_of_what_was_measured(
    values: list[float | None], expected: Spread
) -> None:
    assert spread(values) == expected


@given(st.lists(st.one_of(st.none(), st.floats(0, 1e4)), max_size=30))
def test_spread_counts_every_round_and_the_worst_bounds_the_median(
    values: list[float | None],
) -> None:
    result = spread(values)
    assert result.measured + result.missing == len(values)
    if result.measured:
        assert result.median is not None
        assert result.worst is not None
        assert result.median <= result.worst
        assert result.worst == max(v for v in values if v is not None)


def test_figures_summarise_kills_and_say_what_was_not_measured() -> None:
    kills = [
        KillFigures("lyon", 0.0, detection_s=2.0, takeover_s=2.5),
        KillFigures("lyon", 50.0, detection_s=4.0, takeover_s=None, note="no failover"),
        KillFigures("lyon", 90.0, detection_s=3.0, takeover_s=3.5),
    ]
    figures = FailoverFigures(2000, 50.0, kills, [10.0, 20.0], [100.0], 10, 9, {"Opened": 9})
    summary = figures.as_json()
    assert summary["detection"] == {"median_s": 3.0, "worst_s": 4.0, "measured": 3, "missing": 0}
    assert summary["takeover_first_delivery"]["worst_s"] == 3.5
    assert summary["takeover_first_delivery"]["missing"] == 1
    assert summary["never_opened"] == 1
    assert summary["kills"][1]["note"] == "no failover"
