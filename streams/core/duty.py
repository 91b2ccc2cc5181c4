"""Who should own each unit of CCC work, and what a hub does about it: pure decisions.

Theory of operation
-------------------
Units are ``intake`` (the inbound topic) and the twelve lanes. Each has a *standby chain*:

* ``intake``: the hub on duty now (``DutyRoster``), then its successors in follow-the-sun
  order, so new traffic follows the sun and, when the hub on duty is dark, its successor;
* a lane of site ``S``: ``S``, then ``successor(S)``, then the third hub. Lanes stay with
  their site off duty: the backlog a hub admitted is delivered by that hub, and only a
  failure moves it.

The desired owner is the first hub of the chain that is alive (``streams.core.liveness``: a hub
regards itself as alive). ``plan_leases`` compares that with the lease book and returns
what this hub should write to the lease journal: claim a unit it should own that nobody
holds, renew what it holds, release what it holds and someone else, alive, should own
(failback, or the end of a shift for intake). A claim waits for the lease to be free or
expired, so a failover takes at most the lease TTL after the last renewal.

Worked example (TTL 3 s): Lyon on duty holds ``intake`` and its lanes and is SIGKILLed at
t=10 after renewing at t=9.8. Buenos Aires sees Lyon dead at ~t=13 (three silent seconds),
and the leases expired at 12.8, so it claims ``intake`` and Lyon's lanes and delivers from
where Lyon last reported. Lyon restarts at 40; once Buenos Aires has heard two beats in a
row, it releases them and Lyon claims them back (failback).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from schemas.header import Precedence
from schemas.leases import LeaseBook
from schemas.participants import HUB_SITES
from schemas.topics import TopicCatalog
from streams.core.roster import DutyRoster

__all__ = [
    "INTAKE",
    "ClaimReason",
    "Intent",
    "LeaseIntent",
    "claim_reason",
    "desired_owners",
    "due_for_renewal",
    "lane_site",
    "plan_leases",
    "standby_chain",
    "units",
]

INTAKE = "intake"


def units(topics: TopicCatalog) -> list[str]:
    """Every unit: intake, then each lane, most urgent first within a site."""
    return [INTAKE, *topics.lanes()]


def lane_site(unit: str, topics: TopicCatalog) -> str:
    """The site whose lane ``unit`` is; ``ValueError`` for intake or a foreign name."""
    for site in HUB_SITES:
        if unit in {topics.lane(site, p) for p in Precedence}:
            return site
    raise ValueError(f"{unit!r} is not a lane of this deployment")


def standby_chain(first: str) -> tuple[str, ...]:
    """``first`` and then its successors, each hub once."""
    chain = [first]
    while len(chain) < len(HUB_SITES):
        chain.append(DutyRoster.successor(chain[-1]))
    return tuple(chain)


def natural_owner(unit: str, *, topics: TopicCatalog, roster: DutyRoster, now: datetime) -> str:
    return roster.hub_on_duty(now) if unit == INTAKE else lane_site(unit, topics)


def desired_owners(
    *, topics: TopicCatalog, roster: DutyRoster, now: datetime, alive: Iterable[str]
) -> dict[str, str | None]:
    """The owner each unit should have now: the first living hub of its chain."""
    living = frozenset(alive)
    wanted: dict[str, str | None] = {}
    for unit in units(topics):
        chain = standby_chain(natural_owner(unit, topics=topics, roster=roster, now=now))
        wanted[unit] = next((site for site in chain if site in living), None)
    return wanted


class Intent(StrEnum):
    CLAIM = "claim"
    RENEW = "renew"
    RELEASE = "release"


@dataclass(frozen=True, slots=True)
class LeaseIntent:
    """What to write for one unit; the shell adds positions (and, to release, stops first)."""

    intent: Intent
    unit: str
    epoch: int
    handing_to: str | None = None


def plan_leases(
    *,
    me: str,
    book: LeaseBook,
    wanted: Mapping[str, str | None],
    now: datetime,
    last_renewed: Mapping[str, datetime],
    renew_every: timedelta,
    running: Mapping[str, int],
) -> list[LeaseIntent]:
    """This hub's lease moves at ``now``; at most one per unit.

    ``running`` maps the units this process works on to their epochs. A lease in this
    hub's name that this process does not run is a previous incarnation's (a restart):
    it is claimed afresh, which ends that term, rather than renewed.
    """
    kept = [
        unit
        for unit, want in wanted.items()
        if want in (None, me)
        and book.lease(unit).owner == me
        and running.get(unit) == book.lease(unit).epoch
    ]
    renewing = due_for_renewal(kept, last_renewed, now=now, renew_every=renew_every)
    moves: list[LeaseIntent] = []
    for unit, want in wanted.items():
        lease = book.lease(unit)
        if lease.owner == me and running.get(unit) != lease.epoch:
            if want == me:
                moves.append(LeaseIntent(Intent.CLAIM, unit, lease.epoch + 1))
            elif want is not None:
                moves.append(LeaseIntent(Intent.RELEASE, unit, lease.epoch, handing_to=want))
        elif lease.owner == me:
            if want is not None and want != me:
                moves.append(LeaseIntent(Intent.RELEASE, unit, lease.epoch, handing_to=want))
            elif unit in renewing:
                moves.append(LeaseIntent(Intent.RENEW, unit, lease.epoch))
        elif want == me and book.owner_at(unit, now) is None:
            moves.append(LeaseIntent(Intent.CLAIM, unit, lease.epoch + 1))
    return moves


def due_for_renewal(
    held: Iterable[str],
    last_renewed: Mapping[str, datetime],
    *,
    now: datetime,
    renew_every: timedelta,
) -> frozenset[str]:
    """The held units to renew at ``now``: every one of them once any is due.

    A hub's renewals then leave together, one record batch on the lease journal a round
    instead of one per unit: Tansu's cost for every fetch that returns records grows with
    the batches in the partition, and every hub and gateway tails this one.
    """
    held = frozenset(held)
    never = datetime.min.replace(tzinfo=now.tzinfo)
    if any(now - last_renewed.get(unit, never) >= renew_every for unit in held):
        return held
    return frozenset()


class ClaimReason(StrEnum):
    FIRST = "first-claim"  # nobody ever owned it
    DUTY_HANDOVER = "duty-handover"  # intake passed on at a shift boundary
    FAILOVER = "failover"  # the owner went silent and its lease expired
    FAILBACK = "failback"  # a stand-in released it to its natural owner
    REASSIGNED = "reassigned"  # released for another reason (e.g. a stand-in's stand-in)


def claim_reason(
    unit: str,
    *,
    me: str,
    book: LeaseBook,
    topics: TopicCatalog,
    roster: DutyRoster,
    now: datetime,
) -> ClaimReason:
    """Why this hub is claiming ``unit`` now, judged from the book before the claim."""
    lease = book.lease(unit)
    if lease.epoch == 0:
        return ClaimReason.FIRST
    if lease.owner is not None:  # still named owner, so its lease ran out: it went silent
        return ClaimReason.FAILOVER
    previous = lease.terms[-1].owner if lease.terms else None
    natural = natural_owner(unit, topics=topics, roster=roster, now=now)
    if natural == me and previous is not None:
        previous_natural = (
            natural_owner(unit, topics=topics, roster=roster, now=lease.terms[-1].claimed_at)
            if unit == INTAKE
            else natural
        )
        return ClaimReason.FAILBACK if previous != previous_natural else ClaimReason.DUTY_HANDOVER
    return ClaimReason.REASSIGNED
