"""Deployments: one state machine per team, arrival in 12-24 h, DVI order, revocation."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.errors import RejectReason, RevokedRecipient
from schemas.teams import (
    DVI_PHASES,
    DeclineReason,
    Deployment,
    DeploymentState,
    DviPhase,
    JournalEvent,
    TeamDecision,
    TeamKind,
    TeamReport,
)
from streams.core.clocks import InvalidClockScale
from streams.core.deployments import (
    ARRIVAL_EARLIEST,
    ARRIVAL_LATEST,
    TRANSITIONS,
    DeploymentError,
    DviPhaseOutOfOrder,
    IllegalTransition,
    InvalidArrivalDraw,
    ReportRefused,
    TeamRoster,
    accept_report,
    arrival_time,
    arrival_window,
    arrive,
    close,
    convert_to_irt,
    decide,
    dispatch,
    due_arrivals,
)
from tests.unit.team_factories import NOW, make_deployment, make_request

S = DeploymentState
LATER = NOW + timedelta(days=2)
TEAM = "team:imest-fra-paris-20260726"
APPROVE = TeamDecision(approved=True, team=TEAM, text="ok")
DECLINE = TeamDecision(approved=False, reasons=(DeclineReason.CAPACITY,), text="full")

# each event and the state it moves a deployment to
EVENTS: dict[str, tuple[Callable[[Deployment], Deployment], DeploymentState]] = {
    "approve": (lambda d: decide(d, APPROVE, at=LATER), S.APPROVED),
    "decline": (lambda d: decide(d, DECLINE, at=LATER), S.DECLINED),
    "dispatch": (lambda d: dispatch(d, at=LATER, rng_fraction=0.25), S.EN_ROUTE),
    "arrive": (lambda d: arrive(d, at=LATER), S.DEPLOYED),
    "close": (lambda d: close(d, at=LATER, reason="done"), S.CLOSED),
}


@pytest.mark.parametrize("state", list(DeploymentState))
@pytest.mark.parametrize("event", list(EVENTS))
def test_an_event_moves_a_deployment_only_along_the_transition_table(
    state: DeploymentState, event: str
) -> None:
    d = make_deployment(state)
    apply, target = EVENTS[event]
    if target in TRANSITIONS[state]:
        moved = apply(d)
        assert moved.state is target
        assert len(moved.journal) == len(d.journal) + 1
        assert moved.request_id == d.request_id
    else:
        with pytest.raises(IllegalTransition, match=f"is {state.value}"):
            apply(d)


def test_every_legal_transition_has_an_event() -> None:
    legal = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    reachable = {(s, t) for s in DeploymentState for _, t in EVENTS.values()}
    assert legal <= reachable
    assert TRANSITIONS[S.CLOSED] == TRANSITIONS[S.DECLINED] == frozenset()


def test_the_states_go_requested_approved_en_route_deployed_closed() -> None:
    d = make_deployment(S.DEPLOYED)
    d = close(d, at=LATER, reason="event over")
    assert [e.event for e in d.journal] == [
        JournalEvent.REQUESTED,
        JournalEvent.APPROVED,
        JournalEvent.DISPATCHED,
        JournalEvent.ARRIVED,
        JournalEvent.CLOSED,
    ]
    assert d.closed_at == LATER
    assert "event over" in d.journal[-1].detail


def test_an_approval_names_the_team_and_a_decline_records_its_reasons() -> None:
    assert make_deployment(S.APPROVED).team == TEAM
    declined = make_deployment(S.DECLINED)
    assert declined.team is None
    assert [r.value for r in declined.declined] == ["capacity"]


def test_events_must_come_in_time_order() -> None:
    d = make_deployment(S.APPROVED)
    with pytest.raises(DeploymentError, match="earlier than its last journal entry"):
        dispatch(d, at=NOW - timedelta(seconds=1), rng_fraction=0.5)


def test_a_deployment_in_an_active_state_must_have_a_team() -> None:
    d = make_deployment(S.REQUESTED)
    with pytest.raises(ValidationError):
        Deployment(**{**dict(d), "state": S.DEPLOYED})


# Arrival: within 12-24 hours of approval, compressed by the clock scale.

scales = st.one_of(st.just(1.0), st.floats(min_value=0.001, max_value=1e6))
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(approved=moments, fraction=st.floats(min_value=0, max_value=1), scale=scales)
def test_the_arrival_is_always_within_12_to_24_hours_after_approval_scaled(
    approved: datetime, fraction: float, scale: float
) -> None:
    arrival = arrival_time(approved, fraction, scale)
    assert approved + ARRIVAL_EARLIEST / scale <= arrival <= approved + ARRIVAL_LATEST / scale
    assert arrival_window(approved, scale) == (
        approved + timedelta(hours=12) / scale,
        approved + timedelta(hours=24) / scale,
    )


@given(approved=moments, a=st.floats(0, 1), b=st.floats(0, 1), scale=scales)
def test_a_larger_draw_never_arrives_earlier(
    approved: datetime, a: float, b: float, scale: float
) -> None:
    low, high = sorted((a, b))
    assert arrival_time(approved, low, scale) <= arrival_time(approved, high, scale)


@pytest.mark.parametrize(
    ("fraction", "scale", "expected"),
    [
        (0.0, 1.0, timedelta(hours=12)),
        (1.0, 1.0, timedelta(hours=24)),
        (0.5, 1.0, timedelta(hours=18)),
        (0.0, 3600.0, timedelta(seconds=12)),
        (1.0, 3600.0, timedelta(seconds=24)),
    ],
)
def test_arrival_examples(fraction: float, scale: float, expected: timedelta) -> None:
    assert arrival_time(NOW, fraction, scale) == NOW + expected


@pytest.mark.parametrize("fraction", [-0.001, 1.001, math.nan, math.inf])
def test_a_draw_outside_0_to_1_is_refused(fraction: float) -> None:
    with pytest.raises(InvalidArrivalDraw):
        arrival_time(NOW, fraction)


@pytest.mark.parametrize("scale", [0.0, -1.0, math.nan, math.inf])
def test_an_invalid_scale_is_refused(scale: float) -> None:
    with pytest.raises(InvalidClockScale):
        arrival_window(NOW, scale)


def test_dispatch_draws_the_arrival_inside_the_window_fixed_at_approval() -> None:
    approved = make_deployment(S.APPROVED, scale=60.0)
    assert approved.approved_at is not None
    assert approved.arrival_earliest == approved.approved_at + timedelta(minutes=12)
    assert approved.arrival_latest == approved.approved_at + timedelta(minutes=24)
    en_route = dispatch(approved, at=NOW + timedelta(minutes=2), rng_fraction=0.5)
    assert en_route.expected_arrival == approved.approved_at + timedelta(minutes=18)


def test_due_arrivals_are_the_teams_en_route_whose_time_has_come() -> None:
    en_route = make_deployment(S.EN_ROUTE)
    deployed = make_deployment(S.DEPLOYED)
    assert en_route.expected_arrival is not None
    assert due_arrivals([en_route, deployed], en_route.expected_arrival) == (en_route,)
    assert due_arrivals([en_route], en_route.expected_arrival - timedelta(microseconds=1)) == ()


# IMEST -> IRT conversion


@pytest.mark.parametrize("state", [S.APPROVED, S.EN_ROUTE, S.DEPLOYED])
@pytest.mark.parametrize("kind", [TeamKind.IRT_CRIME, TeamKind.IRT_DVI])
def test_an_active_imest_converts_to_an_irt_keeping_its_team(
    state: DeploymentState, kind: TeamKind
) -> None:
    d = make_deployment(state)
    converted = convert_to_irt(d, kind=kind, crisis="stand collapse", at=LATER)
    assert converted.kind is kind
    assert (converted.team, converted.state, converted.request_id) == (
        d.team,
        d.state,
        d.request_id,
    )
    assert converted.incident == "stand collapse"
    entry = converted.journal[-1]
    assert entry.event is JournalEvent.CONVERTED
    assert entry.detail == f"imest -> {kind.value}: stand collapse"


@pytest.mark.parametrize("state", [S.REQUESTED, S.CLOSED, S.DECLINED])
def test_an_inactive_imest_does_not_convert(state: DeploymentState) -> None:
    with pytest.raises(IllegalTransition, match="ask for a new IRT"):
        convert_to_irt(make_deployment(state), kind=TeamKind.IRT_DVI, crisis="c", at=LATER)


def test_only_an_imest_converts_and_only_to_an_irt() -> None:
    irt = make_deployment(S.DEPLOYED, make_request(kind=TeamKind.IRT_CRIME))
    with pytest.raises(IllegalTransition, match="only an IMEST converts"):
        convert_to_irt(irt, kind=TeamKind.IRT_DVI, crisis="c", at=LATER)
    with pytest.raises(IllegalTransition, match="only an IMEST converts"):
        convert_to_irt(make_deployment(S.DEPLOYED), kind=TeamKind.IMEST, crisis="c", at=LATER)


def test_a_converted_imest_reports_dvi_phases() -> None:
    d = convert_to_irt(make_deployment(S.DEPLOYED), kind=TeamKind.IRT_DVI, crisis="c", at=LATER)
    d = accept_report(d, report(DviPhase.SCENE_EXAMINATION, complete=True), at=LATER)
    assert d.dvi_complete == (DviPhase.SCENE_EXAMINATION,)


# Reports and DVI phases


def report(
    phase: DviPhase | None = None, *, complete: bool = False, team: str = TEAM
) -> TeamReport:
    return TeamReport(team=team, phase=phase, phase_complete=complete, text="t")


def dvi_team() -> Deployment:
    return make_deployment(S.DEPLOYED, make_request(kind=TeamKind.IRT_DVI))


SCENE, PM, AM, REC = DVI_PHASES

# reports sent in order as (phase, complete) -> phases complete after, or the phase refused
DVI_CASES: list[tuple[list[tuple[DviPhase, bool]], tuple[DviPhase, ...] | DviPhase]] = [
    ([(SCENE, False)], ()),
    ([(SCENE, True)], (SCENE,)),
    ([(SCENE, False), (SCENE, True), (PM, True), (AM, True), (REC, True)], DVI_PHASES),
    ([(SCENE, True), (SCENE, True), (SCENE, False)], (SCENE,)),  # amendments are taken
    ([(SCENE, True), (PM, False), (PM, True), (AM, False)], (SCENE, PM)),
    ([(PM, False)], PM),  # before the scene examination
    ([(SCENE, False), (PM, True)], PM),  # scene reported but not complete
    ([(SCENE, True), (AM, True)], AM),  # skips post-mortem
    ([(SCENE, True), (PM, True), (REC, True)], REC),  # skips ante-mortem
]


@pytest.mark.parametrize(("reports", "outcome"), DVI_CASES)
def test_dvi_reports_follow_the_four_phases_in_order(
    reports: list[tuple[DviPhase, bool]], outcome: tuple[DviPhase, ...] | DviPhase
) -> None:
    d = dvi_team()
    *before, last = reports
    for phase, complete in before:
        d = accept_report(d, report(phase, complete=complete), at=LATER)
    if isinstance(outcome, DviPhase):
        with pytest.raises(DviPhaseOutOfOrder, match=f"phase {outcome.number}"):
            accept_report(d, report(last[0], complete=last[1]), at=LATER)
    else:
        d = accept_report(d, report(last[0], complete=last[1]), at=LATER)
        assert d.dvi_complete == outcome


def test_completing_a_phase_is_journaled_once() -> None:
    d = dvi_team()
    for _ in range(2):
        d = accept_report(d, report(SCENE, complete=True), at=LATER)
    completions = [e for e in d.journal if e.event is JournalEvent.PHASE_COMPLETED]
    assert [e.detail for e in completions] == ["phase 1 scene-examination complete"]


def test_the_refusal_says_which_phase_to_complete_first() -> None:
    with pytest.raises(DviPhaseOutOfOrder, match="send a scene-examination report"):
        accept_report(dvi_team(), report(AM), at=LATER)


@pytest.mark.parametrize(
    ("deployment", "sent", "match"),
    [
        (dvi_team, report(), "name the DVI phase"),
        (lambda: make_deployment(S.DEPLOYED), report(SCENE), "only a DVI team"),
        (lambda: make_deployment(S.DEPLOYED), report(team="team:other"), "report from"),
        (lambda: make_deployment(S.EN_ROUTE), report(), "deployed teams only"),
        (lambda: make_deployment(S.CLOSED), report(), "deployed teams only"),
    ],
)
def test_reports_that_do_not_fit_are_refused(
    deployment: Callable[[], Deployment], sent: TeamReport, match: str
) -> None:
    with pytest.raises(ReportRefused, match=match):
        accept_report(deployment(), sent, at=LATER)


def test_a_crime_team_report_is_taken_without_a_phase() -> None:
    d = make_deployment(S.DEPLOYED)
    assert accept_report(d, report(), at=LATER) == d


# Revocation


def test_a_closed_team_is_revoked_from_its_closing_on() -> None:
    closed = close(make_deployment(S.DEPLOYED), at=LATER, reason="done")
    roster = TeamRoster.from_deployments([closed, make_deployment(S.DEPLOYED, team="team:x1")])
    assert len(roster) == 1
    assert not roster.is_revoked(TEAM, LATER - timedelta(microseconds=1))
    assert roster.is_revoked(TEAM, LATER)
    assert roster.is_revoked(TEAM, LATER + timedelta(days=365))
    assert not roster.is_revoked("team:x1", LATER)


def test_traffic_for_a_revoked_team_is_refused_with_advice() -> None:
    roster = TeamRoster()
    roster.revoke(TEAM, at=NOW, host="FRA")
    roster.check_recipients(["DEU", "ccc", TEAM], NOW - timedelta(seconds=1))  # not yet
    with pytest.raises(RevokedRecipient) as refused:
        roster.check_recipients(["DEU", TEAM], NOW)
    assert refused.value.reason is RejectReason.RECIPIENT_REVOKED
    assert refused.value.reason.value == "recipient-revoked"
    assert "address the host NCB 'FRA'" in str(refused.value)


def test_the_earliest_revocation_stands() -> None:
    roster = TeamRoster()
    roster.revoke(TEAM, at=NOW, host="FRA")
    roster.revoke(TEAM, at=LATER, host="FRA")
    assert roster.is_revoked(TEAM, NOW)


def test_only_teams_are_revoked() -> None:
    with pytest.raises(ValueError, match="only teams"):
        TeamRoster().revoke("FRA", at=NOW, host="FRA")
