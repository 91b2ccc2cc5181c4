"""HandlingClocks and SeenMessages: the CCC's two memories, bounded and exact."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from schemas.header import Precedence
from streams.clocks import HandlingClocks
from streams.dedup import SeenMessages, Verdict
from tests.unit.factories import T0


def test_flash_breaches_after_ten_minutes_scaled() -> None:
    clocks = HandlingClocks(scale=60)  # FLASH 10 s
    clocks.start("m1", ["DEU", "ITA"], Precedence.FLASH, T0)
    assert clocks.due(T0 + timedelta(seconds=9)) == []
    [breach] = clocks.due(T0 + timedelta(seconds=11))
    assert breach.message_id == "m1"
    assert breach.unacknowledged == ("DEU", "ITA")
    assert breach.late_seconds == 1


def test_a_breach_is_reported_once_and_then_forgotten() -> None:
    clocks = HandlingClocks()
    clocks.start("m1", ["DEU"], Precedence.FLASH, T0)
    assert len(clocks.due(T0 + timedelta(hours=1))) == 1
    assert clocks.due(T0 + timedelta(hours=2)) == []
    assert clocks.open_count == 0


def test_full_acknowledgement_closes_the_clock() -> None:
    clocks = HandlingClocks()
    clocks.start("m1", ["DEU", "ITA"], Precedence.ROUTINE, T0)
    assert not clocks.acknowledge("m1", "DEU", T0)
    assert clocks.acknowledge("m1", "ITA", T0)
    assert clocks.due(T0 + timedelta(days=1)) == []


def test_acknowledging_an_unknown_message_is_harmless() -> None:
    assert not HandlingClocks().acknowledge("nope", "DEU", T0)


@given(st.lists(st.tuples(st.integers(0, 30), st.booleans()), max_size=40))
def test_each_unacknowledged_message_breaches_exactly_once(plan: list[tuple[int, bool]]) -> None:
    clocks = HandlingClocks(scale=600)  # FLASH 1 s
    for index, (offset, acked) in enumerate(plan):
        at = T0 + timedelta(seconds=offset)
        clocks.start(f"m{index}", ["DEU"], Precedence.FLASH, at)
        if acked:
            clocks.acknowledge(f"m{index}", "DEU", at)
    reported = [b.message_id for s in range(40) for b in clocks.due(T0 + timedelta(seconds=s))]
    expected = [f"m{i}" for i, (_, acked) in enumerate(plan) if not acked]
    assert sorted(reported) == sorted(expected)


ORIGIN = ("i247.inbound", 0, 7)


def test_first_sight_is_new() -> None:
    assert SeenMessages().observe("m1", ORIGIN, T0, T0) is Verdict.NEW


def test_same_id_same_offset_is_our_own_redelivery() -> None:
    seen = SeenMessages()
    seen.observe("m1", ORIGIN, T0, T0)
    assert seen.observe("m1", ORIGIN, T0, T0) is Verdict.REDELIVERY


def test_same_id_elsewhere_is_a_replay() -> None:
    seen = SeenMessages()
    seen.observe("m1", ORIGIN, T0, T0)
    assert seen.observe("m1", ("i247.inbound", 0, 99), T0, T0) is Verdict.REPLAY


def test_ids_are_forgotten_after_the_horizon() -> None:
    seen = SeenMessages(horizon=300)
    seen.observe("m1", ORIGIN, T0, T0)
    later = T0 + timedelta(seconds=301)
    seen.observe("m2", ORIGIN, later, later)
    assert len(seen) == 1


def test_remembered_ids_survive_a_rebuild() -> None:
    seen = SeenMessages()
    seen.remember("m1", ORIGIN, T0, T0)
    assert seen.observe("m1", ORIGIN, T0, T0) is Verdict.REDELIVERY
