"""Team approval: the CCC approves or declines a request for a response team, by written rules.

Theory of operation
-------------------
``RULES`` is the whole policy, as data (docs/team-approval.md is the operators' copy,
checked row for row by the tests). Each rule says what a request must satisfy, for which
team kinds, and what the requester should change if it does not. ``decide_team_request``
checks **every** rule and declines with all the reasons that apply, so one answer tells
the NCB everything to fix; a request that passes them all is approved with a fresh team
id (``schemas.teams.new_team_id``).

The decision is a pure function of the request, the deployments the CCC knows, the time
and the member registry. ``deployments`` must be every deployment ever journaled, closed
ones included: the active ones (approved, en route, deployed) count for the duplicate and
capacity rules, and all of them reserve their team ids, which are never reused.

The figures (``START_TOLERANCE``, ``MAX_LENGTH``, ``HORIZON``, ``IMEST_LEAD``,
``MAX_CONCURRENT``) are design choices, explained in the document; only the 12 to 24 hour
deployment time comes from the seeds, and ``IMEST_LEAD`` follows from it.

Worked example, at 2026-07-01 12:00 UTC, no deployments:

* FRA asks for an IMEST at Paris for "Tour de France finale" from 2026-07-26 to
  2026-07-27: every rule passes; approved as ``team:imest-fra-paris-20260726``.
* DEU asks for the same at Paris: declined ``not-host-ncb`` (only FRA's NCB, or a CCC hub
  on its behalf, may ask for a team in France).
* FRA asks for an IMEST starting 2026-07-02 06:00, 18 hours ahead, with no event named:
  declined ``event-missing`` and ``imest-too-late``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.participants import ParticipantKind, kind_of
from schemas.registry import MemberRegistry
from schemas.teams import (
    DeclineReason,
    Deployment,
    TeamDecision,
    TeamKind,
    TeamRequest,
    new_team_id,
)
from streams.core.clocks import as_utc

__all__ = [
    "HORIZON",
    "IMEST_LEAD",
    "MAX_CONCURRENT",
    "MAX_LENGTH",
    "RULES",
    "START_TOLERANCE",
    "ApprovalRule",
    "Facts",
    "decide_team_request",
    "failed_rules",
]

START_TOLERANCE = timedelta(hours=1)  # a start this far in the past is still "now"
MAX_LENGTH = timedelta(days=90)  # longest deployment granted at once
HORIZON = timedelta(days=365)  # furthest ahead a deployment may start
IMEST_LEAD = timedelta(hours=24)  # an IMEST is asked for at least this long before the event
MAX_CONCURRENT = 10  # active deployments the Operations and Field Deployment unit can run


@dataclass(frozen=True, slots=True)
class Facts:
    """What a rule may look at: the request, the time, the active deployments, the members."""

    request: TeamRequest
    now: datetime
    active: tuple[Deployment, ...]
    registry: MemberRegistry


@dataclass(frozen=True, slots=True)
class ApprovalRule:
    """One row of the table: the request passes when ``holds(facts)`` is true."""

    id: str
    reason: DeclineReason
    title: str  # what the rule demands, as the document writes it
    kinds: frozenset[TeamKind]
    advice: str  # what the requester should change, quoted in the decline
    holds: Callable[[Facts], bool]


def _host_is_member(f: Facts) -> bool:
    return f.request.place.country in f.registry


def _requester_is_host(f: Facts) -> bool:
    requester = f.request.requester
    role = kind_of(requester)
    return role is ParticipantKind.HUB or (
        role is ParticipantKind.NCB and requester == f.request.place.country
    )


def _same_target(request: TeamRequest, active: Deployment) -> bool:
    """Same kind and host and, for an IMEST, the same event; for an IRT, the same place."""
    if request.kind is not active.kind or request.place.country != active.host:
        return False
    if request.kind is TeamKind.IMEST:
        return (request.event or "").casefold() == (active.event or "").casefold()
    return request.place.name.casefold() == active.place.name.casefold()


_ALL = frozenset(TeamKind)
_IRT = frozenset({TeamKind.IRT_CRIME, TeamKind.IRT_DVI})
_IMEST = frozenset({TeamKind.IMEST})
_R = DeclineReason

RULES: tuple[ApprovalRule, ...] = (
    ApprovalRule(
        "A1", _R.UNKNOWN_COUNTRY, "the host country is an INTERPOL member", _ALL,
        "give the host country as a member's ISO alpha-3 code",
        _host_is_member,
    ),
    ApprovalRule(
        "A2", _R.NOT_HOST_NCB, "the requester is the host country's NCB or a CCC hub", _ALL,
        "have the host country's NCB send the request, or ask the CCC to file it for them",
        _requester_is_host,
    ),
    ApprovalRule(
        "A3", _R.STARTS_IN_PAST, "the start is no more than START_TOLERANCE in the past", _ALL,
        "give the time the team is wanted on the ground, not when the incident happened",
        lambda f: f.request.starts_at >= f.now - START_TOLERANCE,
    ),
    ApprovalRule(
        "A4", _R.ENDS_BEFORE_START, "the end is after the start", _ALL,
        "give an end after the start",
        lambda f: f.request.ends_at > f.request.starts_at,
    ),
    ApprovalRule(
        "A5", _R.TOO_LONG, "the deployment lasts at most MAX_LENGTH", _ALL,
        "ask for at most 90 days, and ask again to extend",
        lambda f: f.request.ends_at - f.request.starts_at <= MAX_LENGTH,
    ),
    ApprovalRule(
        "A6", _R.TOO_FAR_AHEAD, "the start is at most HORIZON ahead", _ALL,
        "ask again less than a year before the start",
        lambda f: f.request.starts_at <= f.now + HORIZON,
    ),
    ApprovalRule(
        "A7", _R.EVENT_MISSING, "an IMEST names its major event", _IMEST,
        "name the major event (the games, summit or championship)",
        lambda f: f.request.event is not None,
    ),
    ApprovalRule(
        "A8", _R.IMEST_TOO_LATE, "an IMEST is asked for at least IMEST_LEAD ahead", _IMEST,
        "ask for an IMEST at least 24 hours before the event; in a crisis ask for an IRT",
        lambda f: f.request.starts_at >= f.now + IMEST_LEAD,
    ),
    ApprovalRule(
        "A9", _R.INCIDENT_MISSING, "an IRT describes the incident (for DVI, the disaster)",
        _IRT,
        "describe the incident, or for a disaster team the disaster and its casualties",
        lambda f: f.request.incident is not None,
    ),
    ApprovalRule(
        "A10", _R.DUPLICATE, "no active team of the same kind has the same event or place",
        _ALL,
        "address the team already deployed there; ask for a different kind if you need one",
        lambda f: not any(_same_target(f.request, d) for d in f.active),
    ),
    ApprovalRule(
        "A11", _R.CAPACITY, "fewer than MAX_CONCURRENT deployments are active", _ALL,
        "ask again when a deployment closes, or call the CCC to weigh priorities",
        lambda f: len(f.active) < MAX_CONCURRENT,
    ),
)  # fmt: skip


def _check_table(rules: tuple[ApprovalRule, ...]) -> None:
    reasons = sorted(rule.reason for rule in rules)
    if reasons != sorted(DeclineReason) or len({rule.id for rule in rules}) != len(rules):
        raise AssertionError("each decline reason needs exactly one rule, each rule its own id")


_check_table(RULES)


def failed_rules(
    request: TeamRequest,
    *,
    deployments: Iterable[Deployment],
    now: datetime,
    registry: MemberRegistry,
) -> tuple[ApprovalRule, ...]:
    """The rules ``request`` breaks, in table order; empty when it can be approved."""
    facts = Facts(request, as_utc(now), tuple(d for d in deployments if d.active), registry)
    return tuple(r for r in RULES if request.kind in r.kinds and not r.holds(facts))


def decide_team_request(
    request: TeamRequest,
    *,
    deployments: Iterable[Deployment],
    now: datetime,
    registry: MemberRegistry,
) -> TeamDecision:
    """Approve ``request`` with a new team id, or decline it with every reason that applies."""
    known = tuple(deployments)
    failed = failed_rules(request, deployments=known, now=now, registry=registry)
    if failed:
        return TeamDecision(
            approved=False,
            reasons=tuple(rule.reason for rule in failed),
            text="declined: " + "; ".join(f"{r.reason.value}: {r.advice}" for r in failed),
        )
    taken = {d.team for d in known if d.team is not None}
    team = new_team_id(request.kind, request.place, request.starts_at, taken)
    return TeamDecision(
        approved=True,
        team=team,
        text=(
            f"approved: {team} ({request.kind.value}) for {request.place.name}, "
            f"{request.place.country}; it arrives 12 to 24 hours after approval"
        ),
    )
