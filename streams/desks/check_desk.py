"""The CCC's checks desk: database checks, hit escalations, hit confirmations, multi-country
queries. A thin layer over ``answer_check`` and the desks' state folded from the journal
(``streams.core.desk_state``): it says, as effects (``streams.desks.effects``), what to send and
what to journal; the hub's shell (``streams.desks.shell``) seals and writes them.

Theory of operation
-------------------
Messages to ``ccc`` reach ``handle`` already opened by the hub (``streams.desks.shell.DeskShell``):

* ``check-request``: ``answer_check`` over the hub's databases. The ``check-answer`` goes
  to the asker's inbox (correlation id = the request's). Every hit on a Red Notice subject
  or a listed travel document is escalated at once, FLASH: to the hub on duty as the
  journal event ``check-hit-escalated`` (hubs have no inbox), and to the asker and the
  record's owner as one sealed FLASH ``message`` flagged ``wanted-person-hit`` or
  ``stolen-document-hit``. Every hit opens a confirmation exchange: a
  ``hit-confirmation-request`` sealed to the owner.
* ``hit-confirmation`` from the owner closes its exchange (if in time).
* ``multi-country-query``: forwarded to the targets, collected for its window.
* ``multi-country-reply`` from a target: counted, or forwarded late to the asker.

``tick`` (every second) sends what the clocks owe: at half time a reminder to the owner
(the request again), at the deadline a breach (journal ``hit-confirmation-breach`` for the
hub on duty, and a message to the owner and the asker); and each ``consolidated-answer``
whose window closed, naming the silent targets.

Who says what is checked: the sender must be the asker (of a check or query), the owner
(of a confirmation) or the responder (of a reply); anything else is journaled as
``check-desk-refused`` and dropped. A message for recipients the key directory does not
know (a team whose keys the hub never loaded) is not sent: ``check-desk-undeliverable``.

State: the exchanges and windows are desk events on the journal (``schemas.journal``),
folded by every hub into ``HubState.desks`` (``streams.core.desk_state``; the desk reads it as
``DeskContext.desks``, and its events are folded there at once by the shell): the request a
reminder repeats and each accepted reply ride in their events sealed for ``ccc``. Any hub
answers a confirmation or a reply from that state, and only the hub acting for the desks
(holding intake) ticks, so an exchange or window opened before a failover is reminded,
escalated or consolidated by the successor.

Worked example: FRA checks passenger "Jean Dupont" (BEL's Red Notice) while Lyon is on
duty: FRA's inbox gets a ``check-answer`` with one hit, then a FLASH ``message``; BEL gets
the same FLASH message and a ``hit-confirmation-request``; the control topic gets
``check-answered``, ``check-hit-escalated`` and ``hit-confirmation-requested``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import timedelta

import structlog

from schemas.bodies import Body, MessageBody
from schemas.checks import (
    CheckRequest,
    ConsolidatedAnswer,
    HitConfirmation,
    HitConfirmationRequest,
    MultiCountryQuery,
    MultiCountryReply,
    Urgency,
)
from schemas.errors import UnknownParticipant
from schemas.header import HeaderFlag, MessageType, Precedence, format_timestamp
from schemas.journal import (
    CheckAnswered,
    CheckDeskRefused,
    CheckDeskUndeliverable,
    CheckHitEscalated,
    HitConfirmationBreach,
    HitConfirmationReminder,
    HitConfirmationRequested,
    HitConfirmed,
    JournalEventModel,
    MultiCountryConsolidated,
    MultiCountryOpened,
    MultiCountryReplied,
)
from schemas.participants import ParticipantKind, hub_id, kind_of
from schemas.sealing import OpenedMessage
from streams.core.checks import Escalation, answer_check
from streams.core.clocks import CONFIRMATION_DEADLINES
from streams.core.desk_state import ConsolidationOwed, EscalationOwed, ReminderOwed, ReplyOutcome
from streams.databases import Databases
from streams.desks.context import DeskContext
from streams.desks.effects import Effect, Journal, Send

__all__ = ["CheckDesk"]

log = structlog.get_logger("i247.checks")

_URGENCY_PRECEDENCE = {Urgency.URGENT: Precedence.IMMEDIATE, Urgency.ROUTINE: Precedence.ROUTINE}


class CheckDesk:
    """See the module docstring; register with the hub's ``DeskShell.register``."""

    handles = frozenset(
        {
            MessageType.CHECK_REQUEST,
            MessageType.HIT_CONFIRMATION,
            MessageType.MULTI_COUNTRY_QUERY,
            MessageType.MULTI_COUNTRY_REPLY,
        }
    )

    def __init__(self, databases: Databases, acting: Callable[[], bool] = lambda: True) -> None:
        self.databases = databases
        self.acting = acting  # whether this hub ticks the desks' clocks (holds intake)

    # --- messages -----------------------------------------------------------------

    def handle(self, ctx: DeskContext, opened: OpenedMessage) -> list[Effect]:
        body, sender = opened.body, opened.header.sender
        if isinstance(body, CheckRequest):
            if body.asker != sender:
                return self._refuse(ctx, opened, f"asker {body.asker} is not the sender")
            return self._check(ctx, body)
        if isinstance(body, HitConfirmation):
            if body.owner != sender:
                return self._refuse(ctx, opened, f"owner {body.owner} is not the sender")
            return self._confirm(ctx, body)
        if isinstance(body, MultiCountryQuery):
            if body.asker != sender:
                return self._refuse(ctx, opened, f"asker {body.asker} is not the sender")
            return self._query(ctx, body)
        if isinstance(body, MultiCountryReply):
            if body.responder != sender:
                reason = f"responder {body.responder} is not the sender"
                return self._refuse(ctx, opened, reason)
            return self._reply(ctx, body)
        return self._refuse(ctx, opened, f"no checks handling for {body.type.value}")

    def _check(self, ctx: DeskContext, request: CheckRequest) -> list[Effect]:
        outcome = answer_check(request, self.databases, ctx.now, roster=ctx.roster)
        hits = sum(1 for result in outcome.answer.results if result.hit)
        out = self._send(
            ctx,
            outcome.answer,
            [request.asker],
            precedence=Precedence.IMMEDIATE if hits else Precedence.ROUTINE,
            correlation_id=request.correlation_id,
        )
        for escalation in outcome.escalations:
            out += self._escalate(ctx, escalation)
        for confirmation in outcome.confirmations:
            out += self._ask_confirmation(ctx, confirmation)
        answered = CheckAnswered(
            hub=ctx.hub,
            time=ctx.now,
            correlation_id=request.correlation_id,
            asker=request.asker,
            items=len(request.items),
            hits=hits,
            escalations=len(outcome.escalations),
            confirmations=len(outcome.confirmations),
        )
        out.append(Journal(answered, request.correlation_id))
        return out

    def _escalate(self, ctx: DeskContext, escalation: Escalation) -> list[Effect]:
        hubs = [r for r in escalation.recipients if kind_of(r) is ParticipantKind.HUB]
        inboxes = [r for r in escalation.recipients if kind_of(r) is not ParticipantKind.HUB]
        record = escalation.record
        text = json.dumps(
            {
                "correlation_id": escalation.correlation_id,
                "item_index": escalation.item_index,
                "record": record.model_dump(mode="json"),
            },
            sort_keys=True,
        )
        body = MessageBody(subject=f"FLASH {escalation.flag.value}: {record.database}", text=text)
        out = self._send(
            ctx,
            body,
            inboxes,
            precedence=escalation.precedence,
            correlation_id=escalation.correlation_id,
            flags=(escalation.flag,),
        )
        escalated = CheckHitEscalated(
            hub=ctx.hub,
            time=ctx.now,
            correlation_id=escalation.correlation_id,
            item_index=escalation.item_index,
            database=record.database.value,
            owner=record.owner,
            hub_on_duty=hubs[0] if hubs else None,
            recipients=tuple(escalation.recipients),
            flag=escalation.flag.value,
            precedence=escalation.precedence.value,
        )
        out.append(Journal(escalated, escalation.correlation_id))
        log.warning(
            "check-hit-escalated",
            correlation_id=escalation.correlation_id,
            flag=escalation.flag.value,
            owner=record.owner,
        )
        return out

    def _ask_confirmation(self, ctx: DeskContext, request: HitConfirmationRequest) -> list[Effect]:
        deadline = ctx.now + CONFIRMATION_DEADLINES[request.urgency] / ctx.clock_scale
        key = request.confirmation_id
        out = self._send(
            ctx,
            request,
            [request.owner],
            precedence=_URGENCY_PRECEDENCE[request.urgency],
            correlation_id=request.confirmation_id,
        )
        event = HitConfirmationRequested(
            hub=ctx.hub,
            time=ctx.now,
            confirmation_id=request.confirmation_id,
            correlation_id=request.correlation_id,
            owner=request.owner,
            asker=request.asker,
            urgency=request.urgency,
            deadline=deadline,
        )
        out.append(Journal(event, key, seal_for_ccc=request, fold=True))
        return out

    def _confirm(self, ctx: DeskContext, confirmation: HitConfirmation) -> list[Effect]:
        cid = confirmation.confirmation_id
        in_time = ctx.desks.confirmation_in_time(cid, confirmation.owner, ctx.now)
        event = HitConfirmed(
            hub=ctx.hub,
            time=ctx.now,
            confirmation_id=cid,
            owner=confirmation.owner,
            confirmed=confirmation.confirmed,
            in_time=in_time,
        )
        return [Journal(event, cid, fold=True)]

    def _query(self, ctx: DeskContext, query: MultiCountryQuery) -> list[Effect]:
        unknown = [t for t in query.targets if t not in ctx.directory]
        if unknown:
            refused = CheckDeskRefused(
                hub=ctx.hub,
                time=ctx.now,
                message_type=query.type.value,
                sender=query.asker,
                reason=f"unknown targets {unknown}",
            )
            return [Journal(refused, query.query_id)]
        closes_at = ctx.now + timedelta(seconds=query.window_seconds) / ctx.clock_scale
        out = self._send(ctx, query, list(query.targets), correlation_id=query.query_id)
        event = MultiCountryOpened(
            hub=ctx.hub,
            time=ctx.now,
            query_id=query.query_id,
            asker=query.asker,
            targets=query.targets,
            closes_at=closes_at,
        )
        out.append(Journal(event, query.query_id, fold=True))
        return out

    def _reply(self, ctx: DeskContext, reply: MultiCountryReply) -> list[Effect]:
        outcome = ctx.desks.reply_outcome(reply.query_id, reply.responder, ctx.now)
        accepted = outcome is ReplyOutcome.ACCEPTED
        event = MultiCountryReplied(
            hub=ctx.hub,
            time=ctx.now,
            query_id=reply.query_id,
            responder=reply.responder,
            outcome=outcome.value,
        )
        asker = ctx.desks.asker_of(reply.query_id)
        out: list[Effect] = [
            Journal(event, reply.query_id, seal_for_ccc=reply if accepted else None, fold=True)
        ]
        if outcome is ReplyOutcome.LATE and asker is not None:
            out += self._send(ctx, reply, [asker], correlation_id=reply.query_id)
        return out

    # --- clocks -------------------------------------------------------------------

    def tick(self, ctx: DeskContext) -> list[Effect]:
        """What the desks' clocks owe now, if this hub acts for the desks."""
        if not self.acting():
            return []
        out: list[Effect] = []
        for owed in ctx.desks.due_confirmations(ctx.now):
            out += (
                self._remind(ctx, owed)
                if isinstance(owed, ReminderOwed)
                else self._breach(ctx, owed)
            )
        for window in ctx.desks.due_windows(ctx.now):
            out += self._consolidate(ctx, window)
        return out

    def _consolidate(self, ctx: DeskContext, owed: ConsolidationOwed) -> list[Effect]:
        answers: dict[str, str] = {}
        for responder, sealed in owed.answers.items():
            reply = ctx.open_for_ccc(sealed, owed.query_id)
            if isinstance(reply, MultiCountryReply):
                answers[responder] = reply.answer
            else:
                log.error("multi-country-reply-unreadable", query_id=owed.query_id)
        answer = ConsolidatedAnswer(
            query_id=owed.query_id,
            asker=owed.asker,
            answers=answers,
            silent=owed.silent,
            consolidated_at=owed.consolidated_at,
        )
        out = self._send(ctx, answer, [answer.asker], correlation_id=answer.query_id)
        event = MultiCountryConsolidated(
            hub=ctx.hub,
            time=ctx.now,
            query_id=answer.query_id,
            asker=answer.asker,
            answered=tuple(sorted(answer.answers)),
            silent=answer.silent,
        )
        out.append(Journal(event, answer.query_id, fold=True))
        return out

    def _remind(self, ctx: DeskContext, reminder: ReminderOwed) -> list[Effect]:
        cid = reminder.confirmation_id
        event = HitConfirmationReminder(
            hub=ctx.hub,
            time=ctx.now,
            confirmation_id=cid,
            owner=reminder.owner,
            deadline=reminder.deadline,
        )
        out: list[Effect] = [Journal(event, cid, fold=True)]
        request = ctx.open_for_ccc(reminder.sealed, cid)
        if isinstance(request, HitConfirmationRequest):  # the request again: the reminder
            out += self._send(
                ctx,
                request,
                [reminder.owner],
                precedence=_URGENCY_PRECEDENCE[reminder.urgency],
                correlation_id=cid,
            )
        else:
            log.error("hit-confirmation-request-unreadable", confirmation_id=cid)
        return out

    def _breach(self, ctx: DeskContext, breach: EscalationOwed) -> list[Effect]:
        text = (
            f"Hit confirmation {breach.confirmation_id} ({breach.urgency.value}) was due from "
            f"{breach.owner} at {format_timestamp(breach.deadline)} and has not arrived; "
            f"the CCC on duty has escalated it."
        )
        body = MessageBody(subject="Hit confirmation overdue", text=text)
        on_duty = hub_id(ctx.roster.hub_on_duty(ctx.now))
        recipients = list(dict.fromkeys((breach.owner, breach.asker)))
        out = self._send(
            ctx,
            body,
            recipients,
            precedence=Precedence.IMMEDIATE,
            correlation_id=breach.confirmation_id,
        )
        event = HitConfirmationBreach(
            hub=ctx.hub,
            time=ctx.now,
            confirmation_id=breach.confirmation_id,
            owner=breach.owner,
            asker=breach.asker,
            urgency=breach.urgency,
            late_seconds=round(breach.late_seconds, 3),
            hub_on_duty=on_duty,
        )
        out.append(Journal(event, breach.confirmation_id, fold=True))
        log.warning("hit-confirmation-breach", confirmation_id=breach.confirmation_id)
        return out

    # --- effects ------------------------------------------------------------------

    def _send(
        self,
        ctx: DeskContext,
        body: Body,
        recipients: Sequence[str],
        *,
        precedence: Precedence = Precedence.ROUTINE,
        correlation_id: str | None = None,
        flags: Sequence[HeaderFlag] = (),
    ) -> list[Effect]:
        """A ``Send``, or, if a recipient is not in the key directory (e.g. a team whose
        keys the hub never loaded), ``check-desk-undeliverable`` and nothing sent."""
        if not recipients:
            return []
        unknown = next((r for r in recipients if r not in ctx.directory), None)
        if unknown is not None:
            detail = str(UnknownParticipant(unknown, role="recipient"))
            log.error("check-desk-cannot-seal", recipients=list(recipients), detail=detail)
            event: JournalEventModel = CheckDeskUndeliverable(
                hub=ctx.hub,
                time=ctx.now,
                message_type=body.type.value,
                recipients=tuple(recipients),
                detail=detail,
            )
            return [Journal(event, correlation_id or body.type.value)]
        send = Send(tuple(recipients), body, precedence, correlation_id, tuple(flags))
        return [send]

    def _refuse(self, ctx: DeskContext, opened: OpenedMessage, reason: str) -> list[Effect]:
        header = opened.header
        log.info("check-desk-refused", message_id=header.message_id, reason=reason)
        refused = CheckDeskRefused(
            hub=ctx.hub,
            time=ctx.now,
            message_id=header.message_id,
            message_type=header.message_type.value,
            sender=header.sender,
            reason=reason,
        )
        return [Journal(refused, header.message_id)]
