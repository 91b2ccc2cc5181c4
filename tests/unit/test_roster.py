"""DutyRoster: follow-the-sun duty as a pure function of UTC time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.participants import HUB_SITES
from streams.core.clocks import NaiveDatetimeError
from streams.core.roster import (
    REAL_EPOCH,
    ROTATION,
    SHIFT_LENGTH,
    DutyRoster,
    InvalidRoster,
    Shift,
    UnknownHubSite,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "duty-roster.md"
US = timedelta(microseconds=1)
DAY = datetime(2026, 11, 23, tzinfo=UTC)


def at(hour: int, minute: int = 0, second: int = 0, microsecond: int = 0) -> datetime:
    return DAY.replace(hour=hour, minute=minute, second=second, microsecond=microsecond)


def expected_site(moment: datetime) -> str:
    """An independent oracle: the documented schedule by UTC hour."""
    hour = moment.astimezone(UTC).hour
    if hour >= 23 or hour < 7:
        return "singapore"
    return "lyon" if hour < 15 else "buenos-aires"


@pytest.mark.parametrize(
    ("moment", "site"),
    [
        (at(6, 59, 59, 999_999), "singapore"),  # just before a handover
        (at(7), "lyon"),  # exactly at it: the incoming hub
        (at(7, 0, 0, 1), "lyon"),  # just after
        (at(12), "lyon"),
        (at(14, 59, 59, 999_999), "lyon"),
        (at(15), "buenos-aires"),
        (at(15, 0, 0, 1), "buenos-aires"),
        (at(22, 59, 59, 999_999), "buenos-aires"),
        (at(23), "singapore"),
        (at(23, 0, 0, 1), "singapore"),
        (at(23, 59, 59, 999_999), "singapore"),  # Singapore's shift spans midnight UTC
        (at(0), "singapore"),
        (at(3, 30), "singapore"),
    ],
)
def test_the_real_schedule_at_and_around_each_handover(moment: datetime, site: str) -> None:
    assert DutyRoster().hub_on_duty(moment) == site


@pytest.mark.parametrize(
    ("moment", "start", "end"),
    [
        (at(0), at(23) - timedelta(days=1), at(7)),  # midnight UTC: the shift began yesterday
        (at(6, 59, 59, 999_999), at(23) - timedelta(days=1), at(7)),
        (at(7), at(7), at(15)),
        (at(14, 59), at(7), at(15)),
        (at(15), at(15), at(23)),
        (at(23), at(23), at(7) + timedelta(days=1)),
    ],
)
def test_shift_at_gives_the_shift_around_an_instant(
    moment: datetime, start: datetime, end: datetime
) -> None:
    shift = DutyRoster().shift_at(moment)
    assert (shift.start, shift.end) == (start, end)
    assert shift.site == expected_site(moment)


@pytest.mark.parametrize(
    ("moment", "handover"),
    [
        (at(6, 59, 59, 999_999), at(7)),
        (at(7), at(15)),  # at a handover, the next one is a whole shift away
        (at(0), at(7)),
        (at(22, 0), at(23)),
        (at(23), at(7) + timedelta(days=1)),
    ],
)
def test_next_handover_is_the_first_one_strictly_after_now(
    moment: datetime, handover: datetime
) -> None:
    assert DutyRoster().next_handover(moment) == handover


@pytest.mark.parametrize(
    ("local", "site"),
    [
        (datetime(2026, 11, 23, 8, 0, tzinfo=timezone(timedelta(hours=1))), "lyon"),  # 07 UTC
        (datetime(2026, 11, 23, 7, 59, tzinfo=timezone(timedelta(hours=1))), "singapore"),
        (datetime(2026, 11, 23, 15, 0, tzinfo=timezone(timedelta(hours=8))), "lyon"),  # 07 UTC
        (datetime(2026, 11, 23, 12, 0, tzinfo=timezone(timedelta(hours=-3))), "buenos-aires"),
        (datetime(2026, 11, 23, 19, 59, tzinfo=timezone(timedelta(hours=-3))), "buenos-aires"),
        (datetime(2026, 11, 23, 20, 0, tzinfo=timezone(timedelta(hours=-3))), "singapore"),
    ],
)
def test_an_aware_time_in_any_zone_is_read_as_the_same_instant(local: datetime, site: str) -> None:
    assert DutyRoster().hub_on_duty(local) == site


def test_shift_times_come_back_in_utc_whatever_the_input_zone() -> None:
    paris = datetime(2026, 11, 23, 9, 0, tzinfo=timezone(timedelta(hours=1)))
    shift = DutyRoster().shift_at(paris)
    assert shift.start == at(7)
    assert shift.start.utcoffset() == timedelta(0)
    assert DutyRoster().next_handover(paris).utcoffset() == timedelta(0)


@pytest.mark.parametrize("method", ["hub_on_duty", "shift_at", "next_handover"])
def test_a_naive_time_is_refused_with_advice(method: str) -> None:
    with pytest.raises(
        NaiveDatetimeError, match=r"now must be timezone-aware.*datetime\.now\(UTC\)"
    ):
        getattr(DutyRoster(), method)(datetime(2026, 11, 23, 12, 0))


def test_a_naive_time_is_a_value_error_too() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        DutyRoster().hub_on_duty(datetime(2026, 11, 23, 12, 0))


# --- compressed time ---

EPOCH = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "site"),
    [
        (0, "singapore"),  # the epoch starts a Singapore shift
        (9.999999, "singapore"),
        (10, "lyon"),
        (19.999999, "lyon"),
        (20, "buenos-aires"),
        (30, "singapore"),  # a full rotation in three shifts
        (60, "singapore"),
        (70, "lyon"),
        (-0.000001, "buenos-aires"),  # before the epoch the rotation runs backwards
        (-10, "buenos-aires"),
        (-10.000001, "lyon"),
    ],
)
def test_compressed_time_rotates_every_shift_seconds_from_the_epoch(
    seconds: float, site: str
) -> None:
    roster = DutyRoster(shift_seconds=10, epoch=EPOCH)
    assert roster.hub_on_duty(EPOCH + timedelta(seconds=seconds)) == site


def test_compressed_shifts_and_handovers() -> None:
    roster = DutyRoster(shift_seconds=10, epoch=EPOCH)
    moment = EPOCH + timedelta(seconds=13)
    assert roster.shift_at(moment) == Shift(
        site="lyon", start=EPOCH + timedelta(seconds=10), end=EPOCH + timedelta(seconds=20)
    )
    assert roster.next_handover(moment) == EPOCH + timedelta(seconds=20)


def test_fractional_shift_seconds_are_exact_to_the_microsecond() -> None:
    roster = DutyRoster(shift_seconds=0.25, epoch=EPOCH)
    assert roster.hub_on_duty(EPOCH + timedelta(seconds=0.249999)) == "singapore"
    assert roster.hub_on_duty(EPOCH + timedelta(seconds=0.25)) == "lyon"
    assert roster.next_handover(EPOCH + timedelta(seconds=0.3)) == EPOCH + timedelta(seconds=0.5)


def test_compressed_time_without_an_epoch_agrees_across_processes() -> None:
    moment = at(12, 0, 7)
    assert DutyRoster(shift_seconds=5).hub_on_duty(moment) == DutyRoster(
        shift_seconds=5, epoch=REAL_EPOCH
    ).hub_on_duty(moment)


def test_the_epoch_may_be_given_in_any_zone() -> None:
    paris_epoch = EPOCH.astimezone(timezone(timedelta(hours=1)))
    roster = DutyRoster(shift_seconds=10, epoch=paris_epoch)
    assert roster.shift_at(EPOCH).start == EPOCH


def test_a_naive_epoch_is_refused() -> None:
    with pytest.raises(NaiveDatetimeError, match="epoch must be timezone-aware"):
        DutyRoster(shift_seconds=10, epoch=datetime(2026, 1, 1))


@pytest.mark.parametrize("seconds", [0, -5, 0.0000001, float("nan"), float("inf")])
def test_an_unusable_shift_length_is_refused(seconds: float) -> None:
    with pytest.raises(InvalidRoster, match="shift_seconds must be"):
        DutyRoster(shift_seconds=seconds)


def test_the_real_schedule_cannot_be_moved_by_an_epoch() -> None:
    with pytest.raises(InvalidRoster, match="epoch only applies to compressed time"):
        DutyRoster(epoch=EPOCH)


def test_rosters_with_the_same_settings_are_equal() -> None:
    assert DutyRoster(shift_seconds=10, epoch=EPOCH) == DutyRoster(shift_seconds=10, epoch=EPOCH)
    assert DutyRoster() != DutyRoster(shift_seconds=10)


# --- successor order ---


@pytest.mark.parametrize(
    ("site", "successor"),
    [("singapore", "lyon"), ("lyon", "buenos-aires"), ("buenos-aires", "singapore")],
)
def test_the_successor_is_the_next_hub_in_follow_the_sun_order(site: str, successor: str) -> None:
    assert DutyRoster.successor(site) == successor


def test_the_successor_is_who_comes_on_duty_at_the_next_handover() -> None:
    roster = DutyRoster()
    for hour in (0, 8, 16):
        moment = at(hour)
        assert roster.hub_on_duty(roster.next_handover(moment)) == DutyRoster.successor(
            roster.hub_on_duty(moment)
        )


def test_an_unknown_site_has_no_successor() -> None:
    with pytest.raises(UnknownHubSite, match=r"'paris'.*singapore, lyon, buenos-aires"):
        DutyRoster.successor("paris")


def test_the_rotation_names_every_hub_once_and_the_real_shifts_tile_a_day() -> None:
    assert sorted(ROTATION) == sorted(HUB_SITES)
    assert len(ROTATION) * SHIFT_LENGTH == timedelta(days=1)


# --- properties ---

instants = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
zones = st.integers(-12 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
rosters = st.one_of(
    st.just(DutyRoster()),
    st.builds(
        DutyRoster,
        shift_seconds=st.floats(0.001, 100_000, allow_nan=False),
        epoch=st.datetimes(
            min_value=datetime(2000, 1, 1), max_value=datetime(2050, 1, 1), timezones=st.just(UTC)
        ),
    ),
)


@given(rosters, instants)
def test_every_instant_has_exactly_one_hub_constant_within_its_shift(
    roster: DutyRoster, moment: datetime
) -> None:
    shift = roster.shift_at(moment)
    assert shift.start <= moment < shift.end
    assert roster.hub_on_duty(moment) == shift.site
    assert roster.hub_on_duty(shift.start) == shift.site
    assert roster.hub_on_duty(shift.end - US) == shift.site
    assert roster.hub_on_duty(shift.end) == DutyRoster.successor(shift.site)
    assert roster.next_handover(moment) == shift.end


@given(instants)
def test_the_real_schedule_follows_the_documented_utc_hours(moment: datetime) -> None:
    assert DutyRoster().hub_on_duty(moment) == expected_site(moment)
    assert DutyRoster().shift_at(moment).end - DutyRoster().shift_at(moment).start == SHIFT_LENGTH


@given(rosters, instants, zones)
def test_the_zone_an_instant_is_written_in_does_not_matter(
    roster: DutyRoster, moment: datetime, zone: timezone
) -> None:
    assert roster.shift_at(moment.astimezone(zone)) == roster.shift_at(moment)


# --- the document says what the code does ---


def doc_rows(pattern: str) -> list[list[str]]:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in lines
        if re.match(pattern, line)
    ]


def test_the_documented_shifts_are_the_code_schedule() -> None:
    rows = doc_rows(r"^\| [A-Z][a-z]+.* \| `[a-z-]+` \| \d\d:\d\d–\d\d:\d\d \|")
    assert [row[1].strip("`") for row in rows] == list(ROTATION)
    roster = DutyRoster()
    for _, site, utc_hours, *_ in rows:
        start_hour, end_hour = (int(part[:2]) for part in utc_hours.split("–"))
        start = at(start_hour)
        assert roster.shift_at(start).site == site.strip("`")
        assert roster.next_handover(start) == start + SHIFT_LENGTH
        assert roster.next_handover(start).hour == end_hour


def test_the_documented_successors_are_the_code_order() -> None:
    rows = doc_rows(r"^\| `[a-z-]+` \| `[a-z-]+` \|$")
    assert {row[0].strip("`"): row[1].strip("`") for row in rows} == {
        site: DutyRoster.successor(site) for site in ROTATION
    }
