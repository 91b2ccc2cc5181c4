"""HandlingClocks: handling deadlines per precedence, each breach reported exactly once."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.header import Precedence
from streams.clocks import (
    OBJECTIVES,
    Breach,
    HandlingClocks,
    InvalidClockScale,
    NaiveDatetimeError,
    as_utc,
)
from tests.unit.factories import T0

DOC = Path(__file__).resolve().parents[2] / "docs" / "priority-rules.md"
F, IMM, P, R = Precedence.FLASH, Precedence.IMMEDIATE, Precedence.PRIORITY, Precedence.ROUTINE
US = timedelta(microseconds=1)


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


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
    assert HandlingClocks().objective(precedence) == objective


@pytest.mark.parametrize(
    ("scale", "precedence", "objective"),
    [
        (60, F, timedelta(seconds=10)),
        (60, R, timedelta(minutes=6)),
        (600, F, timedelta(seconds=1)),
        (0.5, F, timedelta(minutes=20)),
    ],
)
def test_scale_divides_the_objectives_for_demos(
    scale: float, precedence: Precedence, objective: timedelta
) -> None:
    assert HandlingClocks(scale=scale).objective(precedence) == objective


@pytest.mark.parametrize("scale", [0, -1, float("nan"), float("inf")])
def test_an_unusable_scale_is_refused(scale: float) -> None:
    with pytest.raises(InvalidClockScale, match="finite and above 0"):
        HandlingClocks(scale=scale)


def test_nothing_is_due_before_the_deadline_nor_at_it() -> None:
    clocks = HandlingClocks(scale=60)
    clocks.start("m1", ["DEU"], F, T0)
    assert clocks.due(s(9)) == []
    assert clocks.due(s(10)) == []
    assert clocks.open_count == 1


def test_a_breach_is_due_just_after_the_deadline() -> None:
    clocks = HandlingClocks(scale=60)
    clocks.start("m1", ["DEU"], F, T0)
    [breach] = clocks.due(s(10) + US)
    assert breach.message_id == "m1"


def test_a_breach_says_what_when_who_and_how_late() -> None:
    clocks = HandlingClocks(scale=60)
    clocks.start("m1", ["ITA", "DEU", "ESP"], F, T0)
    clocks.acknowledge("m1", "ESP", s(3))
    assert clocks.due(s(11.5)) == [
        Breach(
            message_id="m1",
            precedence=F,
            started_at=T0,
            deadline=s(10),
            unacknowledged=("DEU", "ITA"),
            late_seconds=1.5,
        )
    ]


def test_a_breach_is_reported_once_and_the_clock_forgotten() -> None:
    clocks = HandlingClocks()
    clocks.start("m1", ["DEU"], F, T0)
    assert len(clocks.due(s(3600))) == 1
    assert clocks.due(s(7200)) == []
    assert clocks.open_count == 0


def test_the_last_acknowledgement_closes_the_clock_and_only_it_returns_true() -> None:
    clocks = HandlingClocks()
    clocks.start("m1", ["DEU", "ITA"], R, T0)
    assert not clocks.acknowledge("m1", "DEU", s(1))
    assert clocks.open_count == 1
    assert clocks.acknowledge("m1", "ITA", s(2))
    assert clocks.open_count == 0
    assert clocks.due(s(86_400)) == []


def test_an_acknowledgement_exactly_at_the_deadline_is_in_time() -> None:
    clocks = HandlingClocks(scale=60)
    clocks.start("m1", ["DEU"], F, T0)
    assert clocks.acknowledge("m1", "DEU", s(10))
    assert clocks.due(s(11)) == []


def test_a_late_acknowledgement_does_not_cancel_the_breach_owed() -> None:
    clocks = HandlingClocks(scale=60)
    clocks.start("m1", ["DEU"], F, T0)
    assert not clocks.acknowledge("m1", "DEU", s(10) + US)
    [breach] = clocks.due(s(30))
    assert breach.unacknowledged == ("DEU",)


def test_acknowledging_an_unknown_message_is_ignored() -> None:
    clocks = HandlingClocks()
    assert not clocks.acknowledge("nope", "DEU", T0)
    assert clocks.open_count == 0


def test_an_acknowledgement_from_someone_not_waited_for_changes_nothing() -> None:
    clocks = HandlingClocks(scale=60)
    clocks.start("m1", ["DEU"], F, T0)
    assert not clocks.acknowledge("m1", "ITA", s(1))
    [breach] = clocks.due(s(11))
    assert breach.unacknowledged == ("DEU",)


def test_a_repeated_acknowledgement_is_harmless() -> None:
    clocks = HandlingClocks()
    clocks.start("m1", ["DEU", "ITA"], F, T0)
    assert not clocks.acknowledge("m1", "DEU", s(1))
    assert not clocks.acknowledge("m1", "DEU", s(2))
    assert clocks.open_count == 1


def test_acknowledging_after_the_breach_was_reported_is_ignored() -> None:
    clocks = HandlingClocks(scale=60)
    clocks.start("m1", ["DEU"], F, T0)
    clocks.due(s(11))
    assert not clocks.acknowledge("m1", "DEU", s(12))


def test_no_recipients_start_no_clock() -> None:
    clocks = HandlingClocks()
    clocks.start("m1", [], F, T0)
    assert clocks.open_count == 0
    assert clocks.due(s(86_400)) == []


def test_recipients_added_later_share_the_first_deadline() -> None:
    clocks = HandlingClocks(scale=60)
    clocks.start("m1", ["DEU"], F, T0)
    clocks.start("m1", ["ITA"], R, s(5))
    [breach] = clocks.due(s(11))
    assert (breach.deadline, breach.precedence, breach.unacknowledged) == (s(10), F, ("DEU", "ITA"))


def test_a_message_clocked_again_after_closing_gets_a_fresh_deadline() -> None:
    clocks = HandlingClocks(scale=60)
    clocks.start("m1", ["DEU"], F, T0)
    clocks.acknowledge("m1", "DEU", s(1))
    clocks.start("m1", ["DEU"], F, s(8))
    assert clocks.due(s(12)) == []  # the first clock's old deadline must not fire
    [breach] = clocks.due(s(19))
    assert breach.deadline == s(18)


def test_breaches_come_earliest_deadline_first() -> None:
    clocks = HandlingClocks(scale=60)
    clocks.start("routine", ["DEU"], R, T0)  # 6 min
    clocks.start("flash", ["DEU"], F, s(10))  # 10 s
    clocks.start("immediate", ["DEU"], IMM, T0)  # 30 s
    assert [b.message_id for b in clocks.due(s(3600))] == ["flash", "immediate", "routine"]


def test_times_in_other_zones_are_the_same_instants() -> None:
    clocks = HandlingClocks(scale=60)
    clocks.start("m1", ["DEU"], F, T0.astimezone(timezone(timedelta(hours=8))))
    [breach] = clocks.due(s(11).astimezone(timezone(timedelta(hours=-3))))
    assert breach.deadline == s(10)
    assert breach.deadline.utcoffset() == timedelta(0)


NAIVE = datetime(2026, 11, 23, 12, 0)


@pytest.mark.parametrize(
    "call",
    [
        lambda clocks: clocks.start("m1", ["DEU"], F, NAIVE),
        lambda clocks: clocks.acknowledge("m1", "DEU", NAIVE),
        lambda clocks: clocks.due(NAIVE),
    ],
    ids=["start", "acknowledge", "due"],
)
def test_a_naive_now_is_refused(call: Callable[[HandlingClocks], object]) -> None:
    clocks = HandlingClocks()
    clocks.start("m1", ["DEU"], F, T0)
    with pytest.raises(NaiveDatetimeError, match="now must be timezone-aware"):
        call(clocks)


def test_as_utc_converts_aware_times_and_names_the_naive_argument() -> None:
    assert as_utc(T0.astimezone(timezone(timedelta(hours=1)))) == T0
    with pytest.raises(NaiveDatetimeError, match="created_at must be timezone-aware"):
        as_utc(datetime(2026, 1, 1), "created_at")


def test_a_breach_is_a_frozen_control_event_in_wire_time_format() -> None:
    clocks = HandlingClocks(scale=60)
    clocks.start("m1", ["DEU"], F, T0)
    [breach] = clocks.due(s(11))
    assert json.loads(breach.model_dump_json()) == {
        "message_id": "m1",
        "precedence": "FLASH",
        "started_at": "2026-11-23T12:00:00.000000Z",
        "deadline": "2026-11-23T12:00:10.000000Z",
        "unacknowledged": ["DEU"],
        "late_seconds": 1.0,
    }
    with pytest.raises(ValueError, match="frozen"):
        breach.late_seconds = 0  # type: ignore[misc]


def test_memory_holds_only_open_clocks_after_many_closed_ones() -> None:
    clocks = HandlingClocks()
    for index in range(10_000):
        clocks.start(f"m{index}", ["DEU"], R, T0)
        clocks.acknowledge(f"m{index}", "DEU", T0)
    clocks.start("open", ["DEU"], R, T0)
    assert clocks.open_count == 1
    assert len(clocks._heap) <= 2 * clocks.open_count + 1024 + 1  # swept, not 10,001


# --- properties: an oracle from the events alone ---

RECIPIENTS = ["DEU", "ITA", "ESP"]
Message = tuple[str, Precedence, float, dict[str, float | None]]
"""id, precedence, start second, and each recipient's acknowledgement second (or none)"""


@st.composite
def histories(draw: st.DrawFn) -> list[Message]:
    """Messages with whole-second times, so acknowledgements can fall on a deadline."""
    history: list[Message] = []
    for index in range(draw(st.integers(0, 25))):
        start = draw(st.integers(0, 60))
        recipients = draw(st.lists(st.sampled_from(RECIPIENTS), min_size=1, unique=True))
        acks: dict[str, float | None] = {
            r: draw(st.none() | st.integers(start, start + 40).map(float)) for r in recipients
        }
        history.append((f"m{index}", draw(st.sampled_from(list(Precedence))), float(start), acks))
    return history


def run(history: list[Message], polls: list[float]) -> list[Breach]:
    """Replay the history in time order, polling ``due`` at ``polls`` and at the end."""
    clocks = HandlingClocks(scale=1800)  # FLASH 1/3 s, ROUTINE 12 s
    events: list[tuple[float, int, str, str, Precedence]] = []
    for message_id, precedence, start, acks in history:
        events.append((start, 0, message_id, ",".join(acks), precedence))
        events += [(at, 1, message_id, r, precedence) for r, at in acks.items() if at is not None]
    events += [(poll, 2, "", "", R) for poll in polls]
    breaches: list[Breach] = []
    for at, kind, message_id, who, precedence in sorted(events, key=lambda e: (e[0], e[1])):
        if kind == 0:
            clocks.start(message_id, who.split(","), precedence, s(at))
        elif kind == 1:
            clocks.acknowledge(message_id, who, s(at))
        else:
            breaches += clocks.due(s(at))
    breaches += clocks.due(s(10_000))
    assert clocks.open_count == 0
    return breaches


def oracle(
    history: list[Message],
) -> dict[str, tuple[str, ...]]:
    """Which messages breach, and who had not acknowledged by the deadline."""
    owed = {}
    for message_id, precedence, start, acks in history:
        deadline = start + OBJECTIVES[precedence].total_seconds() / 1800
        late = tuple(sorted(r for r, at in acks.items() if at is None or at > deadline))
        if late:
            owed[message_id] = late
    return owed


@given(histories(), st.lists(st.floats(0, 120), max_size=30))
def test_each_breach_is_reported_exactly_once_and_only_if_owed(
    history: list[Message], polls: list[float]
) -> None:
    breaches = run(history, polls)
    assert {b.message_id: b.unacknowledged for b in breaches} == oracle(history)
    assert len(breaches) == len({b.message_id for b in breaches})


@given(histories(), st.lists(st.floats(0, 120), max_size=30))
def test_fully_acknowledged_messages_never_breach(
    history: list[Message], polls: list[float]
) -> None:
    acknowledged_in_time = {m for m, *_ in history} - set(oracle(history))
    assert not acknowledged_in_time & {b.message_id for b in run(history, polls)}


@given(histories(), st.lists(st.floats(0, 120), max_size=30))
def test_breaches_do_not_depend_on_how_often_due_is_polled(
    history: list[Message], polls: list[float]
) -> None:
    def essence(breaches: list[Breach]) -> set[tuple[str, tuple[str, ...], datetime]]:
        return {(b.message_id, b.unacknowledged, b.deadline) for b in breaches}

    assert essence(run(history, polls)) == essence(run(history, []))


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
        assert HandlingClocks(scale=60).objective(precedence) == timedelta(
            seconds=int(demo_value) * units[demo_unit]
        )
