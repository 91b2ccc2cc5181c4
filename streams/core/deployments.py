"""Deployments: one state machine per response team, and the list of revoked teams.

Theory of operation
-------------------
A ``Deployment`` (``schemas.teams``) is immutable; each event below is a pure function
that checks the move against ``TRANSITIONS`` and returns the next deployment, with one
``JournalEntry`` appended, or raises ``IllegalTransition`` saying which events the
current state allows::

    receive_request  -> requested
    decide           requested -> approved | declined   (approval fixes the arrival window)
    dispatch         approved  -> en_route              (draws the simulated arrival time)
    arrive           en_route  -> deployed
    close            approved | en_route | deployed -> closed
    convert_to_irt   an active IMEST becomes an IRT: same team id and keys, new kind
    accept_report    a deployed team's report; DVI phases must be completed in order

Arrival: teams deploy "within 12-24 hours". ``arrival_time(approved_at, fraction, scale)``
maps a random ``fraction`` in [0, 1] (the caller draws it) onto that window after the
approval, divided by ``scale`` as the handling clocks' objectives are: at scale 3600 a team
arrives 12 to 24 *seconds* after approval. The shell polls ``due_arrivals(now)`` and calls
``arrive`` for each.

DVI: a disaster team's report names its phase (``DVI_PHASES``: scene examination,
post-mortem, ante-mortem, reconciliation). A phase is complete once a report for it says
``phase_complete``; a report for a phase whose predecessors are not all complete is
refused with ``DviPhaseOutOfOrder``. Reports for a completed phase (amendments) are
accepted.

Revocation: closing a deployment ends the team's right to new traffic. ``TeamRoster``
remembers when each team closed; ``is_revoked(team, at)`` is true from ``closed_at`` on,
and ``check_recipients`` raises ``RevokedRecipient`` (reason ``recipient-revoked``) for
the hub to dead-letter. The team's public keys stay in the directory, so traffic sent
before the close can still be verified and read back.

Worked example (scale 1): approved at 06:00, ``dispatch`` with fraction 0.5 expects the
team at 00:00 the next day (18 h after approval); ``arrive`` then ``accept_report`` of a
post-mortem report raises ``DviPhaseOutOfOrder`` until a scene-examination report with
``phase_complete`` has been accepted; ``close`` at 30 days revokes the team from then on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta

from schemas.errors import RevokedRecipient
from schemas.header import format_timestamp
from schemas.participants import ParticipantKind, kind_of
from schemas.registry import MemberRegistry
from schemas.teams import (
    DVI_PHASES,
    Deployment,
    DeploymentState,
    JournalEntry,
    JournalEvent,
    TeamDecision,
    TeamKind,
    TeamReport,
    TeamRequest,
)
from streams.core.clocks import InvalidClockScale, as_utc

__all__ = [
    "ARRIVAL_EARLIEST",
    "ARRIVAL_LATEST",
    "TRANSITIONS",
    "DeploymentError",
    "DviPhaseOutOfOrder",
    "IllegalTransition",
    "InvalidArrivalDraw",
    "ReportRefused",
    "TeamRoster",
    "accept_report",
    "arrival_time",
    "arrival_window",
    "arrive",
    "close",
    "convert_to_irt",
    "decide",
    "dispatch",
    "due_arrivals",
    "receive_request",
]

ARRIVAL_EARLIEST = timedelta(hours=12)
ARRIVAL_LATEST = timedelta(hours=24)

_S = DeploymentState
TRANSITIONS: dict[DeploymentState, frozenset[DeploymentState]] = {
    _S.REQUESTED: frozenset({_S.APPROVED, _S.DECLINED}),
    _S.APPROVED: frozenset({_S.EN_ROUTE, _S.CLOSED}),
    _S.EN_ROUTE: frozenset({_S.DEPLOYED, _S.CLOSED}),
    _S.DEPLOYED: frozenset({_S.CLOSED}),
    _S.CLOSED: frozenset(),
    _S.DECLINED: frozenset(),
}


class DeploymentError(ValueError):
    """An event that does not fit the deployment's state; the message says what would."""


class IllegalTransition(DeploymentError):
    """The event needs a state the deployment is not in."""


class ReportRefused(DeploymentError):
    """A team report the deployment cannot take (wrong team, not deployed, phase missing)."""


class DviPhaseOutOfOrder(ReportRefused):
    """A DVI report for a phase whose earlier phases are not all complete."""


class InvalidArrivalDraw(ValueError):
    """The random fraction must be a finite number in [0, 1]: the caller's bug."""


def _name(d: Deployment) -> str:
    return d.team or f"request {d.request_id}"


def _require(d: Deployment, to: DeploymentState) -> None:
    if to not in TRANSITIONS[d.state]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[d.state])) or "nothing"
        raise IllegalTransition(
            f"{_name(d)} is {d.state.value}; it cannot become {to.value} "
            f"(from {d.state.value} it can become: {allowed})"
        )


def _move(
    d: Deployment,
    to: DeploymentState,
    event: JournalEvent,
    at: datetime,
    note: str = "",
    **changes: object,
) -> Deployment:
    _require(d, to)
    detail = f"{d.state.value} -> {to.value}" + (f": {note}" if note else "")
    return _record(d, event, at, detail, state=to, **changes)


def _record(
    d: Deployment, event: JournalEvent, at: datetime, detail: str, **changes: object
) -> Deployment:
    at = as_utc(at, "at")
    if d.journal and at < d.journal[-1].at:
        raise DeploymentError(
            f"{_name(d)}: {event.value} at {format_timestamp(at)} is earlier than its last "
            f"journal entry ({format_timestamp(d.journal[-1].at)}); pass events in time order"
        )
    entry = JournalEntry(at=at, event=event, detail=detail[:256])
    fields = {**dict(d), **changes, "journal": (*d.journal, entry)}
    return Deployment(**fields)


def _check_scale(scale: float) -> None:
    if not (math.isfinite(scale) and scale > 0):
        raise InvalidClockScale(f"clock scale must be finite and above 0, got {scale!r}")


def arrival_window(approved_at: datetime, scale: float = 1.0) -> tuple[datetime, datetime]:
    """The earliest and latest arrival: 12 and 24 hours after approval, divided by ``scale``."""
    _check_scale(scale)
    start = as_utc(approved_at, "approved_at")
    return start + ARRIVAL_EARLIEST / scale, start + ARRIVAL_LATEST / scale


def arrival_time(approved_at: datetime, rng_fraction: float, scale: float = 1.0) -> datetime:
    """The simulated arrival: ``rng_fraction`` of the way through the arrival window."""
    return _draw(*arrival_window(approved_at, scale), rng_fraction)


def _draw(earliest: datetime, latest: datetime, fraction: float) -> datetime:
    if not (math.isfinite(fraction) and 0.0 <= fraction <= 1.0):
        raise InvalidArrivalDraw(f"rng_fraction must be in [0, 1], got {fraction!r}")
    return min(latest, earliest + (latest - earliest) * fraction)


def receive_request(
    request: TeamRequest, *, request_id: str, at: datetime, registry: MemberRegistry
) -> Deployment:
    """A new deployment in ``requested`` for the team-request message ``request_id``."""
    at = as_utc(at, "at")
    entry = JournalEntry(at=at, event=JournalEvent.REQUESTED, detail=f"by {request.requester}")
    return Deployment(
        request_id=request_id,
        request=request,
        kind=request.kind,
        region=request.region(registry),
        state=_S.REQUESTED,
        requested_at=at,
        incident=request.incident,
        journal=(entry,),
    )


def decide(
    d: Deployment, decision: TeamDecision, *, at: datetime, scale: float = 1.0
) -> Deployment:
    """Apply the CCC's decision; an approval names the team and fixes the arrival window."""
    if not decision.approved:
        return _move(d, _S.DECLINED, JournalEvent.DECLINED, at, declined=decision.reasons)
    earliest, latest = arrival_window(at, scale)
    return _move(
        d,
        _S.APPROVED,
        JournalEvent.APPROVED,
        at,
        team=decision.team,
        approved_at=as_utc(at, "at"),
        arrival_earliest=earliest,
        arrival_latest=latest,
    )


def dispatch(d: Deployment, *, at: datetime, rng_fraction: float) -> Deployment:
    """The team sets off; its arrival is drawn inside the window fixed at approval."""
    _require(d, _S.EN_ROUTE)
    if d.arrival_earliest is None or d.arrival_latest is None:
        raise DeploymentError(f"{_name(d)} has no arrival window; approve it with decide()")
    expected = _draw(d.arrival_earliest, d.arrival_latest, rng_fraction)
    return _move(d, _S.EN_ROUTE, JournalEvent.DISPATCHED, at, expected_arrival=expected)


def due_arrivals(deployments: Iterable[Deployment], now: datetime) -> tuple[Deployment, ...]:
    """The teams en route whose expected arrival is at or before ``now``."""
    now = as_utc(now)
    return tuple(
        d
        for d in deployments
        if d.state is _S.EN_ROUTE and d.expected_arrival is not None and d.expected_arrival <= now
    )


def arrive(d: Deployment, *, at: datetime) -> Deployment:
    """The team is on the ground and starts receiving real-time updates."""
    return _move(d, _S.DEPLOYED, JournalEvent.ARRIVED, at, arrived_at=as_utc(at, "at"))


def close(d: Deployment, *, at: datetime, reason: str) -> Deployment:
    """The deployment ends (or is called off); from ``at`` the team takes no new traffic."""
    return _move(d, _S.CLOSED, JournalEvent.CLOSED, at, reason, closed_at=as_utc(at, "at"))


def convert_to_irt(d: Deployment, *, kind: TeamKind, crisis: str, at: datetime) -> Deployment:
    """A crisis at the event: the IMEST works on as an IRT of ``kind``, same team and keys."""
    if d.kind is not TeamKind.IMEST or not kind.is_irt:
        raise IllegalTransition(
            f"{_name(d)} is a {d.kind.value} team; only an IMEST converts, and only to "
            "irt-crime or irt-dvi"
        )
    if not d.active:
        raise IllegalTransition(
            f"{_name(d)} is {d.state.value}; only an approved, en-route or deployed IMEST "
            "converts: ask for a new IRT instead"
        )
    detail = f"{d.kind.value} -> {kind.value}: {crisis}"
    return _record(d, JournalEvent.CONVERTED, at, detail, kind=kind, incident=crisis)


def accept_report(d: Deployment, report: TeamReport, *, at: datetime) -> Deployment:
    """Take a deployed team's report; record a DVI phase completion; refuse what is out of order."""
    if report.team != d.team:
        raise ReportRefused(f"report from {report.team} sent to the deployment of {_name(d)}")
    if d.state is not _S.DEPLOYED:
        raise ReportRefused(
            f"{_name(d)} is {d.state.value}; reports are taken from deployed teams only"
        )
    if d.kind is not TeamKind.IRT_DVI:
        if report.phase is not None:
            raise ReportRefused(
                f"{_name(d)} is a {d.kind.value} team; only a DVI team's report names a phase"
            )
        return d
    if report.phase is None:
        raise ReportRefused(
            f"{_name(d)} is a DVI team: name the DVI phase the report is about "
            f"({', '.join(p.value for p in DVI_PHASES)})"
        )
    missing = [p for p in DVI_PHASES[: report.phase.number - 1] if p not in d.dvi_complete]
    if missing:
        raise DviPhaseOutOfOrder(
            f"{_name(d)}: a report for phase {report.phase.number} ({report.phase.value}) "
            f"comes after phase {missing[0].number} ({missing[0].value}) is complete; send "
            f"a {missing[0].value} report with phase_complete=true first"
        )
    if not report.phase_complete or report.phase in d.dvi_complete:
        return d
    detail = f"phase {report.phase.number} {report.phase.value} complete"
    return _record(
        d, JournalEvent.PHASE_COMPLETED, at, detail, dvi_complete=(*d.dvi_complete, report.phase)
    )


class TeamRoster:
    """Closed teams and when they closed: a team is revoked for new traffic from then on."""

    __slots__ = ("_closed",)

    def __init__(self) -> None:
        self._closed: dict[str, tuple[datetime, str]] = {}

    @classmethod
    def from_deployments(cls, deployments: Iterable[Deployment]) -> TeamRoster:
        roster = cls()
        for d in deployments:
            if d.state is _S.CLOSED and d.team is not None and d.closed_at is not None:
                roster.revoke(d.team, at=d.closed_at, host=d.host)
        return roster

    def revoke(self, team: str, *, at: datetime, host: str) -> None:
        """Revoke ``team`` from ``at``; an earlier revocation of the same team stands."""
        if kind_of(team) is not ParticipantKind.TEAM:
            raise ValueError(f"{team!r} is not a team id; only teams are revoked")
        at = as_utc(at, "at")
        known = self._closed.get(team)
        if known is None or at < known[0]:
            self._closed[team] = (at, host)

    def is_revoked(self, team: str, at: datetime) -> bool:
        """True when ``team`` closed at or before ``at`` (pass the hub's intake time)."""
        known = self._closed.get(team)
        return known is not None and known[0] <= as_utc(at, "at")

    def check_recipients(self, recipients: Iterable[str], at: datetime) -> None:
        """Raise ``RevokedRecipient`` for the first recipient that is a revoked team."""
        for recipient in recipients:
            if self.is_revoked(recipient, at):
                closed_at, host = self._closed[recipient]
                raise RevokedRecipient(recipient, closed_at=format_timestamp(closed_at), host=host)

    def __len__(self) -> int:
        return len(self._closed)
