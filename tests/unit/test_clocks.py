"""The CCC's clock lengths and the core's rule about time (streams/core/clocks.py); the clocks
themselves are desk state (tests/unit/test_desk_state.py)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from schemas.checks import Urgency
from schemas.header import Precedence
from streams.core.clocks import CONFIRMATION_DEADLINES, OBJECTIVES, NaiveDatetimeError, as_utc
from tests.unit.factories import T0

DOC = Path(__file__).resolve().parents[2] / "docs" / "priority-rules.md"
F, IMM, P, R = Precedence.FLASH, Precedence.IMMEDIATE, Precedence.PRIORITY, Precedence.ROUTINE


@pytest.mark.parametrize(
    ("precedence", "objective"),
    [
        (F, timedelta(minutes=10)),
        (IMM, timedelta(minutes=30)),
        (P, timedelta(hours=3)),
        (R, timedelta(hours=6)),
    ],
)
def test_objectives_are_the_military_handling_times(
    precedence: Precedence, objective: timedelta
) -> None:
    assert OBJECTIVES[precedence] == objective


def test_an_urgent_hit_is_confirmed_in_ten_minutes_a_routine_one_in_an_hour() -> None:
    assert {
        Urgency.URGENT: timedelta(minutes=10),
        Urgency.ROUTINE: timedelta(hours=1),
    } == CONFIRMATION_DEADLINES


def test_as_utc_converts_aware_times_and_names_the_naive_argument() -> None:
    assert as_utc(T0.astimezone(timezone(timedelta(hours=1)))) == T0
    assert as_utc(T0).utcoffset() == timedelta(0)
    with pytest.raises(NaiveDatetimeError, match="created_at must be timezone-aware"):
        as_utc(datetime(2026, 1, 1), "created_at")


# --- the operators' document says what the code does ---


def test_the_documented_objectives_are_the_code_objectives_at_scale_1_and_60() -> None:
    units = {"s": 1, "min": 60, "h": 3600}
    rows = re.findall(
        r"^\| (FLASH|IMMEDIATE|PRIORITY|ROUTINE) \| (\d+) (s|min|h) \| (\d+) (s|min|h) \|$",
        DOC.read_text(encoding="utf-8"),
        flags=re.MULTILINE,
    )
    assert [row[0] for row in rows] == [p.value for p in Precedence]
    for name, value, unit, demo_value, demo_unit in rows:
        precedence = Precedence(name)
        assert OBJECTIVES[precedence] == timedelta(seconds=int(value) * units[unit])
        assert OBJECTIVES[precedence] / 60 == timedelta(seconds=int(demo_value) * units[demo_unit])
