"""DutyRoster: follow-the-sun duty as a pure function of UTC time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.roster import ROTATION, DutyRoster


@pytest.mark.parametrize(
    ("hour", "minute", "site"),
    [
        (22, 0, "singapore"),
        (23, 59, "singapore"),
        (0, 0, "singapore"),
        (5, 59, "singapore"),
        (6, 0, "lyon"),
        (13, 59, "lyon"),
        (14, 0, "buenos-aires"),
        (21, 59, "buenos-aires"),
    ],
)
def test_real_schedule(hour: int, minute: int, site: str) -> None:
    assert DutyRoster().hub_on_duty(datetime(2026, 11, 23, hour, minute, tzinfo=UTC)) == site


def test_a_non_utc_time_is_converted() -> None:
    paris_evening = datetime(2026, 11, 23, 16, 0, tzinfo=timezone(timedelta(hours=1)))
    assert DutyRoster().hub_on_duty(paris_evening) == "buenos-aires"


def test_naive_time_is_refused_with_advice() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        DutyRoster().hub_on_duty(datetime(2026, 11, 23, 12, 0))


def test_compressed_time_rotates_every_shift_seconds() -> None:
    epoch = datetime(2026, 1, 1, tzinfo=UTC)
    roster = DutyRoster(shift_seconds=10, epoch=epoch)
    sites = [roster.hub_on_duty(epoch + timedelta(seconds=s)) for s in (0, 9.9, 10, 20, 30)]
    assert sites == ["singapore", "singapore", "lyon", "buenos-aires", "singapore"]
    assert roster.next_handover(epoch + timedelta(seconds=3)) == epoch + timedelta(seconds=10)


@pytest.mark.parametrize(
    ("site", "successor"),
    [("singapore", "lyon"), ("lyon", "buenos-aires"), ("buenos-aires", "singapore")],
)
def test_successor_order(site: str, successor: str) -> None:
    assert DutyRoster.successor(site) == successor


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 2), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    )
)
def test_exactly_one_hub_and_constant_within_its_shift(moment: datetime) -> None:
    roster = DutyRoster()
    shift = roster.shift_at(moment)
    assert shift.site in ROTATION
    assert shift.start <= moment < shift.end
    assert roster.hub_on_duty(shift.start) == roster.hub_on_duty(
        shift.end - timedelta(microseconds=1)
    )
    assert roster.hub_on_duty(shift.end) == DutyRoster.successor(shift.site)
