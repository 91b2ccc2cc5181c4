"""The CCC's team desk: team requests, reports, conversions and closings, and team arrivals.

Theory of operation
-------------------
The desk is the shell around ``streams.core.team_approval`` and ``streams.core.deployments``. It
handles four message types addressed to ``ccc``:

* ``team-request``: the request's ``requester`` must be the sender. The rules decide
  (``decide_team_request`` over every deployment the registry knows); the decision goes
  back sealed from the hub (to the host NCB when a hub filed the request). An approval
  creates the team: ``issue_identity(team)`` makes and stores its keys, the public half
  joins the hub's directory at once (the effect ``AdmitTeam``) and is journaled in
  ``team-approved`` for every other hub and reader; its inbox topic waits in the shell's
  ``take_new_inboxes()`` for the runtime to create before the decision is produced; the
  team is dispatched at once, its arrival drawn inside the 12-24 h window (divided by
  ``I247_CLOCK_SCALE``).
* ``team-report``: from the team itself; ``accept_report`` decides, a refusal (DVI phase
  out of order, team not deployed) goes back to the team with the reason.
* ``team-conversion`` (IMEST -> IRT) and ``deployment-closed``: from the host NCB (or,
  through ``convert`` and ``close_deployment``, the CCC itself); announced to the host
  NCB and the team. A closed team is revoked from the closing time: intake refuses new
  traffic for it (``TeamRegistry.roster``).

``tick`` moves teams on time, on the hub holding intake only (``acting``) so the three
hubs do not all journal the same arrival: dispatches an approved team left undispatched,
lands teams whose arrival is due, closes deployments at their ``ends_at``.

The desk answers with effects (``streams.desks.effects``): ``Send`` for what goes to the
host NCB or the team, ``Journal`` for every step, journaled on ``i247.control`` as a typed
team event (``schemas.journal.TeamSnapshotEvent`` and the others) carrying the
deployment's snapshot, and recorded in the registry at once; other hubs fold
the same events, so the registry survives a change of hub.

Worked example (scale 43200): FRA asks for a DVI team at Nice now; the desk journals
``team-requested``, ``team-approved`` (with the identity of ``team:dvi-fra-nice-<date>``)
and ``team-dispatched``, and seals ``team-decision`` to FRA. One or two seconds later a
tick journals ``team-arrived``. A post-mortem report before a completed scene
examination is refused back to the team and journaled as ``team-refused``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from schemas.bodies import (
    Body,
    DeploymentClosedBody,
    MessageBody,
    TeamConversionBody,
    TeamDecisionBody,
    TeamReportBody,
    TeamRequestBody,
)
from schemas.header import MessageType, Precedence, RoutingHeader
from schemas.journal import (
    TEAM_SNAPSHOT_EVENTS,
    TeamDeclined,
    TeamRefused,
    TeamReportAccepted,
    TeamRequested,
)
from schemas.keys import PublicIdentity, generate_identity, save_identity
from schemas.participants import ParticipantKind, kind_of
from schemas.registry import MemberRegistry, default_registry
from schemas.sealing import OpenedMessage
from schemas.team_journal import SNAPSHOT_EVENT
from schemas.teams import Deployment, DeploymentState, TeamKind, TeamReport, TeamRequest
from streams.core.deployments import (
    DeploymentError,
    accept_report,
    arrive,
    close,
    convert_to_irt,
    decide,
    dispatch,
    due_arrivals,
    receive_request,
)
from streams.core.team_approval import decide_team_request
from streams.desks.context import DeskContext
from streams.desks.effects import AdmitTeam, Effect, Journal, Send
from streams.desks.team_registry import TeamRegistry

__all__ = ["TeamDesk", "keyring_issuer"]

log = structlog.get_logger("i247.teams")

IssueIdentity = Callable[[str], PublicIdentity]


def keyring_issuer(keys_dir: Path) -> IssueIdentity:
    """Make a team's keys and store the private half under ``keys_dir/private`` (0600)."""

    def issue(team: str) -> PublicIdentity:
        identity = generate_identity(team)
        save_identity(keys_dir, identity)
        return identity.public()

    return issue


def _fraction(random_bytes: Callable[[int], bytes]) -> float:
    return int.from_bytes(random_bytes(8), "big") / 2**64


@dataclass
class TeamDesk:
    """Requests, reports, conversions and closings of response teams, for one hub."""

    registry: TeamRegistry
    issue_identity: IssueIdentity
    acting: Callable[[], bool] = lambda: True  # does this hub act on time (holds intake)?
    members: MemberRegistry = field(default_factory=default_registry)
    handles: frozenset[MessageType] = frozenset(
        {
            MessageType.TEAM_REQUEST,
            MessageType.TEAM_REPORT,
            MessageType.TEAM_CONVERSION,
            MessageType.DEPLOYMENT_CLOSED,
        }
    )

    # --- the desk (streams.desks.context.EffectDesk) ----------------------------------

    def handle(self, ctx: DeskContext, opened: OpenedMessage) -> list[Effect]:
        header, body = opened.header, opened.body
        if isinstance(body, TeamRequestBody):
            return self._request(ctx, header, body.request)
        if isinstance(body, TeamReportBody):
            return self._report(ctx, header, body.report)
        if isinstance(body, TeamConversionBody):
            return self._convert(ctx, header.sender, body, header)
        if isinstance(body, DeploymentClosedBody):
            return self._close(ctx, header.sender, body.team, body.reason, header)
        return []

    def tick(self, ctx: DeskContext) -> list[Effect]:
        if not self.acting():
            return []
        now = ctx.now
        out: list[Effect] = []
        for d in self.registry.deployments():
            if d.state is DeploymentState.APPROVED:
                drawn = _fraction(ctx.random_bytes)
                out += self._step(ctx, dispatch(d, at=_at(d, now), rng_fraction=drawn))
        for d in due_arrivals(self.registry.deployments(), now):
            out += self._step(ctx, arrive(d, at=_at(d, now)))
            log.info("team-arrived", team=d.team, request_id=d.request_id)
        for d in self.registry.deployments():
            if d.active and d.team is not None and d.request.ends_at <= now:
                out += self._closing(ctx, d, "the deployment reached its end date")
        return out

    # --- the CCC's own moves ------------------------------------------------------

    def convert(self, ctx: DeskContext, team: str, to_kind: TeamKind, crisis: str) -> list[Effect]:
        """The CCC converts the IMEST ``team`` to an IRT (a crisis at the event).

        Raises ``DeploymentError`` saying why when the team cannot convert.
        """
        body = TeamConversionBody.model_validate(
            {"team": team, "to_kind": to_kind, "crisis": crisis}
        )
        return self._convert(ctx, ctx.hub, body, None)

    def close_deployment(self, ctx: DeskContext, team: str, reason: str) -> list[Effect]:
        """The CCC closes the deployment of ``team``; its keys take no new traffic from now.

        Raises ``DeploymentError`` saying why when there is no active deployment to close.
        """
        return self._close(ctx, ctx.hub, team, reason, None)

    # --- handlers -----------------------------------------------------------------

    def _request(
        self, ctx: DeskContext, header: RoutingHeader, request: TeamRequest
    ) -> list[Effect]:
        now = ctx.now
        request_id = header.message_id
        if request.requester != header.sender:
            return self._refuse(
                ctx,
                header,
                f"the request names {request.requester!r} as requester but was sent by "
                f"{header.sender!r}; send it as yourself",
                request_id=request_id,
            )
        if self.registry.get(request_id) is not None:
            log.info("team-request-seen-before", request_id=request_id)
            return []
        decision = decide_team_request(
            request, deployments=self.registry.deployments(), now=now, registry=self.members
        )
        recipient = request.requester
        if kind_of(recipient) is not ParticipantKind.NCB:  # a hub filed it for the host
            recipient = request.host
        out: list[Effect] = []
        if request.host not in self.members:  # no region, so no deployment: journal the facts
            reasons = tuple(r.value for r in decision.reasons)
            facts = {"hub": ctx.hub, "time": now, "request_id": request_id}
            requested = TeamRequested(**facts, requester=request.requester)
            declined = TeamDeclined(**facts, requester=request.requester, reasons=reasons)
            out += [Journal(requested, request_id), Journal(declined, request_id)]
        else:
            d = receive_request(request, request_id=request_id, at=now, registry=self.members)
            out += self._step(ctx, d)
            d = decide(d, decision, at=now, scale=ctx.calendar)
            if decision.approved and d.team is not None:
                out += self._create_team(ctx, d)
            else:
                out += self._step(ctx, d)
        body = TeamDecisionBody(request_id=request_id, decision=decision)
        if recipient in ctx.directory:
            urgent = request.kind.is_irt and decision.approved
            out += self._send(ctx, body, [recipient], request_id, urgent=urgent)
        log.info(
            "team-decided",
            request_id=request_id,
            approved=decision.approved,
            team=decision.team,
            reasons=[r.value for r in decision.reasons],
        )
        return out

    def _create_team(self, ctx: DeskContext, d: Deployment) -> list[Effect]:
        assert d.team is not None
        public = self.issue_identity(d.team)
        self.registry.learn(public)
        out: list[Effect] = [AdmitTeam(public)]
        out += self._step(ctx, d, identity=public.to_json(), inbox=ctx.topics.inbox(d.team))
        drawn = _fraction(ctx.random_bytes)
        return out + self._step(ctx, dispatch(d, at=ctx.now, rng_fraction=drawn))

    def _report(self, ctx: DeskContext, header: RoutingHeader, report: TeamReport) -> list[Effect]:
        d = self.registry.of_team(header.sender)
        if d is None or report.team != header.sender:
            return self._refuse(
                ctx,
                header,
                f"{header.sender!r} reports for {report.team!r}: a team reports as itself",
            )
        try:
            after = accept_report(d, report, at=_at(d, ctx.now))
        except DeploymentError as refusal:
            return self._refuse(ctx, header, str(refusal), request_id=d.request_id)
        accepted = TeamReportAccepted(
            hub=ctx.hub,
            time=ctx.now,
            request_id=d.request_id,
            team=d.team,
            message_id=header.message_id,
            phase=report.phase.value if report.phase else None,
            phase_complete=report.phase_complete,
            counts=dict(report.counts),
        )
        out: list[Effect] = [Journal(accepted, d.request_id)]
        if after is not d:
            out += self._step(ctx, after)
        return out

    def _convert(
        self,
        ctx: DeskContext,
        sender: str,
        body: TeamConversionBody,
        header: RoutingHeader | None,
    ) -> list[Effect]:
        d = self._hosted(sender, body.team)
        if d is None:
            return self._refusal_for(ctx, header, sender, body.team, "convert")
        try:
            after = convert_to_irt(d, kind=body.to_kind, crisis=body.crisis, at=_at(d, ctx.now))
        except DeploymentError as refusal:
            return self._refuse_or_log(ctx, header, str(refusal), d.request_id)
        notice = TeamConversionBody(team=body.team, to_kind=body.to_kind, crisis=body.crisis)
        correlation = header.message_id if header else d.request_id
        return self._step(ctx, after, by=sender) + self._send(
            ctx, notice, [d.host, body.team], correlation, urgent=True
        )

    def _close(
        self,
        ctx: DeskContext,
        sender: str,
        team: str,
        reason: str,
        header: RoutingHeader | None,
    ) -> list[Effect]:
        d = self._hosted(sender, team)
        if d is None:
            return self._refusal_for(ctx, header, sender, team, "close")
        if not d.active:
            return self._refuse_or_log(
                ctx,
                header,
                f"{team} is {d.state.value}; only an active deployment closes",
                d.request_id,
            )
        return self._closing(ctx, d, reason, by=sender)

    def _closing(
        self, ctx: DeskContext, d: Deployment, reason: str, by: str | None = None
    ) -> list[Effect]:
        assert d.team is not None
        after = close(d, at=_at(d, ctx.now), reason=reason[:200])
        assert after.closed_at is not None
        notice = DeploymentClosedBody(team=d.team, closed_at=after.closed_at, reason=reason[:256])
        log.info("team-closed", team=d.team, request_id=d.request_id, reason=reason)
        return self._step(ctx, after, by=by or ctx.hub) + self._send(
            ctx, notice, [d.host, d.team], d.request_id
        )

    # --- helpers ------------------------------------------------------------------

    def _hosted(self, sender: str, team: str) -> Deployment | None:
        """The deployment of ``team`` if ``sender`` may act on it (its host NCB or a hub)."""
        d = self.registry.of_team(team)
        if d is None:
            return None
        if kind_of(sender) is ParticipantKind.HUB or sender == d.host:
            return d
        return None

    def _refusal_for(
        self, ctx: DeskContext, header: RoutingHeader | None, sender: str, team: str, what: str
    ) -> list[Effect]:
        d = self.registry.of_team(team)
        detail = (
            f"no deployment of {team!r} is known; check the team id"
            if d is None
            else f"only {d.host}'s NCB (the host) or the CCC may {what} {team}; {sender} may not"
        )
        return self._refuse_or_log(ctx, header, detail, d.request_id if d else None)

    def _refuse_or_log(
        self, ctx: DeskContext, header: RoutingHeader | None, detail: str, request_id: str | None
    ) -> list[Effect]:
        if header is None:  # the CCC's own move: the operator reads the log
            log.warning("team-move-refused", detail=detail, request_id=request_id)
            raise DeploymentError(detail)
        return self._refuse(ctx, header, detail, request_id=request_id)

    def _refuse(
        self,
        ctx: DeskContext,
        header: RoutingHeader,
        detail: str,
        *,
        request_id: str | None = None,
    ) -> list[Effect]:
        """Tell the sender why its message was not taken, and journal it."""
        kind = header.message_type.value
        refused = TeamRefused(
            hub=ctx.hub,
            time=ctx.now,
            request_id=request_id,
            message_id=header.message_id,
            sender=header.sender,
            type=kind,
            reason=detail,
        )
        log.info(
            "team-refused", **refused.model_dump(mode="json", exclude={"event", "hub", "time"})
        )
        out: list[Effect] = [Journal(refused, request_id or header.message_id)]
        if header.sender in ctx.directory and kind_of(header.sender) in (
            ParticipantKind.NCB,
            ParticipantKind.TEAM,
        ):
            body = MessageBody(subject=f"{kind} refused", text=detail)
            out += self._send(ctx, body, [header.sender], header.message_id)
        return out

    def _step(self, ctx: DeskContext, d: Deployment, **extra: Any) -> list[Effect]:
        """Record ``d`` and journal its last step with its snapshot."""
        self.registry.record(d)
        event = TEAM_SNAPSHOT_EVENTS[SNAPSHOT_EVENT[d.journal[-1].event].value](
            hub=ctx.hub,
            time=ctx.now,
            request_id=d.request_id,
            team=d.team,
            state=d.state.value,
            kind=d.kind.value,
            host=d.host,
            deployment=d,
            **extra,
        )
        return [Journal(event, d.request_id)]

    def _send(
        self,
        ctx: DeskContext,
        body: Body,
        recipients: list[str],
        correlation_id: str,
        *,
        urgent: bool = False,
    ) -> list[Effect]:
        known = tuple(r for r in dict.fromkeys(recipients) if r in ctx.directory)
        if not known:
            return []
        precedence = Precedence.IMMEDIATE if urgent else Precedence.ROUTINE
        return [Send(known, body, precedence, correlation_id=correlation_id)]


def _at(d: Deployment, now: datetime) -> datetime:
    """``now``, or the deployment's last journal time if another hub's clock was ahead."""
    return max(now, d.journal[-1].at) if d.journal else now
