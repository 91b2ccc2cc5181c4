"""The CCC's team desk: team requests, reports, conversions and closings, and team arrivals.

Theory of operation
-------------------
The desk is the shell around ``streams.team_approval`` and ``streams.deployments``. It
handles four message types addressed to ``ccc``:

* ``team-request``: the request's ``requester`` must be the sender. The rules decide
  (``decide_team_request`` over every deployment the registry knows); the decision goes
  back sealed from the hub (to the host NCB when a hub filed the request). An approval
  creates the team: ``issue_identity(team)`` makes and stores its keys, the public half
  joins the hub's directory at once and is journaled in ``team-approved`` for every other
  hub and reader; its inbox topic waits in ``take_new_inboxes()`` for the runtime to
  create before the decision is produced; the team is dispatched at once, its arrival
  drawn inside the 12-24 h window (divided by ``I247_CLOCK_SCALE``).
* ``team-report``: from the team itself; ``accept_report`` decides, a refusal (DVI phase
  out of order, team not deployed) goes back to the team with the reason.
* ``team-conversion`` (IMEST -> IRT) and ``deployment-closed``: from the host NCB (or,
  through ``convert`` and ``close_deployment``, the CCC itself); announced to the host
  NCB and the team. A closed team is revoked from the closing time: intake refuses new
  traffic for it (``TeamRegistry.roster``).

``tick`` moves teams on time, on the hub holding intake only (``acting``) so the three
hubs do not all journal the same arrival: dispatches an approved team left undispatched,
lands teams whose arrival is due, closes deployments at their ``ends_at``.

Every step is journaled on ``i247.control`` as a ``streams.team_registry.TeamEvent``
carrying the deployment's snapshot, and recorded in the registry at once; other hubs fold
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

from brokers.records import OutboundRecord, ReceivedRecord
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
from schemas.keys import PublicIdentity, generate_identity, save_identity
from schemas.participants import ParticipantKind, kind_of
from schemas.registry import MemberRegistry, default_registry
from schemas.sealing import OpenedMessage
from schemas.team_journal import SNAPSHOT_EVENT, TeamEvent
from schemas.teams import Deployment, DeploymentState, TeamKind, TeamReport, TeamRequest
from streams.ccc_desk import seal_from_hub
from streams.deployments import (
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
from streams.hub_state import HubState, journal_record
from streams.team_approval import decide_team_request
from streams.team_registry import TeamRegistry

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

    state: HubState
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
    _new_inboxes: list[str] = field(default_factory=list)

    # --- the Desk protocol --------------------------------------------------------

    def handle(
        self, opened: OpenedMessage, record: ReceivedRecord, now: datetime
    ) -> list[OutboundRecord]:
        header, body = opened.header, opened.body
        if isinstance(body, TeamRequestBody):
            return self._request(header, body.request, now)
        if isinstance(body, TeamReportBody):
            return self._report(header, body.report, now)
        if isinstance(body, TeamConversionBody):
            return self._convert(header.sender, body, now, header)
        if isinstance(body, DeploymentClosedBody):
            return self._close(header.sender, body.team, body.reason, now, header)
        return []

    def tick(self, now: datetime) -> list[OutboundRecord]:
        if not self.acting():
            return []
        out: list[OutboundRecord] = []
        for d in self.registry.deployments():
            if d.state is DeploymentState.APPROVED:
                out += self._step(dispatch(d, at=_at(d, now), rng_fraction=self._draw()))
        for d in due_arrivals(self.registry.deployments(), now):
            out += self._step(arrive(d, at=_at(d, now)))
            log.info("team-arrived", team=d.team, request_id=d.request_id)
        for d in self.registry.deployments():
            if d.active and d.team is not None and d.request.ends_at <= now:
                out += self._closing(d, "the deployment reached its end date", now)
        return out

    def take_new_inboxes(self) -> list[str]:
        """Inbox topics of teams approved since the last call; the runtime creates them."""
        taken, self._new_inboxes = self._new_inboxes, []
        return taken

    # --- the CCC's own moves ------------------------------------------------------

    def convert(
        self, team: str, to_kind: TeamKind, crisis: str, now: datetime
    ) -> list[OutboundRecord]:
        """The CCC converts the IMEST ``team`` to an IRT (a crisis at the event).

        Raises ``DeploymentError`` saying why when the team cannot convert.
        """
        body = TeamConversionBody.model_validate(
            {"team": team, "to_kind": to_kind, "crisis": crisis}
        )
        return self._convert(self.state.hub, body, now, None)

    def close_deployment(self, team: str, reason: str, now: datetime) -> list[OutboundRecord]:
        """The CCC closes the deployment of ``team``; its keys take no new traffic from now.

        Raises ``DeploymentError`` saying why when there is no active deployment to close.
        """
        return self._close(self.state.hub, team, reason, now, None)

    # --- handlers -----------------------------------------------------------------

    def _request(
        self, header: RoutingHeader, request: TeamRequest, now: datetime
    ) -> list[OutboundRecord]:
        request_id = header.message_id
        if request.requester != header.sender:
            return self._refuse(
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
        out: list[OutboundRecord] = []
        if request.host not in self.members:  # no region, so no deployment: journal the facts
            facts = {"request_id": request_id, "requester": request.requester}
            out.append(self._event(TeamEvent.REQUESTED, request_id, facts))
            reasons = [r.value for r in decision.reasons]
            out.append(self._event(TeamEvent.DECLINED, request_id, {**facts, "reasons": reasons}))
        else:
            d = receive_request(request, request_id=request_id, at=now, registry=self.members)
            out += self._step(d)
            d = decide(d, decision, at=now, scale=self.state.settings.calendar)
            if decision.approved and d.team is not None:
                out += self._create_team(d, now)
            else:
                out += self._step(d)
        body = TeamDecisionBody(request_id=request_id, decision=decision)
        if recipient in self.state.directory:
            urgent = request.kind.is_irt and decision.approved
            out += self._seal(body, [recipient], now, request_id, urgent=urgent)
        log.info(
            "team-decided",
            request_id=request_id,
            approved=decision.approved,
            team=decision.team,
            reasons=[r.value for r in decision.reasons],
        )
        return out

    def _create_team(self, d: Deployment, now: datetime) -> list[OutboundRecord]:
        assert d.team is not None
        public = self.issue_identity(d.team)
        self.registry.learn(public)
        self.state.directory = self.state.directory.with_identities([public])
        inbox = self.state.settings.topics.inbox(d.team)
        self._new_inboxes.append(inbox)
        out = self._step(d, identity=public.to_json(), inbox=inbox)
        return out + self._step(dispatch(d, at=now, rng_fraction=self._draw()))

    def _report(
        self, header: RoutingHeader, report: TeamReport, now: datetime
    ) -> list[OutboundRecord]:
        d = self.registry.of_team(header.sender)
        if d is None or report.team != header.sender:
            return self._refuse(
                header, f"{header.sender!r} reports for {report.team!r}: a team reports as itself"
            )
        try:
            after = accept_report(d, report, at=_at(d, now))
        except DeploymentError as refusal:
            return self._refuse(header, str(refusal), request_id=d.request_id)
        fields = {
            "request_id": d.request_id,
            "team": d.team,
            "message_id": header.message_id,
            "phase": report.phase.value if report.phase else None,
            "phase_complete": report.phase_complete,
            "counts": dict(report.counts),
        }
        out = [self._event(TeamEvent.REPORT, d.request_id, fields)]
        if after is not d:
            out += self._step(after)
        return out

    def _convert(
        self,
        sender: str,
        body: TeamConversionBody,
        now: datetime,
        header: RoutingHeader | None,
    ) -> list[OutboundRecord]:
        d = self._hosted(sender, body.team)
        if d is None:
            return self._refusal_for(header, sender, body.team, "convert")
        try:
            after = convert_to_irt(d, kind=body.to_kind, crisis=body.crisis, at=_at(d, now))
        except DeploymentError as refusal:
            return self._refuse_or_log(header, str(refusal), d.request_id)
        notice = TeamConversionBody(team=body.team, to_kind=body.to_kind, crisis=body.crisis)
        correlation = header.message_id if header else d.request_id
        return self._step(after, by=sender) + self._seal(
            notice, [d.host, body.team], now, correlation, urgent=True
        )

    def _close(
        self,
        sender: str,
        team: str,
        reason: str,
        now: datetime,
        header: RoutingHeader | None,
    ) -> list[OutboundRecord]:
        d = self._hosted(sender, team)
        if d is None:
            return self._refusal_for(header, sender, team, "close")
        if not d.active:
            return self._refuse_or_log(
                header, f"{team} is {d.state.value}; only an active deployment closes", d.request_id
            )
        return self._closing(d, reason, now, by=sender)

    def _closing(
        self, d: Deployment, reason: str, now: datetime, by: str | None = None
    ) -> list[OutboundRecord]:
        assert d.team is not None
        after = close(d, at=_at(d, now), reason=reason[:200])
        assert after.closed_at is not None
        notice = DeploymentClosedBody(team=d.team, closed_at=after.closed_at, reason=reason[:256])
        log.info("team-closed", team=d.team, request_id=d.request_id, reason=reason)
        return self._step(after, by=by or self.state.hub) + self._seal(
            notice, [d.host, d.team], now, d.request_id
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
        self, header: RoutingHeader | None, sender: str, team: str, what: str
    ) -> list[OutboundRecord]:
        d = self.registry.of_team(team)
        detail = (
            f"no deployment of {team!r} is known; check the team id"
            if d is None
            else f"only {d.host}'s NCB (the host) or the CCC may {what} {team}; {sender} may not"
        )
        return self._refuse_or_log(header, detail, d.request_id if d else None)

    def _refuse_or_log(
        self, header: RoutingHeader | None, detail: str, request_id: str | None
    ) -> list[OutboundRecord]:
        if header is None:  # the CCC's own move: the operator reads the log
            log.warning("team-move-refused", detail=detail, request_id=request_id)
            raise DeploymentError(detail)
        return self._refuse(header, detail, request_id=request_id)

    def _refuse(
        self, header: RoutingHeader, detail: str, *, request_id: str | None = None
    ) -> list[OutboundRecord]:
        """Tell the sender why its message was not taken, and journal it."""
        kind = header.message_type.value
        fields = {
            "request_id": request_id,
            "message_id": header.message_id,
            "sender": header.sender,
            "type": kind,
            "reason": detail,
        }
        log.info("team-refused", **fields)
        out = [self._event(TeamEvent.REFUSED, request_id or header.message_id, fields)]
        if header.sender in self.state.directory and kind_of(header.sender) in (
            ParticipantKind.NCB,
            ParticipantKind.TEAM,
        ):
            body = MessageBody(subject=f"{kind} refused", text=detail)
            out += self._seal(body, [header.sender], self.state.clock(), header.message_id)
        return out

    def _step(self, d: Deployment, **extra: Any) -> list[OutboundRecord]:
        """Record ``d`` and journal its last step with its snapshot."""
        self.registry.record(d)
        event = SNAPSHOT_EVENT[d.journal[-1].event]
        fields = {
            "request_id": d.request_id,
            "team": d.team,
            "state": d.state.value,
            "kind": d.kind.value,
            "host": d.host,
            "deployment": d.model_dump(mode="json"),
            **extra,
        }
        return [self._event(event, d.request_id, fields)]

    def _event(self, event: TeamEvent, key: str, fields: dict[str, Any]) -> OutboundRecord:
        return journal_record(self.state, event.value, key, fields)

    def _seal(
        self,
        body: Body,
        recipients: list[str],
        now: datetime,
        correlation_id: str,
        *,
        urgent: bool = False,
    ) -> list[OutboundRecord]:
        state = self.state
        known = [r for r in dict.fromkeys(recipients) if r in state.directory]
        if not known:
            return []
        _, records = seal_from_hub(
            body,
            known,
            hub=state.identity,
            directory=state.directory,
            topics=state.settings.topics,
            now=now,
            random_bytes=state.random_bytes,
            precedence=Precedence.IMMEDIATE if urgent else Precedence.ROUTINE,
            correlation_id=correlation_id,
        )
        return records

    def _draw(self) -> float:
        return _fraction(self.state.random_bytes)


def _at(d: Deployment, now: datetime) -> datetime:
    """``now``, or the deployment's last journal time if another hub's clock was ahead."""
    return max(now, d.journal[-1].at) if d.journal else now
