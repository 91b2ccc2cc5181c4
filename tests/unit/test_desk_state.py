"""The desks' state folded from the journal (streams/core/desk_state.py), as a specification.

Each case is a journal (events in the order a hub folds them) and a moment: what the hub
holding intake then owes. Every case also holds with each event folded twice (a hub folds
its own events when written and again from the tail; a failover replays them).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.checks import Urgency
from schemas.header import MessageType, Precedence
from schemas.journal import (
    ClockOpened,
    ClocksOpened,
    ClocksStopped,
    ClockStopped,
    DeskEvent,
    HandlingBreach,
    HitConfirmationBreach,
    HitConfirmationReminder,
    HitConfirmationRequested,
    HitConfirmed,
    MalformedJournalEvent,
    MultiCountryConsolidated,
    MultiCountryOpened,
    MultiCountryReplied,
    NoticeDecided,
    OpenedClock,
    StoppedClock,
    parse_desk_event,
)
from streams.core.clocks import OBJECTIVES
from streams.core.delivery import Acknowledge, ClockBatch, DeliveryPlan
from streams.core.desk_state import (
    BreachOwed,
    ConsolidationOwed,
    DeskState,
    EscalationOwed,
    ReminderOwed,
    ReplyOutcome,
    fold,
)
from tests.unit.factories import T0, make_header

LYON, BA = "hub:lyon", "hub:buenos-aires"
SETTLE = timedelta(seconds=0.5)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def opened(
    message: str = "m1", recipients: Sequence[str] = ("DEU", "ITA"), t: float = 0
) -> ClockOpened:
    return ClockOpened(
        hub=LYON,
        time=at(t),
        message_id=message,
        recipients=tuple(recipients),
        precedence=Precedence.FLASH,
        deadline=at(t + 10),
    )


def stopped(recipient: str, t: float, message: str = "m1", hub: str = LYON) -> ClockStopped:
    return ClockStopped(hub=hub, time=at(t), message_id=message, recipient=recipient)


def breach(message: str = "m1", t: float = 11) -> HandlingBreach:
    return HandlingBreach(
        hub=BA,
        time=at(t),
        message_id=message,
        precedence=Precedence.FLASH,
        started_at=at(0),
        deadline=at(10),
        unacknowledged=("ITA",),
        late_seconds=t - 10,
    )


def folded(events: Sequence[DeskEvent], *, twice: bool) -> DeskState:
    state = DeskState(settle=SETTLE)
    for event in events:
        state = fold(state, event)
        if twice:
            state = fold(state, event)
    return state


def unacknowledged(
    events: Sequence[DeskEvent], now: float, *, twice: bool
) -> list[tuple[str, ...]]:
    return [b.unacknowledged for b in folded(events, twice=twice).due_clocks(at(now))]


# --- handling clocks -----------------------------------------------------------------

CLOCK_CASES = [
    # (what, events, when, breaches owed then: the unacknowledged of each)
    ("every recipient in time: closed, never a breach",
     [opened(), stopped("DEU", 3), stopped("ITA", 9)], 60, []),
    ("one silent recipient: a breach naming it, once past the deadline and the settle",
     [opened(), stopped("DEU", 3)], 10.6, [("ITA",)]),
    ("not before the deadline and the journal's settle",
     [opened(), stopped("DEU", 3)], 10.4, []),
    ("an acknowledgement at the deadline is in time",
     [opened(), stopped("DEU", 3), stopped("ITA", 10)], 60, []),
    ("an acknowledgement after the deadline leaves the breach owed",
     [opened(), stopped("DEU", 3), stopped("ITA", 10.2)], 60, [("ITA",)]),
    ("an acknowledgement folded before its clock-opened: no false breach",
     [stopped("DEU", 1), stopped("ITA", 1, hub=BA), opened()], 60, []),
    ("an acknowledgement from another hub stops the clock the same",
     [opened(), stopped("DEU", 2, hub=BA), stopped("ITA", 2, hub=BA)], 60, []),
    ("a clock-opened replayed after the clock closed does not reopen it",
     [opened(), stopped("DEU", 1), stopped("ITA", 1), opened(t=30)], 60, []),
    ("a clock-opened replayed after the breach does not reopen it",
     [opened(), breach(), opened(t=30)], 60, []),
    ("a breach journaled by another hub ends the clock everywhere",
     [opened(), stopped("DEU", 1), breach()], 60, []),
    ("a redelivery adds no recipient already acknowledged, and keeps the first deadline",
     [opened(), stopped("DEU", 1), opened(t=5)], 10.6, [("ITA",)]),
    ("an acknowledgement by a recipient not waited for changes nothing",
     [opened(recipients=("DEU",)), stopped("ITA", 1)], 60, [("DEU",)]),
]  # fmt: skip


@pytest.mark.parametrize("twice", [False, True], ids=["once", "twice"])
@pytest.mark.parametrize(
    ("events", "when", "owed"),
    [pytest.param(e, w, o, id=what) for what, e, w, o in CLOCK_CASES],
)
def test_handling_clocks(
    events: list[DeskEvent], when: float, owed: list[tuple[str, ...]], twice: bool
) -> None:
    assert unacknowledged(events, when, twice=twice) == owed


def test_a_breach_is_reported_once_and_carries_its_clock() -> None:
    state = folded([opened(), stopped("DEU", 2)], twice=False)
    (owed,) = state.due_clocks(at(11))
    assert owed == BreachOwed("m1", Precedence.FLASH, at(0), at(10), ("ITA",), 1.0)
    assert state.due_clocks(at(12)) == []
    assert state.open_clocks == 1  # until the journaled breach is folded
    fold(state, breach())
    assert state.open_clocks == 0


def test_breaches_come_earliest_deadline_first() -> None:
    state = folded([opened("late", t=5), opened("early", t=0)], twice=False)
    assert [b.message_id for b in state.due_clocks(at(60))] == ["early", "late"]


def test_what_ended_is_forgotten_after_the_retention() -> None:
    state = DeskState(retention=timedelta(seconds=30), settle=SETTLE)
    for event in (opened(), stopped("DEU", 1), stopped("ITA", 1), stopped("FRA", 2, "m2")):
        fold(state, event)
    state.due_clocks(at(40))  # past the retention of both: the ended clock, the early ack
    fold(state, opened(t=41))  # a new clock for the same id opens, as a first one would
    assert [b.unacknowledged for b in state.due_clocks(at(60))] == [("DEU", "ITA")]


# --- hit confirmations ---------------------------------------------------------------


def requested(cid: str = "c1", owner: str = "BEL") -> HitConfirmationRequested:
    return HitConfirmationRequested(
        hub=LYON,
        time=at(0),
        confirmation_id=cid,
        correlation_id="flight-1",
        owner=owner,
        asker="FRA",
        urgency=Urgency.URGENT,
        deadline=at(20),
        sealed="c2VhbGVk",
    )


def confirmed(t: float, owner: str = "BEL", cid: str = "c1") -> HitConfirmed:
    return HitConfirmed(
        hub=BA, time=at(t), confirmation_id=cid, owner=owner, confirmed=True, in_time=True
    )


def reminded() -> HitConfirmationReminder:
    return HitConfirmationReminder(
        hub=LYON, time=at(10), confirmation_id="c1", owner="BEL", deadline=at(20)
    )


def escalated() -> HitConfirmationBreach:
    return HitConfirmationBreach(
        hub=BA, time=at(21), confirmation_id="c1", owner="BEL", asker="FRA",
        urgency=Urgency.URGENT, late_seconds=1.0, hub_on_duty=BA,
    )  # fmt: skip


CONFIRMATION_CASES = [
    # (what, events, when, owed then: kinds)
    ("before half time: nothing", [requested()], 9.9, []),
    ("at half time: a reminder", [requested()], 10, ["reminder"]),
    ("past the deadline, never reminded: escalated (a reminder now would be too late)",
     [requested()], 21, ["escalation"]),
    ("past the deadline, reminded on Lyon: only the escalation, on Buenos Aires",
     [requested(), reminded()], 21, ["escalation"]),
    ("confirmed in time: nothing, ever", [requested(), confirmed(15)], 60, []),
    ("confirmed after the deadline: the escalation stands", [requested(), confirmed(20.1)], 60,
     ["escalation"]),
    ("a confirmation by someone else than the owner changes nothing",
     [requested(), confirmed(5, owner="DEU")], 60, ["escalation"]),
    ("a confirmation folded before its request closes it", [confirmed(5), requested()], 60, []),
    ("an escalation journaled ends the exchange", [requested(), escalated()], 60, []),
    ("a request replayed after its escalation does not reopen it",
     [requested(), escalated(), requested()], 60, []),
]  # fmt: skip


@pytest.mark.parametrize("twice", [False, True], ids=["once", "twice"])
@pytest.mark.parametrize(
    ("events", "when", "owed"),
    [pytest.param(e, w, o, id=what) for what, e, w, o in CONFIRMATION_CASES],
)
def test_hit_confirmations(
    events: list[DeskEvent], when: float, owed: list[str], twice: bool
) -> None:
    state = folded(events, twice=twice)
    kinds = [
        "reminder" if isinstance(o, ReminderOwed) else "escalation"
        for o in state.due_confirmations(at(when))
    ]
    assert kinds == owed


def test_a_reminder_carries_the_sealed_request_and_an_escalation_the_asker() -> None:
    state = folded([requested()], twice=False)
    assert state.due_confirmations(at(10)) == [
        ReminderOwed("c1", "BEL", Urgency.URGENT, at(20), "c2VhbGVk")
    ]
    assert state.due_confirmations(at(11)) == []
    assert state.due_confirmations(at(21)) == [
        EscalationOwed("c1", "BEL", "FRA", Urgency.URGENT, at(20), 1.0)
    ]
    assert state.due_confirmations(at(22)) == []


def test_a_confirmation_is_in_time_only_from_the_owner_by_the_deadline() -> None:
    state = folded([requested()], twice=False)
    assert state.confirmation_in_time("c1", "BEL", at(20))
    assert not state.confirmation_in_time("c1", "BEL", at(20.1))
    assert not state.confirmation_in_time("c1", "DEU", at(1))
    assert not state.confirmation_in_time("c2", "BEL", at(1))


# --- multi-country windows -----------------------------------------------------------


def window(query: str = "q1") -> MultiCountryOpened:
    return MultiCountryOpened(
        hub=LYON, time=at(0), query_id=query, asker="FRA", targets=("DEU", "ITA", "ESP"),
        closes_at=at(20),
    )  # fmt: skip


def reply(responder: str, t: float, outcome: str = "accepted") -> MultiCountryReplied:
    return MultiCountryReplied(
        hub=BA, time=at(t), query_id="q1", responder=responder, outcome=outcome,
        sealed=f"sealed-{responder}" if outcome == "accepted" else None,
    )  # fmt: skip


def consolidated() -> MultiCountryConsolidated:
    return MultiCountryConsolidated(
        hub=BA, time=at(21), query_id="q1", asker="FRA", answered=("DEU",), silent=("ESP", "ITA")
    )


WINDOW_CASES = [
    # (what, events, when, owed then: (answered, silent) of each consolidation)
    ("an open window owes nothing", [window(), reply("DEU", 1)], 19, []),
    ("past its end: the replies in time, and who stayed silent",
     [window(), reply("DEU", 1), reply("ITA", 15)], 20.6, [(("DEU", "ITA"), ("ESP",))]),
    ("every target replied: consolidated at once",
     [window(), reply("DEU", 1), reply("ITA", 2), reply("ESP", 3)], 3,
     [(("DEU", "ESP", "ITA"), ())]),
    ("a reply after the window's end is not counted",
     [window(), reply("DEU", 1), reply("ITA", 20.1)], 60, [(("DEU",), ("ESP", "ITA"))]),
    ("a reply not accepted is not counted",
     [window(), reply("DEU", 1, "duplicate")], 60, [((), ("DEU", "ESP", "ITA"))]),
    ("a consolidation journaled ends the window", [window(), reply("DEU", 1), consolidated()],
     60, []),
    ("a window replayed after its consolidation does not reopen",
     [window(), consolidated(), window()], 60, []),
]  # fmt: skip


@pytest.mark.parametrize("twice", [False, True], ids=["once", "twice"])
@pytest.mark.parametrize(
    ("events", "when", "owed"),
    [pytest.param(e, w, o, id=what) for what, e, w, o in WINDOW_CASES],
)
def test_multi_country_windows(
    events: list[DeskEvent],
    when: float,
    owed: list[tuple[tuple[str, ...], tuple[str, ...]]],
    twice: bool,
) -> None:
    state = folded(events, twice=twice)
    assert [(tuple(c.answers), c.silent) for c in state.due_windows(at(when))] == owed


def test_a_consolidation_carries_the_sealed_replies_once() -> None:
    state = folded([window(), reply("DEU", 1), reply("ITA", 2)], twice=False)
    assert state.due_windows(at(21)) == [
        ConsolidationOwed("q1", "FRA", {"DEU": "sealed-DEU", "ITA": "sealed-ITA"}, ("ESP",), at(20))
    ]
    assert state.due_windows(at(22)) == []


@pytest.mark.parametrize(
    ("events", "responder", "when", "outcome"),
    [
        ([window()], "DEU", 5, ReplyOutcome.ACCEPTED),
        ([window()], "DEU", 20, ReplyOutcome.ACCEPTED),  # at the window's end: in time
        ([window()], "DEU", 20.1, ReplyOutcome.LATE),
        ([window(), reply("DEU", 1)], "DEU", 5, ReplyOutcome.DUPLICATE),
        ([window()], "FRA", 5, ReplyOutcome.NOT_TARGETED),
        ([], "DEU", 5, ReplyOutcome.UNKNOWN),
        ([window(), consolidated()], "ITA", 22, ReplyOutcome.LATE),
    ],
)
def test_what_a_reply_counts_as(
    events: list[DeskEvent], responder: str, when: float, outcome: ReplyOutcome
) -> None:
    assert folded(events, twice=False).reply_outcome("q1", responder, at(when)) is outcome


def test_a_late_reply_after_the_consolidation_still_finds_its_asker() -> None:
    state = folded([window(), consolidated()], twice=False)
    assert state.asker_of("q1") == "FRA"
    assert state.asker_of("q2") is None


# --- returned notice requests --------------------------------------------------------


def decided(decision: str, version: int | None) -> NoticeDecided:
    return NoticeDecided(
        hub=LYON, time=at(0), notice_id="red-r1", request_id="r1", requester="FRA",
        decision=decision, version=version,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("events", "returned"),
    [
        ([decided("returned", 3)], {"r1": 3}),
        ([decided("returned", 3), decided("published", 5)], {}),
        ([decided("returned", 3), decided("refused", None)], {}),
        ([decided("published", 3)], {}),
    ],
)
def test_returned_notice_requests(events: list[DeskEvent], returned: dict[str, int]) -> None:
    assert folded(events, twice=True).returned == returned


# --- the events on the wire ----------------------------------------------------------

EVENTS: list[DeskEvent] = [
    opened(), stopped("DEU", 1), breach(), requested(), confirmed(1), reminded(), escalated(),
    window(), reply("DEU", 1), consolidated(), decided("returned", 3),
]  # fmt: skip


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.event_name)
def test_every_desk_event_reads_back_as_written(event: DeskEvent) -> None:
    assert parse_desk_event(event.to_json_bytes()) == event


@pytest.mark.parametrize(
    "raw",
    [b'{"event":"hub-ready","hub":"hub:lyon","time":"x","units":[]}', b"not json", b"[1]"],
)
def test_other_journal_events_are_not_desk_events(raw: bytes) -> None:
    assert parse_desk_event(raw) is None


def test_unknown_fields_are_ignored_and_a_broken_desk_event_is_a_writers_bug() -> None:
    raw = opened().to_json_bytes()[:-1] + b',"future":1}'
    assert parse_desk_event(raw) == opened()
    with pytest.raises(MalformedJournalEvent, match="clock-opened"):
        parse_desk_event(b'{"event":"clock-opened","hub":"hub:lyon"}')


# --- clock events in batches ---------------------------------------------------------


def test_a_batch_of_clocks_folds_as_its_clocks_one_by_one() -> None:
    batched = ClocksOpened(
        hub=LYON,
        time=at(0),
        clocks=(
            OpenedClock(message_id="m1", recipients=("DEU", "ITA"), precedence=Precedence.FLASH,
                        deadline=at(10)),
            OpenedClock(message_id="m2", recipients=("ESP",), precedence=Precedence.FLASH,
                        deadline=at(10)),
        ),
    )  # fmt: skip
    stops = ClocksStopped(
        hub=BA,
        time=at(12),  # written after the deadline; each stop counts at its own moment
        stops=(
            StoppedClock(message_id="m1", recipient="DEU", at=at(3)),
            StoppedClock(message_id="m2", recipient="ESP", at=at(10.5)),
        ),
    )
    one_by_one: list[DeskEvent] = [
        opened(), opened("m2", ("ESP",)), stopped("DEU", 3), stopped("ESP", 10.5, "m2")
    ]  # fmt: skip
    orders: list[list[DeskEvent]] = [[batched, stops], [stops, batched], one_by_one]
    for events in orders:
        state = folded(events, twice=True)
        assert {b.message_id: b.unacknowledged for b in state.due_clocks(at(60))} == {
            "m1": ("ITA",),
            "m2": ("ESP",),
        }


def test_a_batch_of_deliveries_is_journaled_as_two_records() -> None:
    header = make_header(recipients=["DEU"], precedence=Precedence.FLASH)
    delivered = DeliveryPlan(
        header=header, precedence=Precedence.FLASH, clocked_recipients=("DEU",)
    )
    ack = DeliveryPlan(
        header=make_header(message_type=MessageType.ACKNOWLEDGEMENT),
        precedence=Precedence.FLASH,
        acknowledge=Acknowledge("m0", "ITA"),
    )
    batch = ClockBatch()
    for plan in (delivered, delivered, ack):
        batch.add(plan, now=at(1), objective=timedelta(seconds=10))
    opened_, stopped_ = batch.take(hub=LYON, now=at(2))
    assert isinstance(opened_, ClocksOpened)
    assert [c.deadline for c in opened_.clocks] == [at(11), at(11)]
    assert isinstance(stopped_, ClocksStopped)
    assert stopped_.stops == (StoppedClock(message_id="m0", recipient="ITA", at=at(1)),)
    assert batch.take(hub=LYON, now=at(3)) == []


# --- properties: an oracle from the events alone -------------------------------------

RECIPIENTS = ["DEU", "ITA", "ESP"]
SCALE = 1800  # FLASH 1/3 s, ROUTINE 12 s
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


def journal_of(history: list[Message]) -> list[tuple[float, DeskEvent]]:
    """The history's clock events, each with the moment it was written."""
    written: list[tuple[float, DeskEvent]] = []
    for message_id, precedence, start, acks in history:
        deadline = at(start) + OBJECTIVES[precedence] / SCALE
        written.append(
            (start, ClockOpened(hub=LYON, time=at(start), message_id=message_id,
                                recipients=tuple(acks), precedence=precedence, deadline=deadline))
        )  # fmt: skip
        written += [
            (t, stopped(r, t, message_id, hub=BA)) for r, t in acks.items() if t is not None
        ]
    return written


def oracle(history: list[Message]) -> dict[str, tuple[str, ...]]:
    """Which messages breach, and who had not acknowledged by the deadline."""
    owed = {}
    for message_id, precedence, start, acks in history:
        deadline = start + OBJECTIVES[precedence].total_seconds() / SCALE
        late = tuple(sorted(r for r, t in acks.items() if t is None or t > deadline))
        if late:
            owed[message_id] = late
    return owed


def acting_hub(history: list[Message], polls: list[float]) -> list[BreachOwed]:
    """The hub holding intake: folds the journal in time order, polls ``due_clocks`` at
    ``polls`` and at the end, and journals each breach it owes (folded back at once)."""
    state = DeskState(settle=timedelta(0))
    timeline: list[tuple[float, int, DeskEvent | None]] = [
        (t, 0, e) for t, e in journal_of(history)
    ]
    timeline += [(t, 1, None) for t in polls]
    breaches: list[BreachOwed] = []
    for t, _, event in sorted(timeline, key=lambda item: (item[0], item[1])):
        if event is not None:
            fold(state, event)
            continue
        owed = state.due_clocks(at(t))
        breaches += owed
        for b in owed:
            fold(state, breach(b.message_id, t))
    breaches += state.due_clocks(at(10_000))
    return breaches


@given(histories(), st.lists(st.floats(0, 120), max_size=30))
def test_each_breach_is_owed_exactly_once_whenever_the_acting_hub_polls(
    history: list[Message], polls: list[float]
) -> None:
    breaches = acting_hub(history, polls)
    assert {b.message_id: b.unacknowledged for b in breaches} == oracle(history)
    assert len(breaches) == len({b.message_id for b in breaches})


@given(histories(), st.data())
def test_a_successor_folding_the_journal_in_any_order_owes_the_same_breaches(
    history: list[Message], data: st.DataObject
) -> None:
    """Any order, any event twice: what a hub reading the journal after a failover owes
    depends only on the events (an acknowledgement may be read before its clock)."""
    events = [e for _, e in journal_of(history)]
    again = data.draw(st.lists(st.sampled_from(events)) if events else st.just([]))
    shuffled = data.draw(st.permutations(events + again))
    state = DeskState(settle=timedelta(0))
    for event in shuffled:
        fold(state, event)
    owed = state.due_clocks(at(10_000))
    assert {b.message_id: b.unacknowledged for b in owed} == oracle(history)


def test_a_hub_that_never_acts_still_forgets_what_ended_long_ago() -> None:
    """Standby hubs fold every clock but never ask what is due: memory stays bounded."""
    state = DeskState(retention=timedelta(seconds=30), settle=SETTLE)
    for second in range(600):
        message = f"m{second}"
        fold(state, opened(message, ("DEU",), t=second))
        fold(state, stopped("DEU", second + 1, message))
    assert state.open_clocks == 0
    assert state.remembered <= 32  # the last 30 s of ended clocks, not all 600
