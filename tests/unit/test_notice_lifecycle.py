"""The notice state machine: legal moves and their effects, illegal ones, expiry and renewal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.notices import (
    Notice,
    NoticeColour,
    NoticeRequest,
    NoticeState,
    PersonSubject,
    ReasonCode,
    ReviewDecision,
    ReviewOutcome,
    ReviewReason,
)
from schemas.registry import MEMBER_COUNT, Region, default_registry
from streams.core.clocks import InvalidClockScale
from streams.core.notice_lifecycle import (
    PROMPT_LEAD,
    TRANSITIONS,
    VALIDITY,
    Broadcast,
    IllegalTransition,
    Journal,
    NoticeEvent,
    NoticeLifecycle,
    NotifyRequester,
    NotRequester,
    PromptRenewal,
    broadcast_recipients,
)

S, E = NoticeState, NoticeEvent
T0 = datetime(2026, 1, 1, tzinfo=UTC)
REQUEST_ID = "6f1d2c1e-24f7-4c0c-9a1e-1247a5e5c0de"
LIFE = NoticeLifecycle()


def notice(state: NoticeState, **changes: Any) -> Notice:
    fields: dict[str, Any] = {
        "notice_id": "red-2026-000001",
        "request_id": REQUEST_ID,
        "colour": NoticeColour.RED,
        "state": state,
        "requester": "FRA",
        "subject": PersonSubject(family_name="DOE"),
        "facts": "f",
        "version": 3,
    }
    if state in (S.PUBLISHED, S.SUSPENDED):
        fields |= {"published_at": T0, "expires_at": T0 + VALIDITY}
    return Notice(**(fields | changes))


BROADCAST = {E.PUBLISH, E.SUSPEND, E.REINSTATE, E.CANCEL, E.EXPIRE, E.RENEW}
LEGAL = sorted(TRANSITIONS.items())


@pytest.mark.parametrize(("move", "target"), LEGAL, ids=[f"{s}-{e}" for (s, e), _ in LEGAL])
def test_every_legal_move_bumps_the_version_and_returns_its_effects(
    move: tuple[NoticeState, NoticeEvent], target: NoticeState
) -> None:
    state, event = move
    now = T0 + timedelta(days=10)
    before = notice(state)
    step = LIFE.apply(before, event, now=now, by="FRA")
    assert step.notice.state is target
    assert step.notice.version == before.version + 1
    kinds = [type(effect) for effect in step.effects]
    assert kinds == ([Journal, Broadcast, NotifyRequester] if event in BROADCAST
                     else [Journal, NotifyRequester])  # fmt: skip
    journal = step.effects[0]
    assert isinstance(journal, Journal)
    assert (journal.from_state, journal.to_state, journal.at) == (state, target, now)
    if event in BROADCAST:
        assert step.effects[1] == Broadcast(step.notice)


def test_the_documented_moves_are_exactly_the_table() -> None:
    assert set(TRANSITIONS) == {
        (S.REQUESTED, E.START_REVIEW), (S.UNDER_REVIEW, E.PUBLISH), (S.UNDER_REVIEW, E.REFUSE),
        (S.UNDER_REVIEW, E.RETURN), (S.PUBLISHED, E.SUSPEND), (S.SUSPENDED, E.REINSTATE),
        (S.PUBLISHED, E.CANCEL), (S.SUSPENDED, E.CANCEL), (S.PUBLISHED, E.EXPIRE),
        (S.SUSPENDED, E.EXPIRE), (S.PUBLISHED, E.RENEW), (S.SUSPENDED, E.RENEW),
    }  # fmt: skip


ILLEGAL = [(s, e) for s in NoticeState for e in NoticeEvent if (s, e) not in TRANSITIONS]


@pytest.mark.parametrize(("state", "event"), ILLEGAL, ids=[f"{s}-{e}" for s, e in ILLEGAL])
def test_every_other_move_raises_naming_the_state_and_the_event(
    state: NoticeState, event: NoticeEvent
) -> None:
    with pytest.raises(IllegalTransition) as caught:
        LIFE.apply(notice(state), event, now=T0, by="FRA")
    assert (caught.value.state, caught.value.event) == (state, event)
    assert f"is {state.value}: cannot {event.value}" in str(caught.value)


def test_final_states_say_nothing_is_allowed() -> None:
    with pytest.raises(IllegalTransition, match="nothing"):
        LIFE.apply(notice(S.CANCELLED), E.REINSTATE, now=T0, by="FRA")


@pytest.mark.parametrize("event", [E.SUSPEND, E.RENEW])
def test_only_the_requester_suspends_or_renews(event: NoticeEvent) -> None:
    with pytest.raises(NotRequester, match="only FRA"):
        LIFE.apply(notice(S.PUBLISHED), event, now=T0, by="DEU")


def test_the_ccc_may_cancel() -> None:
    assert LIFE.apply(notice(S.SUSPENDED), E.CANCEL, now=T0).notice.state is S.CANCELLED


def test_a_request_goes_through_review_to_publication() -> None:
    req = NoticeRequest(
        request_id=REQUEST_ID, requesting_ncb="FRA", colour=NoticeColour.BLUE,
        subject=PersonSubject(family_name="DOE"), facts="f", region=Region.AFRICA,
    )  # fmt: skip
    opened = LIFE.open(req, "blue-2026-000007")
    assert (opened.state, opened.version, opened.region) == (S.REQUESTED, 1, Region.AFRICA)
    reviewing = LIFE.apply(opened, E.START_REVIEW, now=T0).notice
    outcome = ReviewOutcome(request_id=REQUEST_ID, decision=ReviewDecision.PUBLISHED)
    step = LIFE.decide(reviewing, outcome, now=T0)
    assert step.notice.state is S.PUBLISHED
    assert (step.notice.published_at, step.notice.expires_at) == (T0, T0 + VALIDITY)
    assert NotifyRequester("FRA", "blue-2026-000007", E.PUBLISH, S.PUBLISHED, outcome) in (
        step.effects
    )


@pytest.mark.parametrize(
    ("decision", "target"),
    [(ReviewDecision.REFUSED, S.REFUSED), (ReviewDecision.RETURNED, S.REQUESTED)],
)
def test_a_refusal_or_return_follows_the_outcome(
    decision: ReviewDecision, target: NoticeState
) -> None:
    why = (ReviewReason(code=ReasonCode.DUPLICATE, text="t"),)
    outcome = ReviewOutcome(request_id=REQUEST_ID, decision=decision, reasons=why)
    step = LIFE.decide(notice(S.UNDER_REVIEW), outcome, now=T0)
    assert step.notice.state is target
    assert not any(isinstance(e, Broadcast) for e in step.effects)


# --- time: expiry, renewal prompt, renewal, all scaled ---

SCALE = 525_960.0  # one year of notice time per minute of demo time
FAST = NoticeLifecycle(scale=SCALE)


def published(life: NoticeLifecycle, at: datetime) -> Notice:
    return life.apply(notice(S.UNDER_REVIEW), E.PUBLISH, now=at).notice


def test_durations_are_scaled_like_the_handling_clocks() -> None:
    assert FAST.validity == VALIDITY / SCALE
    assert FAST.prompt_lead == PROMPT_LEAD / SCALE
    assert timedelta(minutes=4.9) < FAST.validity < timedelta(minutes=5.1)
    with pytest.raises(InvalidClockScale):
        NoticeLifecycle(scale=0)


@pytest.mark.parametrize("life", [LIFE, FAST], ids=["real time", "compressed"])
def test_the_renewal_prompt_comes_once_at_six_months_before_expiry(life: NoticeLifecycle) -> None:
    live = published(life, T0)
    assert live.expires_at is not None
    prompt_at = live.expires_at - life.prompt_lead
    tiny = timedelta(microseconds=1)
    assert life.tick(live, prompt_at - tiny) is None
    step = life.tick(live, prompt_at)
    assert step is not None
    (effect,) = step.effects
    assert isinstance(effect, PromptRenewal)
    assert (effect.prompt.requester, effect.prompt.expires_at) == ("FRA", live.expires_at)
    assert step.notice.state is S.PUBLISHED
    assert step.notice.prompted_at == prompt_at
    assert life.tick(step.notice, prompt_at + tiny) is None  # once per validity period


@pytest.mark.parametrize("life", [LIFE, FAST], ids=["real time", "compressed"])
def test_a_notice_expires_at_its_validity_end_unless_renewed(life: NoticeLifecycle) -> None:
    live = published(life, T0)
    end = T0 + life.validity
    prompted = life.tick(live, end - life.prompt_lead)
    assert prompted is not None
    expired = life.tick(prompted.notice, end)
    assert expired is not None
    assert expired.notice.state is S.EXPIRED
    assert Broadcast(expired.notice) in expired.effects
    renew_at = end - life.prompt_lead / 2
    renewed = life.apply(prompted.notice, E.RENEW, now=renew_at, by="FRA").notice
    assert renewed.expires_at == renew_at + life.validity
    assert renewed.prompted_at is None
    assert life.tick(renewed, end) is None  # the old end has no effect any more
    assert life.tick(renewed, renew_at + life.validity - life.prompt_lead) is not None


def test_tick_ignores_notices_not_in_force_and_a_late_tick_expires_without_prompting() -> None:
    assert LIFE.tick(notice(S.UNDER_REVIEW), T0 + 10 * VALIDITY) is None
    late = LIFE.tick(published(LIFE, T0), T0 + 2 * VALIDITY)
    assert late is not None
    assert late.notice.state is S.EXPIRED
    assert not any(isinstance(e, PromptRenewal) for e in late.effects)


def test_a_suspended_notice_also_expires() -> None:
    step = LIFE.tick(notice(S.SUSPENDED), T0 + VALIDITY)
    assert step is not None
    assert step.notice.state is S.EXPIRED


# --- who receives a broadcast ---

REGISTRY = default_registry()
TEAMS = [("team:imest-lyon", Region.EUROPE), ("team:irt-nairobi", Region.AFRICA)]


def test_a_worldwide_notice_reaches_all_196_ncbs_and_every_team() -> None:
    recipients = broadcast_recipients(notice(S.PUBLISHED), REGISTRY, TEAMS)
    assert len(recipients) == MEMBER_COUNT + 2
    assert recipients[:MEMBER_COUNT] == REGISTRY.codes()
    assert recipients[MEMBER_COUNT:] == ("team:imest-lyon", "team:irt-nairobi")


@pytest.mark.parametrize("region", list(Region))
def test_a_regional_notice_reaches_exactly_that_regions_members_and_teams(region: Region) -> None:
    recipients = broadcast_recipients(notice(S.PUBLISHED, region=region), REGISTRY, TEAMS)
    members = tuple(m.iso3 for m in REGISTRY if m.region is region)
    teams = tuple(t for t, r in TEAMS if r is region)
    assert recipients == members + teams
    assert 0 < len(members) < MEMBER_COUNT
