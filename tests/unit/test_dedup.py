"""SeenMessages: tell our own redeliveries from replays, within a bounded horizon."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core.clocks import NaiveDatetimeError
from streams.core.dedup import InvalidHorizon, Origin, SeenMessages, Verdict
from tests.unit.factories import T0

HERE: Origin = ("i247.inbound", 0, 7)
ELSEWHERE: Origin = ("i247.inbound", 2, 40)
US = timedelta(microseconds=1)


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_first_sight_is_new() -> None:
    assert SeenMessages().observe("m1", HERE, T0, T0) is Verdict.NEW


def test_the_same_id_from_the_same_origin_is_our_own_redelivery() -> None:
    seen = SeenMessages()
    seen.observe("m1", HERE, T0, T0)
    assert seen.observe("m1", HERE, T0, s(1)) is Verdict.REDELIVERY


@pytest.mark.parametrize(
    "origin",
    [("i247.inbound", 0, 8), ("i247.inbound", 1, 7), ("other.inbound", 0, 7)],
    ids=["another offset", "another partition", "another topic"],
)
def test_the_same_id_from_anywhere_else_is_a_replay(origin: Origin) -> None:
    seen = SeenMessages()
    seen.observe("m1", HERE, T0, T0)
    assert seen.observe("m1", origin, T0, s(1)) is Verdict.REPLAY


def test_a_replay_does_not_displace_the_first_origin() -> None:
    seen = SeenMessages()
    seen.observe("m1", HERE, T0, T0)
    seen.observe("m1", ELSEWHERE, T0, s(1))
    assert seen.origin_of("m1") == HERE
    assert seen.observe("m1", HERE, T0, s(2)) is Verdict.REDELIVERY
    assert len(seen) == 1


def test_the_origin_of_an_unknown_id_is_none() -> None:
    assert SeenMessages().origin_of("m1") is None


def test_an_id_is_remembered_up_to_the_horizon_after_its_creation() -> None:
    seen = SeenMessages(horizon=300)
    seen.observe("m1", HERE, T0, s(1))
    assert seen.observe("m1", ELSEWHERE, T0, s(300)) is Verdict.REPLAY  # exactly at the horizon


def test_an_id_is_forgotten_just_past_the_horizon() -> None:
    seen = SeenMessages(horizon=300)
    seen.observe("m1", HERE, T0, s(1))
    assert seen.observe("m2", HERE, s(300), s(300) + US) is Verdict.NEW
    assert "m1" not in seen
    assert len(seen) == 1


def test_ids_expire_by_creation_time_not_by_arrival() -> None:
    seen = SeenMessages(horizon=300)
    seen.observe("young", HERE, s(100), s(100))
    seen.observe("old", ELSEWHERE, s(0), s(101))  # arrives later, created earlier
    seen.observe("probe", HERE, s(301), s(301))
    assert "old" not in seen
    assert "young" in seen


def test_an_id_already_past_the_horizon_is_not_remembered() -> None:
    seen = SeenMessages(horizon=300)
    assert seen.observe("stale", HERE, T0, s(301)) is Verdict.NEW  # intake refuses it first
    assert len(seen) == 0


def test_remembered_ids_survive_a_rebuild() -> None:
    seen = SeenMessages()
    assert seen.remember("m1", HERE, T0, s(1))
    assert seen.observe("m1", HERE, T0, s(2)) is Verdict.REDELIVERY
    assert seen.observe("m1", ELSEWHERE, T0, s(3)) is Verdict.REPLAY


def test_remembering_a_known_id_keeps_its_first_origin() -> None:
    seen = SeenMessages()
    seen.remember("m1", HERE, T0, T0)
    assert not seen.remember("m1", ELSEWHERE, T0, T0)
    assert seen.origin_of("m1") == HERE


def test_remembering_an_id_past_the_horizon_loads_nothing() -> None:
    seen = SeenMessages(horizon=300)
    assert not seen.remember("m1", HERE, T0, s(301))
    assert len(seen) == 0


def test_a_bulk_rebuild_keeps_only_what_is_inside_the_horizon() -> None:
    seen = SeenMessages(horizon=300)
    now = s(600)
    for index in range(600):  # one admitted id a second for ten minutes
        seen.remember(f"m{index}", ("i247.inbound", 0, index), s(index), now)
    assert len(seen) == 300  # created at 300 s .. 599 s
    assert "m299" not in seen
    assert "m300" in seen


def test_times_in_any_zone_are_the_same_instants() -> None:
    seen = SeenMessages(horizon=300)
    singapore = timezone(timedelta(hours=8))
    seen.observe("m1", HERE, T0.astimezone(singapore), T0.astimezone(singapore))
    assert seen.observe("m1", HERE, T0, s(299)) is Verdict.REDELIVERY


@pytest.mark.parametrize("horizon", [0, -1, float("nan"), float("inf")])
def test_an_unusable_horizon_is_refused(horizon: float) -> None:
    with pytest.raises(InvalidHorizon, match="finite seconds above 0"):
        SeenMessages(horizon=horizon)


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(NaiveDatetimeError, match="now must be timezone-aware"):
        SeenMessages().observe("m1", HERE, T0, datetime(2026, 11, 23, 12, 0))


def test_a_naive_creation_time_is_refused() -> None:
    with pytest.raises(NaiveDatetimeError, match="created_at must be timezone-aware"):
        SeenMessages().observe("m1", HERE, datetime(2026, 11, 23, 12, 0), T0)


def test_verdicts_have_stable_names_for_logs_and_dead_letters() -> None:
    assert [v.value for v in Verdict] == ["new", "redelivery", "replay"]


# --- property: the verdicts of a dictionary that never forgets, within the horizon ---

HORIZON = 30
observations = st.lists(
    st.tuples(
        st.sampled_from(["m1", "m2", "m3", "m4"]),  # few ids, so they repeat
        st.sampled_from([HERE, ELSEWHERE]),
        st.integers(0, 60),  # age when read, in seconds: up to twice the horizon
        st.integers(0, 5),  # seconds since the previous read
    ),
    max_size=60,
)


@given(observations)
def test_verdicts_match_an_oracle_and_memory_stays_inside_the_horizon(
    plan: list[tuple[str, Origin, int, int]],
) -> None:
    seen = SeenMessages(horizon=HORIZON)
    first: dict[str, tuple[Origin, datetime]] = {}  # the oracle: first admission of each id
    now = T0
    for message_id, origin, age, pause in plan:
        now += timedelta(seconds=pause)
        created = now - timedelta(seconds=age)
        limit = now - timedelta(seconds=HORIZON)
        first = {m: v for m, v in first.items() if v[1] >= limit}
        if message_id in first:
            expected = Verdict.REDELIVERY if first[message_id][0] == origin else Verdict.REPLAY
        else:
            expected = Verdict.NEW
            if created >= limit:
                first[message_id] = (origin, created)
        assert seen.observe(message_id, origin, created, now) is expected
        assert len(seen) == len(first)
