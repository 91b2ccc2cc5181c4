"""A hub's coordination step and life cycle: table-driven, no broker, no clock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import pytest

from schemas.header import Precedence
from schemas.leases import Claim, LeaseBook, Release
from schemas.participants import HUB_SITES
from schemas.topics import TopicCatalog
from streams.core.coordination import (
    ClaimUnit,
    Declare,
    Drop,
    HubPhase,
    Move,
    PhaseError,
    ReleaseUnit,
    RenewUnit,
    advance,
    alive_sites,
    intake_at_risk,
    intake_expected,
    pause_before_pass,
    step,
    units_awaited,
)
from streams.core.duty import INTAKE, ClaimReason
from streams.core.liveness import HubView, Liveness, LivenessPolicy
from streams.core.roster import DutyRoster
from tests.unit.factories import T0

TOPICS = TopicCatalog("i247")
ROSTER = DutyRoster(shift_seconds=10.0, epoch=T0)  # singapore, lyon, buenos-aires, 10 s each
TTL = timedelta(seconds=3)
POLICY = LivenessPolicy(timeout=TTL, revive_after=2)
EVERY = timedelta(seconds=1)


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def lanes(site: str) -> list[str]:
    return [TOPICS.lane(site, p) for p in Precedence]


def heard(site: str, at: float, declared: Liveness = Liveness.ALIVE) -> HubView:
    return HubView(site, s(at), 10, 5, declared)


def book_of(*claims: tuple[str, str, int, float], lyon_lanes_at: float = 0) -> LeaseBook:
    """Claims in order; lyon holds its own lanes (epoch 1, claimed at ``lyon_lanes_at``)."""
    book = LeaseBook.empty()
    for lane in lanes("lyon"):
        book = book.apply(Claim(lane, "lyon", 1, s(lyon_lanes_at), TTL))
    for unit, site, epoch, at in claims:
        book = book.apply(Claim(unit, site, epoch, s(at), TTL))
    return book


def holding_lyon_lanes(
    renewed: float, running: Mapping[str, int] | None = None
) -> dict[str, object]:
    """lyon runs its lanes (and ``running``), renewed at ``renewed``."""
    held = {**dict.fromkeys(lanes("lyon"), 1), **(running or {})}
    return {"running": held, "last_renewed": dict.fromkeys(held, s(renewed))}


def run(
    me: str,
    at: float,
    book: LeaseBook,
    views: Mapping[str, HubView],
    *,
    declared: Mapping[str, Liveness] | None = None,
    running: Mapping[str, int] | None = None,
    last_renewed: Mapping[str, datetime] | None = None,
    started: float = -100.0,
) -> list[Move]:
    return step(
        me=me,
        now=s(at),
        book=book,
        views=views,
        declared=declared or {},
        running=running or {},
        last_renewed=last_renewed or {},
        renew_every=EVERY,
        policy=POLICY,
        started_at=s(started),
        topics=TOPICS,
        roster=ROSTER,
    )


ALL_HEARD = {site: heard(site, 0.5) for site in HUB_SITES}
LYON_HOLDS = book_of()
SINGAPORE_HOLDS = book_of(
    (INTAKE, "singapore", 1, 0), *[(lane, "singapore", 1, 0) for lane in lanes("singapore")]
)


def test_a_hub_that_just_started_assumes_everyone_alive_and_claims_its_own_units() -> None:
    moves = run("singapore", 1, LeaseBook.empty(), {}, started=0)
    assert moves == [
        ClaimUnit(unit, 1, ClaimReason.FIRST, None, 0, unreleased=False)
        for unit in [INTAKE, *lanes("singapore")]
    ]


@pytest.mark.parametrize(
    ("case", "me", "at", "book", "views", "kw", "expected"),
    [
        (
            "everyone heard, lyon holds its lanes, renewed recently: nothing to do",
            "lyon",
            1,
            LYON_HOLDS,
            ALL_HEARD,
            {
                "running": dict.fromkeys(lanes("lyon"), 1),
                "last_renewed": dict.fromkeys(lanes("lyon"), s(0.5)),
            },
            [],
        ),
        (
            "a renewal is due for every lane held",
            "lyon",
            1.6,
            LYON_HOLDS,
            ALL_HEARD,
            {
                "running": dict.fromkeys(lanes("lyon"), 1),
                "last_renewed": dict.fromkeys(lanes("lyon"), s(0.5)),
            },
            [RenewUnit(lane, 1) for lane in lanes("lyon")],
        ),
        (
            "singapore silent past the TTL and its leases expired: declare it, take its work",
            "lyon",
            5,
            book_of(
                (INTAKE, "singapore", 1, 0),
                *[(lane, "singapore", 1, 0) for lane in lanes("singapore")],
                lyon_lanes_at=4.5,
            ),
            {"lyon": heard("lyon", 4.5), "buenos-aires": heard("buenos-aires", 4.5)},
            holding_lyon_lanes(4.5),
            [
                Declare("singapore", Liveness.DEAD),
                *[
                    ClaimUnit(unit, 2, ClaimReason.FAILOVER, "singapore", 1, unreleased=True)
                    for unit in [INTAKE, *lanes("singapore")]
                ],
            ],
        ),
        (
            "a term the book gives to another hub is dropped at once",
            "lyon",
            1,
            book_of((INTAKE, "lyon", 1, 0))
            .apply(Release(INTAKE, "lyon", 1, s(0.2), {}))
            .apply(Claim(INTAKE, "singapore", 2, s(0.3), TTL)),
            ALL_HEARD,
            holding_lyon_lanes(0.5, {INTAKE: 1}),
            [Drop(INTAKE, 1, "singapore", 2)],
        ),
        (
            "singapore beats again after being declared dead: alive, and lyon hands back",
            "lyon",
            5,
            book_of((INTAKE, "singapore", 1, 0), (INTAKE, "lyon", 2, 4), lyon_lanes_at=4.5),
            {
                "singapore": heard("singapore", 4.8),
                "buenos-aires": heard("buenos-aires", 4.8),
            },
            {"declared": {"singapore": Liveness.DEAD}, **holding_lyon_lanes(4.5, {INTAKE: 2})},
            [Declare("singapore", Liveness.ALIVE), ReleaseUnit(INTAKE, 2, "singapore")],
        ),
    ],
)
def test_step(
    case: str,
    me: str,
    at: float,
    book: LeaseBook,
    views: Mapping[str, HubView],
    kw: dict[str, object],
    expected: list[Move],
) -> None:
    moves = run(me, at, book, views, **kw)  # type: ignore[arg-type]
    assert moves == expected, case


def test_alive_sites_are_everyone_during_the_first_ttl_then_only_those_heard() -> None:
    views = {"lyon": heard("lyon", 9.5)}
    assert alive_sites(me="lyon", now=s(1), views={}, policy=POLICY, started_at=s(0)) == set(
        HUB_SITES
    )
    assert alive_sites(me="singapore", now=s(10), views=views, policy=POLICY, started_at=s(0)) == {
        "singapore",
        "lyon",
    }


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ([HubPhase.CATCHING_UP, HubPhase.RUNNING, HubPhase.STOPPING, HubPhase.STOPPED], True),
        ([HubPhase.STOPPING, HubPhase.STOPPED], True),  # stopped before it connected
        ([HubPhase.CATCHING_UP, HubPhase.STOPPING, HubPhase.STOPPED], True),
        ([HubPhase.RUNNING], False),  # running without catching up on the journals
        ([HubPhase.CATCHING_UP, HubPhase.RUNNING, HubPhase.STOPPED], False),  # no handover
        ([HubPhase.STOPPING, HubPhase.STOPPED, HubPhase.RUNNING], False),  # no second life
    ],
)
def test_the_life_cycle_goes_one_way(path: list[HubPhase], allowed: bool) -> None:
    phase = HubPhase.STARTING
    if allowed:
        for to in path:
            phase = advance(phase, to)
        assert phase is path[-1]
        return
    for to in path[:-1]:
        phase = advance(phase, to)
    with pytest.raises(PhaseError, match="cannot go from"):
        advance(phase, path[-1])


# --- between passes: a handover under way is waited for on the journal -------------


def awaited(me: str, at: float, book: LeaseBook, views: Mapping[str, HubView]) -> list[str]:
    return units_awaited(
        me=me,
        now=s(at),
        book=book,
        views=views,
        policy=POLICY,
        started_at=s(-100),
        topics=TOPICS,
        roster=ROSTER,
    )


ALL_HEARD = {site: heard(site, 10.5) for site in HUB_SITES}


def test_at_a_handover_the_incoming_hub_awaits_intake_until_it_is_released() -> None:
    book = book_of((INTAKE, "singapore", 1, 9.5))  # singapore's shift ends at 10 s
    assert awaited("lyon", 10.5, book, ALL_HEARD) == [INTAKE]
    assert awaited("singapore", 10.5, book, ALL_HEARD) == []  # it releases, it awaits nothing
    assert awaited("buenos-aires", 10.5, book, ALL_HEARD) == []
    released = book.apply(Release(INTAKE, "singapore", 1, s(10.2), {0: 7}))
    assert awaited("lyon", 10.5, released, ALL_HEARD) == []  # free: claim it on this pass


def test_a_unit_held_by_its_natural_owner_is_awaited_by_nobody() -> None:
    book = book_of((INTAKE, "lyon", 1, 10.2))
    assert all(awaited(site, 10.5, book, ALL_HEARD) == [] for site in HUB_SITES)


def test_a_lapsed_lease_is_not_awaited_it_is_claimed() -> None:
    book = book_of((INTAKE, "singapore", 1, 5.0))  # not renewed since 5 s: lapsed at 8 s
    assert awaited("lyon", 10.5, book, ALL_HEARD) == []


@pytest.mark.parametrize(
    ("at", "pause_ms"),
    [
        (0.0, 200),  # a shift just began: a full tick
        (9.7, 200),
        (9.9, 100),  # the handover at 10 s comes first
        (9.999, 1),
    ],
)
def test_the_pause_between_passes_ends_at_a_handover(at: float, pause_ms: int) -> None:
    pause = pause_before_pass(s(at), ROSTER, timedelta(milliseconds=200))
    assert round(pause.total_seconds() * 1000) == pause_ms


@pytest.mark.parametrize(
    ("site", "at", "holding", "expected"),
    [
        ("lyon", 8.5, False, False),  # lyon comes on at 10 s: too early to brace
        ("lyon", 9.2, False, True),  # within the second before its handover
        ("buenos-aires", 9.2, False, False),  # not the incoming hub
        ("lyon", 10.1, False, True),  # on duty, the release not read yet
        ("lyon", 10.1, True, False),  # intake claimed: the adaptive wait again
        ("singapore", 9.2, True, False),  # the outgoing hub
    ],
)
def test_a_hub_braces_for_intake_only_around_the_handover_that_brings_it_on(
    site: str, at: float, holding: bool, expected: bool
) -> None:
    lead = timedelta(seconds=1)
    assert intake_expected(site, s(at), ROSTER, lead, holding=holding) is expected


@pytest.mark.parametrize(
    ("me", "heard_at", "at", "at_risk"),
    [
        ("lyon", 10.0, 11.0, False),  # the holder beat a second ago
        ("lyon", 10.0, 11.6, True),  # more than half the 3 s timeout without a beat
        ("singapore", 10.0, 11.6, False),  # the holder itself braces for nothing
        ("lyon", 10.0, 13.1, True),  # the holder's lease has lapsed: nobody holds intake
    ],
)
def test_a_hub_braces_when_the_holder_of_intake_goes_quiet(
    me: str, heard_at: float, at: float, at_risk: bool
) -> None:
    book = LeaseBook.empty().apply(Claim(INTAKE, "singapore", 1, s(10.0), TTL))
    views = {"singapore": heard("singapore", heard_at)}
    assert intake_at_risk(me, s(at), book, views, POLICY) is at_risk


def test_a_holder_never_heard_is_at_risk() -> None:
    book = LeaseBook.empty().apply(Claim(INTAKE, "singapore", 1, s(10.0), TTL))
    assert intake_at_risk("lyon", s(10.5), book, {}, POLICY)
