"""The CCC's notice desk: review requests, broadcast notices, run their clock.

Theory of operation
-------------------
The hub hands the desk every opened message addressed to ``ccc`` of two kinds (diffusions
and their recalls go to ``streams.desks.diffusion_desk``):

* ``notice-request``: the desk checks that the sender is the requesting NCB (else it
  refuses, ``not-requester``), opens the notice (``NoticeLifecycle.open``), starts the
  review, runs ``review_notice`` against the notices it holds and carries the outcome out
  (``decide``). The outcome goes back to the sender as a ``notice-decision``, sealed from
  the hub. A request answered once (published or refused) gets the same answer again if it
  comes back (a redelivery, say); a returned one is reviewed again.
* ``notice-action``: the requester suspends, reinstates, renews or cancels its notice. Any
  other sender, an unknown notice or a move the lifecycle forbids is refused with a
  ``message`` from the hub that says why.

A notice change recipients must see (publish, suspend, reinstate, renew, cancel, expire)
is *broadcast* (the desk says so with effects, ``streams.desks.effects``, that the hub's
shell seals): a ``Send`` from the hub, one envelope per inbox of every recipient
(``broadcast_recipients``: all 196 NCBs or one region's members, plus the teams it
concerns, plus the requester), and a ``PublishNotice``: one record on the compacted
notices topic, key the
notice id, value the envelope of the latest state sealed for the topic and that key,
addressed to the same recipients **and** ``ccc``. So the topic stays as confidential as
the inboxes (only the recipients, the hubs and the auditor can open it), a late NCB opens
its own copy from it, and every hub rebuilds the notices in force from it (``restore``,
fed by a tail of the topic from its start, opened by the hub's ``open_stored``, so each
hub also follows the others' writes).

``tick`` runs the clock (``NoticeLifecycle.tick``, scaled by ``Settings.clock_scale``):
the renewal prompt to the requester, then the expiry broadcast. Only the hub on intake
duty ticks (``on_duty``), so three hubs do not prompt three times. A prompt raises the
notice's version (``prompted_at``); that version is written to the topic only, not to
the inboxes (recipients need not see it), so a hub that takes over does not prompt again.

Journal events (``i247.control``, key the notice or diffusion id), which the simulator's
summary can count: ``notice-requested``, ``notice-decided`` (``decision``: published,
refused or returned; ``reasons``: the codes), ``notice-transition`` (``transition``: the
lifecycle event), ``notice-broadcast`` (``recipients``: inbox copies written),
``notice-action-refused``, ``renewal-prompted``, ``notice-desk-failed`` (a fault, the
message skipped); typed in ``schemas.journal``.

Returned requests survive a hub change: ``notice-decided`` carries the returned notice's
``version``, and every hub folds it (``streams.core.desk_state``). So does the diffusion
ledger (``streams.desks.diffusion_desk``: ``diffusion-recorded`` carries the NCBs a diffusion
reached, and every hub folds it). What does not: the
answers to refused requests, kept in memory (the same request sent again to another hub
is reviewed afresh); a published one is found on the compacted topic and answered
published again, not refused as a duplicate.

Worked example: FRA sends a Red Notice request for a murder suspect to ``ccc``. The desk
publishes ``red-<request id>`` version 3 (open, review, publish), sends FRA a
``notice-decision`` (published, with the notice id), copies the notice to 196 inboxes
and writes it to ``i247.notices``. FRA then sends ``notice-action`` cancel: version 4,
cancelled, broadcast the same way.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

import structlog

from brokers.records import ReceivedRecord
from schemas.bodies import (
    MessageBody,
    NoticeActionBody,
    NoticeBody,
    NoticeDecisionBody,
    NoticeRequestBody,
    RenewalPromptBody,
)
from schemas.header import MessageType, Precedence, RoutingHeader
from schemas.journal import (
    NoticeActionRefused,
    NoticeBroadcast,
    NoticeDecided,
    NoticeDeskFailed,
    NoticeRequested,
    NoticeTransitioned,
    RenewalPrompted,
)
from schemas.notice_view import NoticeView
from schemas.notices import (
    Notice,
    NoticeAction,
    NoticeId,
    NoticeRequest,
    NoticeState,
    ReasonCode,
    ReviewDecision,
    ReviewOutcome,
    ReviewReason,
)
from schemas.participants import ParticipantKind, kind_of
from schemas.registry import MemberRegistry, Region
from schemas.sealing import OpenedMessage
from streams.core.notice_lifecycle import (
    Broadcast,
    IllegalTransition,
    NoticeEvent,
    NoticeLifecycle,
    NotifyRequester,
    PromptRenewal,
    Transition,
    broadcast_recipients,
)
from streams.core.notice_lifecycle import Journal as JournalTransition
from streams.core.notice_review import review_notice
from streams.desks.context import DeskContext
from streams.desks.effects import Effect, Journal, PublishNotice, Send

__all__ = ["ACTION_EVENTS", "NoticeDesk", "OpenStored", "TeamsInScope", "notice_id_for"]

log = structlog.get_logger("i247.notices")

TeamsInScope = Callable[[], Iterable[tuple[str, Region]]]
OpenStored = Callable[[ReceivedRecord], OpenedMessage | None]
"""A record of the notices topic opened with the hub's key (``DeskShell.open_stored``)."""

ACTION_EVENTS: Mapping[NoticeAction, NoticeEvent] = MappingProxyType(
    {
        NoticeAction.SUSPEND: NoticeEvent.SUSPEND,
        NoticeAction.REINSTATE: NoticeEvent.REINSTATE,
        NoticeAction.RENEW: NoticeEvent.RENEW,
        NoticeAction.CANCEL: NoticeEvent.CANCEL,
    }
)


_CIRCULATED = frozenset(
    {NoticeState.PUBLISHED, NoticeState.SUSPENDED, NoticeState.CANCELLED, NoticeState.EXPIRED}
)


def notice_id_for(request: NoticeRequest) -> NoticeId:
    """The notice a request opens: its colour and request id, so a resent request finds it."""
    return f"{request.colour.value}-{request.request_id}"


def _no_teams() -> Iterable[tuple[str, Region]]:
    return ()


def _always() -> bool:
    return True


class NoticeDesk:
    """Notice requests and actions at the CCC (see the module docstring)."""

    handles = frozenset({MessageType.NOTICE_REQUEST, MessageType.NOTICE_ACTION})

    def __init__(
        self,
        *,
        registry: MemberRegistry,
        lifecycle: NoticeLifecycle,
        open_stored: OpenStored,
        teams: TeamsInScope = _no_teams,
        on_duty: Callable[[], bool] = _always,
        memory: int = 100_000,
    ) -> None:
        self.registry = registry
        self.lifecycle = lifecycle
        self.open_stored = open_stored
        self.teams = teams  # the seam for a team registry: (team id, region deployed in)
        self.on_duty = on_duty
        self._view = NoticeView()  # published and later states, by id, highest version
        self._answers: dict[str, NoticeDecisionBody] = {}  # final answers, by request id
        self._handled: OrderedDict[str, None] = OrderedDict()
        self._memory = memory

    # --- what the desk holds ------------------------------------------------------

    def notices(self) -> Mapping[str, Notice]:
        """Every notice published so far in its latest state (in force or not), by id."""
        return MappingProxyType({n.notice_id: n for n in self._view.snapshot()[0]})

    def in_force(self) -> tuple[Notice, ...]:
        """Published and suspended notices (``review_notice`` drops the expired ones)."""
        live = (NoticeState.PUBLISHED, NoticeState.SUSPENDED)
        return tuple(n for n in self._view.snapshot()[0] if n.state in live)

    def restore(self, record: ReceivedRecord) -> bool:
        """Fold one record of the compacted notices topic; True if it changed what is held.

        Records the hub cannot open or that are not a hub's ``notice`` for their key are
        logged and skipped: the topic is the CCC's own, so they indicate a fault upstream.
        """
        key = (record.key or b"").decode()
        opened = self.open_stored(record)
        if opened is None:
            return False
        body = opened.body
        if (
            kind_of(opened.header.sender) is not ParticipantKind.HUB
            or not isinstance(body, NoticeBody)
            or body.notice.notice_id != key
        ):
            log.error("notice-record-foreign", origin=record.origin, sender=opened.header.sender)
            return False
        return self._view.apply(body.notice)

    # --- the desk (streams.desks.context.EffectDesk) ----------------------------------

    def handle(self, ctx: DeskContext, opened: OpenedMessage) -> list[Effect]:
        header, body = opened.header, opened.body
        if header.message_id in self._handled:
            log.info("ccc-message-again", message_id=header.message_id)
            return []
        self._handled[header.message_id] = None
        while len(self._handled) > self._memory:
            self._handled.popitem(last=False)
        try:
            if isinstance(body, NoticeRequestBody):
                return self._request(ctx, header, body.request)
            if isinstance(body, NoticeActionBody):
                return self._action(ctx, header, body)
        except Exception:  # a desk fault must not stall the lane that carried the message
            log.exception("notice-desk-failed", message_id=header.message_id)
            failed = NoticeDeskFailed(
                hub=ctx.hub,
                time=ctx.now,
                message_id=header.message_id,
                type=header.message_type.value,
            )
            return [Journal(failed, header.message_id)]
        return []

    def tick(self, ctx: DeskContext) -> list[Effect]:
        """Prompt renewals and expire notices, if this hub is on duty for the clock."""
        if not self.on_duty():
            return []
        out: list[Effect] = []
        for notice in self._view.snapshot()[0]:
            moved = self.lifecycle.tick(notice, ctx.now)
            if moved is not None:
                out += self._carry_out(ctx, moved, answer_to=None, correlation=None)
        return out

    # --- notice requests ----------------------------------------------------------

    def _request(
        self, ctx: DeskContext, header: RoutingHeader, request: NoticeRequest
    ) -> list[Effect]:
        now = ctx.now
        notice_id = notice_id_for(request)
        requested = NoticeRequested(
            hub=ctx.hub,
            time=now,
            notice_id=notice_id,
            request_id=request.request_id,
            requester=request.requesting_ncb,
            sender=header.sender,
            colour=request.colour.value,
            region=request.region.value if request.region else None,
        )
        out: list[Effect] = [Journal(requested, notice_id)]
        answered = self._answers.get(request.request_id)
        if answered is not None:  # published or refused before: the same answer again
            return out + self._decision(answered, header)
        held = self._view.latest(notice_id)
        if held is not None and held.request_id == request.request_id:
            # published by a hub since replaced (its lanes redelivered to us): the notice is
            # on the compacted topic, so this request was published; it is no duplicate
            outcome = ReviewOutcome(
                request_id=request.request_id, decision=ReviewDecision.PUBLISHED, reasons=()
            )
            answer = NoticeDecisionBody(outcome=outcome, notice_id=notice_id)
            self._answers[request.request_id] = answer
            out.append(self._decided(ctx, notice_id, header.sender, outcome))
            return out + self._decision(answer, header)
        if request.requesting_ncb != header.sender:
            reason = ReviewReason(
                code=ReasonCode.NOT_REQUESTER,
                text=(
                    f"sent by {header.sender} but requested by {request.requesting_ncb}: "
                    "an NCB requests notices only in its own name"
                ),
            )
            outcome = ReviewOutcome(
                request_id=request.request_id, decision=ReviewDecision.REFUSED, reasons=(reason,)
            )
            answer = NoticeDecisionBody(outcome=outcome)
            self._answers[request.request_id] = answer
            out.append(self._decided(ctx, notice_id, header.sender, outcome))
            return out + self._decision(answer, header)
        notice = self.lifecycle.open(request, notice_id)
        returned = ctx.desks.returned.get(request.request_id)
        if returned is not None:  # completed after a return: same notice, next version
            notice = notice.model_copy(update={"version": returned})
        started = self.lifecycle.apply(notice, NoticeEvent.START_REVIEW, now=now)
        out += self._carry_out(ctx, started, answer_to=None, correlation=None)
        outcome = review_notice(request, notices_in_force=self.in_force(), now=now)
        decided = self.lifecycle.decide(started.notice, outcome, now=now)
        version = decided.notice.version
        out.append(self._decided(ctx, notice_id, header.sender, outcome, version))
        out += self._carry_out(ctx, decided, answer_to=header, correlation=header.message_id)
        return out

    def _decided(
        self,
        ctx: DeskContext,
        notice_id: str,
        requester: str,
        outcome: ReviewOutcome,
        version: int | None = None,
    ) -> Journal:
        """Journal a decision; a returned request's version is desk state every hub folds
        (``streams.core.desk_state``), so its completion is reviewed as the next version by
        whichever hub receives it. Folded at once by the shell, and again from the journal."""
        event = NoticeDecided(
            hub=ctx.hub,
            time=ctx.now,
            notice_id=notice_id,
            request_id=outcome.request_id,
            requester=requester,
            decision=outcome.decision.value,
            reasons=tuple(r.code.value for r in outcome.reasons),
            version=version,
        )
        return Journal(event, notice_id, fold=True)

    def _decision(self, answer: NoticeDecisionBody, to: RoutingHeader) -> list[Effect]:
        return [Send((to.sender,), answer, correlation_id=to.message_id)]

    # --- notice actions -----------------------------------------------------------

    def _action(
        self, ctx: DeskContext, header: RoutingHeader, body: NoticeActionBody
    ) -> list[Effect]:
        notice = self._view.latest(body.notice_id)
        why: str | None = None
        if notice is None:
            why = f"no notice {body.notice_id} is published; check the id in your decision"
        elif header.sender != notice.requester:
            why = f"only {notice.requester}, which requested {body.notice_id}, may act on it"
        if notice is None or why is not None:
            return self._refuse_action(ctx, header, body, why or "")
        try:
            moved = self.lifecycle.apply(
                notice, ACTION_EVENTS[body.action], now=ctx.now, by=header.sender
            )
        except (IllegalTransition, PermissionError) as refusal:
            return self._refuse_action(ctx, header, body, str(refusal))
        return self._carry_out(ctx, moved, answer_to=None, correlation=header.message_id)

    def _refuse_action(
        self, ctx: DeskContext, header: RoutingHeader, body: NoticeActionBody, why: str
    ) -> list[Effect]:
        refused = NoticeActionRefused(
            hub=ctx.hub,
            time=ctx.now,
            notice_id=body.notice_id,
            action=body.action.value,
            by=header.sender,
            why=why,
        )
        reply = MessageBody(subject=f"notice action refused: {body.notice_id}", text=why)
        return [
            Journal(refused, body.notice_id),
            Send((header.sender,), reply, correlation_id=header.message_id),
        ]

    # --- a lifecycle transition's effects, as the desk's --------------------------

    def _carry_out(
        self,
        ctx: DeskContext,
        moved: Transition,
        *,
        answer_to: RoutingHeader | None,
        correlation: str | None,
    ) -> list[Effect]:
        """Journal, broadcast and answer what one lifecycle transition says."""
        notice = moved.notice
        if notice.state in _CIRCULATED:
            self._view.apply(notice)
        out: list[Effect] = []
        for effect in moved.effects:
            if isinstance(effect, JournalTransition):
                out.append(self._transition(ctx, effect))
            elif isinstance(effect, Broadcast):
                out += self._broadcast(ctx, effect.notice, correlation)
            elif isinstance(effect, NotifyRequester) and effect.outcome is not None:
                answer = NoticeDecisionBody(
                    outcome=effect.outcome,
                    notice_id=notice.notice_id if effect.state is NoticeState.PUBLISHED else None,
                )
                if effect.outcome.decision is not ReviewDecision.RETURNED:
                    self._answers[effect.outcome.request_id] = answer
                to = answer_to.sender if answer_to is not None else effect.ncb
                out.append(Send((to,), answer, correlation_id=correlation))
            elif isinstance(effect, PromptRenewal):
                prompt = effect.prompt
                out.append(Send((prompt.requester,), RenewalPromptBody(prompt=prompt)))
                out.append(PublishNotice(notice, self._recipients(ctx, notice)))
                prompted = RenewalPrompted(
                    hub=ctx.hub,
                    time=ctx.now,
                    notice_id=prompt.notice_id,
                    requester=prompt.requester,
                    version=prompt.version,
                    expires_at=prompt.expires_at.isoformat(),
                )
                out.append(Journal(prompted, prompt.notice_id))
            # NotifyRequester without an outcome: the requester is among the broadcast's
            # recipients (``_recipients`` adds it), so the broadcast is its notification.
        return out

    def _transition(self, ctx: DeskContext, effect: JournalTransition) -> Journal:
        event = NoticeTransitioned(
            hub=ctx.hub,
            time=ctx.now,
            notice_id=effect.notice_id,
            transition=effect.event.value,
            from_state=effect.from_state.value,
            to_state=effect.to_state.value,
            version=effect.version,
            by=effect.by,
        )
        return Journal(event, effect.notice_id)

    def _recipients(self, ctx: DeskContext, notice: Notice) -> tuple[str, ...]:
        chosen = broadcast_recipients(notice, self.registry, self.teams())
        chosen = chosen if notice.requester in chosen else (*chosen, notice.requester)
        unknown = [r for r in chosen if r not in ctx.directory]
        if unknown:  # a team whose keys this hub has not folded yet: the others still get it
            log.warning("notice-recipients-unknown", notice_id=notice.notice_id, unknown=unknown)
        return tuple(r for r in chosen if r in ctx.directory)

    def _broadcast(self, ctx: DeskContext, notice: Notice, correlation: str | None) -> list[Effect]:
        recipients = self._recipients(ctx, notice)
        broadcast = NoticeBroadcast(
            hub=ctx.hub,
            time=ctx.now,
            notice_id=notice.notice_id,
            version=notice.version,
            state=notice.state.value,
            region=notice.region.value if notice.region else None,
            recipients=len(recipients),  # one copy per recipient
        )
        return [
            Send(
                recipients,
                NoticeBody(notice=notice),
                Precedence.ROUTINE,
                correlation_id=correlation or notice.notice_id,
            ),
            PublishNotice(notice, recipients),
            Journal(broadcast, notice.notice_id),
        ]
