"""The soak's kill schedule and memory figures, without processes."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from agents.bench.soak_plan import memory_trend, schedule

SITES = ("lyon", "buenos-aires", "singapore")


@given(st.integers(0, 10_000), st.floats(10, 3600))
def test_hubs_are_killed_one_at_a_time_and_every_fault_starts_within_the_run(
    seed: int, seconds: float
) -> None:
    faults = schedule(seed, seconds, SITES, ["DEU", "FRA"], hub_every=30, gateway_every=10)
    assert all(0 < f.at < seconds for f in faults)
    assert [f.at for f in faults] == sorted(f.at for f in faults)
    hubs = [f for f in faults if f.target.startswith("hub:")]
    for first, second in itertools.pairwise(hubs):
        assert second.at >= first.at + first.down_for  # restored before the next kill


def test_the_same_seed_gives_the_same_schedule_and_kills_both_kinds() -> None:
    faults = schedule(7, 600, SITES, ["DEU"], hub_every=60, gateway_every=20)
    assert faults == schedule(7, 600, SITES, ["DEU"], hub_every=60, gateway_every=20)
    assert {f.target.split(":")[0] for f in faults} == {"hub", "gateway"}
    assert faults != schedule(8, 600, SITES, ["DEU"], hub_every=60, gateway_every=20)


def test_a_steady_series_has_no_slope_and_a_growing_one_its_rate() -> None:
    assert memory_trend([(0, 100), (60, 100), (120, 100)])["slope_mb_per_min"] == 0
    growing = memory_trend([(0, 100), (60, 110), (120, 120)])
    assert growing == {
        "samples": 3,
        "first_mb": 100,
        "last_mb": 120,
        "peak_mb": 120,
        "slope_mb_per_min": 10,
    }
    assert memory_trend([])["samples"] == 0
    assert memory_trend([(5, 80)])["slope_mb_per_min"] is None
