"""The soak's verdict: each process life judged on its second half, one PASS/FAIL line."""

from __future__ import annotations

import pytest

from agents.bench.soak_verdict import MemoryVerdict, memory_verdict, second_half, soak_summary

CLEAN_GATEWAY = {"lost": 0, "duplicated": 0, "unexpected": 0}


def _life(start_mb: float, plateau_mb: float, growth_per_min: float) -> list[tuple[float, float]]:
    """A start-up climb over the first minute, then a plateau growing at ``growth_per_min``."""
    samples = [(0.0, start_mb), (30.0, (start_mb + plateau_mb) / 2)]
    samples += [(t, plateau_mb + growth_per_min * (t - 60) / 60) for t in range(60, 600, 10)]
    return samples


def test_a_restart_climb_is_not_a_leak_when_the_second_half_is_flat() -> None:
    verdict = memory_verdict("hub:lyon#2", _life(12.0, 95.0, 0.5))
    assert verdict.reading == "flat"
    assert verdict.slope_mb_per_min == pytest.approx(0.5, abs=0.01)


def test_steady_growth_in_the_second_half_is_a_leak() -> None:
    assert memory_verdict("hub:lyon#1", _life(12.0, 95.0, 10.0)).reading == "grows"


def test_a_life_with_too_few_late_samples_is_short_not_judged() -> None:
    assert memory_verdict("gateway:DEU#3", [(0.0, 10.0), (400.0, 60.0)]).reading == "short"
    assert memory_verdict("gateway:DEU#4", []).reading == "short"


def test_a_life_shorter_than_the_freshness_window_is_short_even_if_it_grows() -> None:
    growing = [(float(t), 80.0 + t / 6) for t in range(0, 240, 10)]
    assert memory_verdict("hub:lyon#1", growing).reading == "short"


@pytest.mark.parametrize("life", ["broker", "simulate"])
def test_the_broker_and_the_simulator_grow_by_design_and_are_exempt(life: str) -> None:
    assert memory_verdict(life, _life(20.0, 300.0, 80.0)).reading == "exempt"


def test_the_second_half_starts_at_the_midpoint_of_the_span() -> None:
    assert second_half([(100.0, 1.0), (110.0, 2.0), (120.0, 3.0), (130.0, 4.0)]) == [
        (120.0, 3.0),
        (130.0, 4.0),
    ]


def _verdicts(*readings: str) -> dict[str, MemoryVerdict]:
    return {
        f"hub:lyon#{n}": MemoryVerdict(f"hub:lyon#{n}", r, 10, 5, 0.0, 90.0)  # type: ignore[arg-type]
        for n, r in enumerate(readings, 1)
    }


def test_a_run_with_no_life_long_enough_passes_and_says_memory_was_not_judged() -> None:
    passed, line = soak_summary(
        {"lost": 0, "undecided": 0}, {"DEU": CLEAN_GATEWAY}, _verdicts("short", "short")
    )
    assert passed
    assert "memory not judged (no life of 300 s) (0 lives judged, 2 short" in line


def test_a_clean_run_passes_with_one_line_saying_why() -> None:
    passed, line = soak_summary(
        {"lost": 0, "undecided": 0}, {"DEU": CLEAN_GATEWAY}, _verdicts("flat", "short")
    )
    assert passed
    assert line.startswith("SOAK PASS: lost 0, undecided 0, duplicates 0, unexpected 0")
    assert "memory flat (1 lives judged, 1 short, 0 exempt)" in line


@pytest.mark.parametrize(
    ("books", "gateway", "readings", "says"),
    [
        ({"lost": 2, "undecided": 0}, CLEAN_GATEWAY, ("flat",), "lost 2"),
        ({"lost": 0, "undecided": 3}, CLEAN_GATEWAY, ("flat",), "undecided 3"),
        ({"lost": 0, "undecided": 0}, {**CLEAN_GATEWAY, "lost": 1}, ("flat",), "lost 1"),
        ({"lost": 0, "undecided": 0}, {**CLEAN_GATEWAY, "duplicated": 1}, (), "duplicates 1"),
        ({"lost": 0, "undecided": 0}, {**CLEAN_GATEWAY, "unexpected": 4}, (), "unexpected 4"),
        ({"lost": 0, "undecided": 0}, CLEAN_GATEWAY, ("flat", "grows"), "grows: hub:lyon#2"),
        ({"lost": None, "undecided": None}, CLEAN_GATEWAY, (), "books are missing"),
    ],
)
def test_any_loss_duplicate_or_growing_life_fails_the_run(
    books: dict[str, int | None], gateway: dict[str, int], readings: tuple[str, ...], says: str
) -> None:
    passed, line = soak_summary(books, {"DEU": gateway}, _verdicts(*readings))
    assert not passed
    assert line.startswith("SOAK FAIL")
    assert says in line
