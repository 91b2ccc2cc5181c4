"""Who should own each unit, and what a hub writes about it: table-driven."""

from __future__ import annotations

from datetime import timedelta

import pytest

from schemas.header import Precedence
from schemas.leases import Claim, LeaseBook, Release, Renew
from schemas.topics import TopicCatalog
from streams.core.duty import (
    INTAKE,
    ClaimReason,
    Intent,
    LeaseIntent,
    claim_reason,
    desired_owners,
    due_for_renewal,
    lane_site,
    plan_leases,
    standby_chain,
    units,
)
from streams.core.roster import DutyRoster
from tests.unit.factories import T0

TOPICS = TopicCatalog("i247")
ROSTER = DutyRoster(shift_seconds=10.0, epoch=T0)  # singapore, lyon, buenos-aires, 10 s each
TTL = timedelta(seconds=3)
EVERY = timedelta(seconds=1)
LYON_FLASH = TOPICS.lane("lyon", Precedence.FLASH)


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def test_the_units_are_intake_and_the_twelve_lanes() -> None:
    assert units(TOPICS)[0] == INTAKE
    assert len(units(TOPICS)) == 13
    assert lane_site(LYON_FLASH, TOPICS) == "lyon"
    with pytest.raises(ValueError, match="not a lane"):
        lane_site(INTAKE, TOPICS)


@pytest.mark.parametrize(
    ("first", "chain"),
    [
        ("singapore", ("singapore", "lyon", "buenos-aires")),
        ("lyon", ("lyon", "buenos-aires", "singapore")),
        ("buenos-aires", ("buenos-aires", "singapore", "lyon")),
    ],
)
def test_the_standby_chain_follows_the_sun(first: str, chain: tuple[str, ...]) -> None:
    assert standby_chain(first) == chain


@pytest.mark.parametrize(
    ("at", "alive", "intake", "lyon_lanes"),
    [
        (1, {"singapore", "lyon", "buenos-aires"}, "singapore", "lyon"),
        (11, {"singapore", "lyon", "buenos-aires"}, "lyon", "lyon"),  # lyon's shift
        (11, {"singapore", "buenos-aires"}, "buenos-aires", "buenos-aires"),  # lyon dark
        (11, {"singapore"}, "singapore", "singapore"),  # two dark: the third takes all
        (21, {"singapore", "lyon"}, "singapore", "lyon"),  # buenos-aires' shift, it is dark
        (11, set(), None, None),  # nobody alive: nobody should own anything
    ],
)
def test_desired_owners(at: float, alive: set[str], intake: str, lyon_lanes: str) -> None:
    wanted = desired_owners(topics=TOPICS, roster=ROSTER, now=T0 + s(at), alive=alive)
    assert wanted[INTAKE] == intake
    assert {wanted[TOPICS.lane("lyon", p)] for p in Precedence} == {lyon_lanes}


def plan(me: str, book: LeaseBook, want: str | None, at: float, **kw: object) -> list[LeaseIntent]:
    return plan_leases(
        me=me,
        book=book,
        wanted={LYON_FLASH: want},
        now=T0 + s(at),
        last_renewed=kw.get("last_renewed", {}),  # type: ignore[arg-type]
        renew_every=EVERY,
        running=kw.get("running", {}),  # type: ignore[arg-type]
    )


OWNED = LeaseBook.empty().apply(Claim(LYON_FLASH, "lyon", 1, T0, TTL))


@pytest.mark.parametrize(
    ("me", "book", "want", "at", "kw", "moves"),
    [
        # a free unit this hub should own: claim epoch 1
        ("lyon", LeaseBook.empty(), "lyon", 0, {}, [(Intent.CLAIM, 1)]),
        # someone else should own it: nothing
        ("singapore", LeaseBook.empty(), "lyon", 0, {}, []),
        # held and renewed recently: nothing; renewal due: renew
        (
            "lyon",
            OWNED,
            "lyon",
            0.5,
            {"running": {LYON_FLASH: 1}, "last_renewed": {LYON_FLASH: T0}},
            [],
        ),
        (
            "lyon",
            OWNED,
            "lyon",
            1.0,
            {"running": {LYON_FLASH: 1}, "last_renewed": {LYON_FLASH: T0}},
            [(Intent.RENEW, 1)],
        ),
        # held, but another living hub should own it now (failback): release
        (
            "buenos-aires",
            LeaseBook.empty().apply(Claim(LYON_FLASH, "buenos-aires", 1, T0, TTL)),
            "lyon",
            1,
            {"running": {LYON_FLASH: 1}},
            [(Intent.RELEASE, 1)],
        ),
        # the successor waits for the lease to expire, then claims the next epoch
        ("buenos-aires", OWNED, "buenos-aires", 2.9, {}, []),
        ("buenos-aires", OWNED, "buenos-aires", 3.0, {}, [(Intent.CLAIM, 2)]),
        # a lease in this hub's name from a previous incarnation: claim afresh, not renew
        ("lyon", OWNED, "lyon", 0.5, {}, [(Intent.CLAIM, 2)]),
        # ... or hand it on if someone else should own it
        ("lyon", OWNED, "singapore", 0.5, {}, [(Intent.RELEASE, 1)]),
        # a released unit is free at once
        (
            "singapore",
            OWNED.apply(Release(LYON_FLASH, "lyon", 1, T0 + s(1))),
            "singapore",
            1,
            {},
            [(Intent.CLAIM, 2)],
        ),
    ],
)
def test_plan_leases(
    me: str, book: LeaseBook, want: str, at: float, kw: dict[str, object], moves: list[object]
) -> None:
    assert [(m.intent, m.epoch) for m in plan(me, book, want, at, **kw)] == moves


def test_a_release_names_who_it_hands_to() -> None:
    [move] = plan("lyon", OWNED, "singapore", 0.5)
    assert move.handing_to == "singapore"


LYON_ROUTINE = TOPICS.lane("lyon", Precedence.ROUTINE)


def test_a_hubs_renewals_leave_together_once_one_is_due() -> None:
    last = {LYON_FLASH: T0, LYON_ROUTINE: T0 + s(0.6)}
    assert due_for_renewal(last, last, now=T0 + s(0.9), renew_every=EVERY) == frozenset()
    assert due_for_renewal(last, last, now=T0 + s(1), renew_every=EVERY) == set(last)
    assert due_for_renewal([INTAKE], last, now=T0, renew_every=EVERY) == {INTAKE}  # never
    assert due_for_renewal([], last, now=T0 + s(9), renew_every=EVERY) == frozenset()


def test_plan_leases_renews_every_kept_unit_with_the_one_due_and_nothing_it_gives_up() -> None:
    book = OWNED.apply(Claim(LYON_ROUTINE, "lyon", 1, T0, TTL)).apply(
        Claim(INTAKE, "lyon", 1, T0, TTL)
    )
    moves = plan_leases(
        me="lyon",
        book=book,
        wanted={LYON_FLASH: "lyon", LYON_ROUTINE: "lyon", INTAKE: "singapore"},
        now=T0 + s(1),
        last_renewed={LYON_FLASH: T0, LYON_ROUTINE: T0 + s(0.6), INTAKE: T0 + s(0.6)},
        renew_every=EVERY,
        running={LYON_FLASH: 1, LYON_ROUTINE: 1, INTAKE: 1},
    )
    assert {(m.unit, m.intent) for m in moves} == {
        (LYON_FLASH, Intent.RENEW),
        (LYON_ROUTINE, Intent.RENEW),  # early, with the flash lane's
        (INTAKE, Intent.RELEASE),  # handed over, never renewed
    }


@pytest.mark.parametrize(
    ("unit", "me", "book", "at", "reason"),
    [
        (LYON_FLASH, "lyon", LeaseBook.empty(), 0, ClaimReason.FIRST),
        (LYON_FLASH, "buenos-aires", OWNED, 5, ClaimReason.FAILOVER),  # expired, not released
        (
            LYON_FLASH,
            "lyon",
            LeaseBook.empty()
            .apply(Claim(LYON_FLASH, "buenos-aires", 1, T0, TTL))
            .apply(Release(LYON_FLASH, "buenos-aires", 1, T0 + s(1))),
            2,
            ClaimReason.FAILBACK,  # a stand-in released it to its natural owner
        ),
        (
            INTAKE,
            "lyon",
            LeaseBook.empty()
            .apply(Claim(INTAKE, "singapore", 1, T0, TTL))
            .apply(Renew(INTAKE, "singapore", 1, T0 + s(5), TTL))
            .apply(Release(INTAKE, "singapore", 1, T0 + s(10))),
            10,
            ClaimReason.DUTY_HANDOVER,  # singapore's shift ended, lyon's began
        ),
        (
            INTAKE,
            "lyon",
            LeaseBook.empty()
            .apply(Claim(INTAKE, "buenos-aires", 1, T0 + s(11), TTL))
            .apply(Release(INTAKE, "buenos-aires", 1, T0 + s(15))),
            15,
            ClaimReason.FAILBACK,  # buenos-aires stood in for lyon during lyon's shift
        ),
        (
            INTAKE,
            "buenos-aires",
            LeaseBook.empty()
            .apply(Claim(INTAKE, "singapore", 1, T0 + s(11), TTL))
            .apply(Release(INTAKE, "singapore", 1, T0 + s(12))),
            12,
            ClaimReason.REASSIGNED,  # a stand-in's stand-in: neither is lyon
        ),
    ],
)
def test_claim_reasons(unit: str, me: str, book: LeaseBook, at: float, reason: ClaimReason) -> None:
    assert (
        claim_reason(unit, me=me, book=book, topics=TOPICS, roster=ROSTER, now=T0 + s(at)) is reason
    )
