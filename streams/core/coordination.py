"""A hub's coordination as data: ``step`` says what to do now, the runtime only does it.

Theory of operation: several times a second the runtime hands ``step`` what it knows
(the lease book, its views of the other hubs, what it declared about them, the terms it
runs and when it last renewed them) and gets back a list of moves, in the order to carry
them out:

1. ``Declare``: another hub changed between ALIVE and DEAD since the last declaration;
2. ``Drop``: a term this hub runs is no longer its own by the book (another hub claimed
   the unit): stop it at once, its successor starts from the reported positions;
3. then what ``streams.core.duty.plan_leases`` decides for the units wanted from the hubs
   alive (``alive_sites``): ``RenewUnit``, ``ReleaseUnit`` (failback, handover),
   ``ClaimUnit`` (with the reason, from the book before the claim).

The hub's life cycle is explicit too (``HubPhase``, ``advance``): starting (connecting),
catching-up (folding the journals' history), running (coordinating), stopping (handing
the leases on), stopped. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from schemas.leases import LeaseBook
from schemas.participants import HUB_SITES
from schemas.topics import TopicCatalog
from streams.core.duty import (
    INTAKE,
    ClaimReason,
    Intent,
    claim_reason,
    desired_owners,
    plan_leases,
)
from streams.core.liveness import HubView, Liveness, LivenessPolicy, assess
from streams.core.roster import DutyRoster

__all__ = [
    "ClaimUnit",
    "Declare",
    "Drop",
    "HubPhase",
    "Move",
    "PhaseError",
    "ReleaseUnit",
    "RenewUnit",
    "advance",
    "alive_sites",
    "intake_at_risk",
    "intake_expected",
    "pause_before_pass",
    "step",
    "units_awaited",
]


class HubPhase(StrEnum):
    STARTING = "starting"
    CATCHING_UP = "catching-up"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


_NEXT: dict[HubPhase, frozenset[HubPhase]] = {
    HubPhase.STARTING: frozenset({HubPhase.CATCHING_UP, HubPhase.STOPPING}),
    HubPhase.CATCHING_UP: frozenset({HubPhase.RUNNING, HubPhase.STOPPING}),
    HubPhase.RUNNING: frozenset({HubPhase.STOPPING}),
    HubPhase.STOPPING: frozenset({HubPhase.STOPPED}),
    HubPhase.STOPPED: frozenset(),
}


class PhaseError(RuntimeError):
    """A life-cycle step out of order (e.g. running again after stopping): a bug in the shell."""


def advance(phase: HubPhase, to: HubPhase) -> HubPhase:
    """The next phase, if the life cycle allows going from ``phase`` to ``to``."""
    if to not in _NEXT[phase]:
        raise PhaseError(f"a hub cannot go from {phase.value} to {to.value}")
    return to


@dataclass(frozen=True, slots=True)
class Declare:
    site: str
    liveness: Liveness


@dataclass(frozen=True, slots=True)
class Drop:
    unit: str
    epoch: int
    now_owner: str | None
    now_epoch: int


@dataclass(frozen=True, slots=True)
class RenewUnit:
    unit: str
    epoch: int


@dataclass(frozen=True, slots=True)
class ReleaseUnit:
    unit: str
    epoch: int
    handing_to: str | None


@dataclass(frozen=True, slots=True)
class ClaimUnit:
    unit: str
    epoch: int
    reason: ClaimReason
    previous_owner: str | None  # the owner named by the book, else the last term's
    previous_epoch: int
    unreleased: bool  # the previous term never released: resume from its outputs


Move = Declare | Drop | RenewUnit | ReleaseUnit | ClaimUnit


def alive_sites(
    *,
    me: str,
    now: datetime,
    views: Mapping[str, HubView],
    policy: LivenessPolicy,
    started_at: datetime,
) -> set[str]:
    """The hubs alive by this hub's views; for its first TTL it has not heard everyone
    yet, so it assumes the best (and claims only its natural units)."""
    if now < started_at + policy.timeout:
        return set(HUB_SITES)
    others = {s for s in HUB_SITES if s != me}
    return {me} | {s for s in others if assess(views.get(s), now, policy) is Liveness.ALIVE}


def step(
    *,
    me: str,
    now: datetime,
    book: LeaseBook,
    views: Mapping[str, HubView],
    declared: Mapping[str, Liveness],
    running: Mapping[str, int],
    last_renewed: Mapping[str, datetime],
    renew_every: timedelta,
    policy: LivenessPolicy,
    started_at: datetime,
    topics: TopicCatalog,
    roster: DutyRoster,
) -> list[Move]:
    """What this hub does now, in order (see the module doc)."""
    moves: list[Move] = []
    alive = alive_sites(me=me, now=now, views=views, policy=policy, started_at=started_at)
    for site in HUB_SITES:
        if site == me:
            continue
        state = Liveness.ALIVE if site in alive else Liveness.DEAD
        if declared.get(site, Liveness.ALIVE) is not state:
            moves.append(Declare(site, state))
    still: dict[str, int] = {}
    for unit, epoch in running.items():
        lease = book.lease(unit)
        if (lease.owner, lease.epoch) == (me, epoch):
            still[unit] = epoch
        else:
            moves.append(Drop(unit, epoch, lease.owner, lease.epoch))
    wanted = desired_owners(topics=topics, roster=roster, now=now, alive=alive)
    for intent in plan_leases(
        me=me,
        book=book,
        wanted=wanted,
        now=now,
        last_renewed=last_renewed,
        renew_every=renew_every,
        running=still,
    ):
        if intent.intent is Intent.RENEW:
            moves.append(RenewUnit(intent.unit, intent.epoch))
        elif intent.intent is Intent.RELEASE:
            moves.append(ReleaseUnit(intent.unit, intent.epoch, intent.handing_to))
        else:
            previous = book.lease(intent.unit)
            moves.append(
                ClaimUnit(
                    intent.unit,
                    intent.epoch,
                    claim_reason(
                        intent.unit, me=me, book=book, topics=topics, roster=roster, now=now
                    ),
                    previous.owner or (previous.terms[-1].owner if previous.terms else None),
                    previous.epoch,
                    unreleased=previous.owner is not None,
                )
            )
    return moves


def units_awaited(
    *,
    me: str,
    now: datetime,
    book: LeaseBook,
    views: Mapping[str, HubView],
    policy: LivenessPolicy,
    started_at: datetime,
    topics: TopicCatalog,
    roster: DutyRoster,
) -> list[str]:
    """Units this hub should hold now that another hub still holds, its lease good: a duty
    handover or a failback under way. Until their release is read the shell waits on its
    journal tail rather than a tick, so the claim follows the release at once."""
    alive = alive_sites(me=me, now=now, views=views, policy=policy, started_at=started_at)
    wanted = desired_owners(topics=topics, roster=roster, now=now, alive=alive)
    return [
        unit
        for unit, owner in wanted.items()
        if owner == me and book.owner_at(unit, now) not in (None, me)
    ]


def pause_before_pass(now: datetime, roster: DutyRoster, tick: timedelta) -> timedelta:
    """How long to wait before the next coordination pass: a tick, cut short so that a pass
    runs right at the next duty handover (a release a tick late holds intake up a tick).

    >>> from datetime import UTC
    >>> roster = DutyRoster(shift_seconds=20, epoch=datetime(2026, 1, 1, tzinfo=UTC))
    >>> pause_before_pass(datetime(2026, 1, 1, 0, 0, 19, 900_000, tzinfo=UTC), roster,
    ...                   timedelta(seconds=0.2))
    datetime.timedelta(microseconds=100000)
    """
    return max(timedelta(0), min(tick, roster.next_handover(now) - now))


def intake_expected(
    me: str, now: datetime, roster: DutyRoster, lead: timedelta, *, holding: bool
) -> bool:
    """Whether intake is about to come to ``me``: it is not ``holding`` it, and it is on duty
    now (a handover under way) or at a handover within ``lead``. Its work loop then fetches
    with the message path's short wait, so that intake's first fetch after the claim is not
    queued behind an idle fetch still waiting at the broker (measured: half a second).

    >>> from datetime import UTC
    >>> roster = DutyRoster(shift_seconds=20, epoch=datetime(2026, 1, 1, tzinfo=UTC))
    >>> at = datetime(2026, 1, 1, 0, 0, 19, 500_000, tzinfo=UTC)
    >>> incoming = roster.hub_on_duty(roster.next_handover(at))
    >>> intake_expected(incoming, at, roster, timedelta(seconds=1), holding=False)
    True
    >>> intake_expected(roster.hub_on_duty(at), at, roster, timedelta(seconds=1), holding=True)
    False
    >>> intake_expected(incoming, at, roster, timedelta(seconds=0.2), holding=False)
    False
    >>> later = datetime(2026, 1, 1, 0, 0, 20, 100_000, tzinfo=UTC)  # the release not read yet
    >>> intake_expected(incoming, later, roster, timedelta(seconds=1), holding=False)
    True
    """
    if holding:
        return False
    handover = roster.next_handover(now)
    coming = handover - now <= lead and roster.hub_on_duty(handover) == me
    return coming or roster.hub_on_duty(now) == me


def intake_at_risk(
    me: str, now: datetime, book: LeaseBook, views: Mapping[str, HubView], policy: LivenessPolicy
) -> bool:
    """Whether another hub may soon have to take intake over: nobody holds a good lease on
    it, or its holder has not been heard for more than half the liveness timeout. A hub
    that may take it braces its work loop as for a handover (``intake_expected``); a beat
    that comes late only costs a few short fetches.

    >>> from datetime import UTC
    >>> from schemas.leases import Claim
    >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
    >>> book = LeaseBook.empty().apply(Claim(INTAKE, "lyon", 1, t0, timedelta(seconds=3)))
    >>> heard = {"lyon": HubView("lyon", t0, 1, 1)}
    >>> policy = LivenessPolicy(timeout=timedelta(seconds=3))
    >>> intake_at_risk("singapore", t0 + timedelta(seconds=1), book, heard, policy)
    False
    >>> intake_at_risk("singapore", t0 + timedelta(seconds=2), book, heard, policy)
    True
    >>> intake_at_risk("lyon", t0 + timedelta(seconds=2), book, heard, policy)
    False
    """
    holder = book.owner_at(INTAKE, now)
    if holder == me:
        return False
    if holder is None:
        return True
    view = views.get(holder)
    return view is None or now - view.last_received > policy.timeout / 2
