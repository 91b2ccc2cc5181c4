"""The CCC's checks desk: database checks, hit escalations, hit confirmations, multi-country
queries. A thin shell around ``answer_check`` and the desks' state folded from the journal
(``streams.desk_state``): it seals what they decide and journals what happened.

Theory of operation
-------------------
Messages to ``ccc`` reach ``handle`` already opened by the hub (``CccDesk``):

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
``check-desk-refused`` and dropped.

State: the exchanges and windows are desk events on the journal (``schemas.journal``),
folded by every hub into ``HubState.desks`` (``streams.desk_state``): the request a
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
from datetime import datetime, timedelta
from typing import Any

import structlog

from brokers.records import OutboundRecord, ReceivedRecord
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
    CheckHitEscalated,
    DeskEvent,
    HitConfirmationBreach,
    HitConfirmationReminder,
    HitConfirmationRequested,
    HitConfirmed,
    MultiCountryConsolidated,
    MultiCountryOpened,
    MultiCountryReplied,
)
from schemas.participants import ParticipantKind, hub_id, kind_of
from schemas.sealing import OpenedMessage
from streams.ccc_desk import open_for_ccc, seal_for_ccc, seal_from_hub
from streams.checks import Escalation, answer_check
from streams.clocks import CONFIRMATION_DEADLINES
from streams.databases import Databases
from streams.desk_state import ConsolidationOwed, EscalationOwed, ReminderOwed, ReplyOutcome
from streams.hub_state import HubState, journal_event, journal_record

__all__ = ["CheckDesk"]

log = structlog.get_logger("i247.checks")

_URGENCY_PRECEDENCE = {Urgency.URGENT: Precedence.IMMEDIATE, Urgency.ROUTINE: Precedence.ROUTINE}


class CheckDesk:
    """See the module docstring; register with ``CccDesk.register``."""

    handles = frozenset(
        {
            MessageType.CHECK_REQUEST,
            MessageType.HIT_CONFIRMATION,
            MessageType.MULTI_COUNTRY_QUERY,
            MessageType.MULTI_COUNTRY_REPLY,
        }
    )

    def __init__(
        self, state: HubState, databases: Databases, acting: Callable[[], bool] = lambda: True
    ) -> None:
        self.state = state
        self.databases = databases
        self.desks = state.desks  # folded from the journal by the hub, and here as written
        self.acting = acting  # whether this hub ticks the desks' clocks (holds intake)

    # --- messages -----------------------------------------------------------------

    def handle(
        self, opened: OpenedMessage, record: ReceivedRecord, now: datetime
    ) -> list[OutboundRecord]:
        body, sender = opened.body, opened.header.sender
        if isinstance(body, CheckRequest):
            if body.asker != sender:
                return self._refuse(opened, f"asker {body.asker} is not the sender")
            return self._check(body, now)
        if isinstance(body, HitConfirmation):
            if body.owner != sender:
                return self._refuse(opened, f"owner {body.owner} is not the sender")
            return self._confirm(body, now)
        if isinstance(body, MultiCountryQuery):
            if body.asker != sender:
                return self._refuse(opened, f"asker {body.asker} is not the sender")
            return self._query(body, now)
        if isinstance(body, MultiCountryReply):
            if body.responder != sender:
                return self._refuse(opened, f"responder {body.responder} is not the sender")
            return self._reply(body, now)
        return self._refuse(opened, f"no checks handling for {body.type.value}")

    def _check(self, request: CheckRequest, now: datetime) -> list[OutboundRecord]:
        outcome = answer_check(request, self.databases, now, roster=self.state.roster)
        hits = sum(1 for result in outcome.answer.results if result.hit)
        out = self._seal(
            outcome.answer,
            [request.asker],
            now,
            precedence=Precedence.IMMEDIATE if hits else Precedence.ROUTINE,
            correlation_id=request.correlation_id,
        )
        for escalation in outcome.escalations:
            out += self._escalate(escalation, now)
        for confirmation in outcome.confirmations:
            out += self._ask_confirmation(confirmation, now)
        out.append(
            journal_event(
                self.state,
                CheckAnswered(
                    hub=self.state.hub,
                    time=now,
                    correlation_id=request.correlation_id,
                    asker=request.asker,
                    items=len(request.items),
                    hits=hits,
                    escalations=len(outcome.escalations),
                    confirmations=len(outcome.confirmations),
                ),
                request.correlation_id,
            )
        )
        return out

    def _escalate(self, escalation: Escalation, now: datetime) -> list[OutboundRecord]:
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
        out = self._seal(
            body,
            inboxes,
            now,
            precedence=escalation.precedence,
            correlation_id=escalation.correlation_id,
            flags=(escalation.flag,),
        )
        out.append(
            journal_event(
                self.state,
                CheckHitEscalated(
                    hub=self.state.hub,
                    time=now,
                    correlation_id=escalation.correlation_id,
                    item_index=escalation.item_index,
                    database=record.database.value,
                    owner=record.owner,
                    hub_on_duty=hubs[0] if hubs else None,
                    recipients=tuple(escalation.recipients),
                    flag=escalation.flag.value,
                    precedence=escalation.precedence.value,
                ),
                escalation.correlation_id,
            )
        )
        log.warning(
            "check-hit-escalated",
            correlation_id=escalation.correlation_id,
            flag=escalation.flag.value,
            owner=record.owner,
        )
        return out

    def _ask_confirmation(
        self, request: HitConfirmationRequest, now: datetime
    ) -> list[OutboundRecord]:
        deadline = now + CONFIRMATION_DEADLINES[request.urgency] / self.state.settings.clock_scale
        key = request.confirmation_id
        out = self._seal(
            request,
            [request.owner],
            now,
            precedence=_URGENCY_PRECEDENCE[request.urgency],
            correlation_id=request.confirmation_id,
        )
        event = HitConfirmationRequested(
            hub=self.state.hub,
            time=now,
            confirmation_id=request.confirmation_id,
            correlation_id=request.correlation_id,
            owner=request.owner,
            asker=request.asker,
            urgency=request.urgency,
            deadline=deadline,
            sealed=self._seal_for_ccc(request, key, now),
        )
        out.append(self._desk_event(event, key))
        return out

    def _confirm(self, confirmation: HitConfirmation, now: datetime) -> list[OutboundRecord]:
        cid = confirmation.confirmation_id
        in_time = self.desks.confirmation_in_time(cid, confirmation.owner, now)
        event = HitConfirmed(
            hub=self.state.hub,
            time=now,
            confirmation_id=cid,
            owner=confirmation.owner,
            confirmed=confirmation.confirmed,
            in_time=in_time,
        )
        return [self._desk_event(event, cid)]

    def _query(self, query: MultiCountryQuery, now: datetime) -> list[OutboundRecord]:
        unknown = [t for t in query.targets if t not in self.state.directory]
        if unknown:
            return [
                self._journal(
                    "check-desk-refused",
                    query.query_id,
                    message_type=query.type.value,
                    sender=query.asker,
                    reason=f"unknown targets {unknown}",
                )
            ]
        closes_at = now + timedelta(seconds=query.window_seconds) / self.state.settings.clock_scale
        out = self._seal(query, list(query.targets), now, correlation_id=query.query_id)
        event = MultiCountryOpened(
            hub=self.state.hub,
            time=now,
            query_id=query.query_id,
            asker=query.asker,
            targets=query.targets,
            closes_at=closes_at,
        )
        out.append(self._desk_event(event, query.query_id))
        return out

    def _reply(self, reply: MultiCountryReply, now: datetime) -> list[OutboundRecord]:
        outcome = self.desks.reply_outcome(reply.query_id, reply.responder, now)
        accepted = outcome is ReplyOutcome.ACCEPTED
        event = MultiCountryReplied(
            hub=self.state.hub,
            time=now,
            query_id=reply.query_id,
            responder=reply.responder,
            outcome=outcome.value,
            sealed=self._seal_for_ccc(reply, reply.query_id, now) if accepted else None,
        )
        asker = self.desks.asker_of(reply.query_id)
        out = [self._desk_event(event, reply.query_id)]
        if outcome is ReplyOutcome.LATE and asker is not None:
            out += self._seal(reply, [asker], now, correlation_id=reply.query_id)
        return out

    # --- clocks -------------------------------------------------------------------

    def tick(self, now: datetime) -> list[OutboundRecord]:
        """What the desks' clocks owe now, if this hub acts for the desks."""
        if not self.acting():
            return []
        out: list[OutboundRecord] = []
        for owed in self.desks.due_confirmations(now):
            out += (
                self._remind(owed, now)
                if isinstance(owed, ReminderOwed)
                else self._breach(owed, now)
            )
        for window in self.desks.due_windows(now):
            out += self._consolidate(window, now)
        return out

    def _consolidate(self, owed: ConsolidationOwed, now: datetime) -> list[OutboundRecord]:
        answers: dict[str, str] = {}
        for responder, sealed in owed.answers.items():
            reply = self._open_for_ccc(sealed, owed.query_id)
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
        out = self._seal(answer, [answer.asker], now, correlation_id=answer.query_id)
        event = MultiCountryConsolidated(
            hub=self.state.hub,
            time=now,
            query_id=answer.query_id,
            asker=answer.asker,
            answered=tuple(sorted(answer.answers)),
            silent=answer.silent,
        )
        out.append(self._desk_event(event, answer.query_id))
        return out

    def _remind(self, reminder: ReminderOwed, now: datetime) -> list[OutboundRecord]:
        cid = reminder.confirmation_id
        event = HitConfirmationReminder(
            hub=self.state.hub,
            time=now,
            confirmation_id=cid,
            owner=reminder.owner,
            deadline=reminder.deadline,
        )
        out = [self._desk_event(event, cid)]
        request = self._open_for_ccc(reminder.sealed, cid)
        if isinstance(request, HitConfirmationRequest):  # the request again: the reminder
            out += self._seal(
                request,
                [reminder.owner],
                now,
                precedence=_URGENCY_PRECEDENCE[reminder.urgency],
                correlation_id=cid,
            )
        else:
            log.error("hit-confirmation-request-unreadable", confirmation_id=cid)
        return out

    def _breach(self, breach: EscalationOwed, now: datetime) -> list[OutboundRecord]:
        text = (
            f"Hit confirmation {breach.confirmation_id} ({breach.urgency.value}) was due from "
            f"{breach.owner} at {format_timestamp(breach.deadline)} and has not arrived; "
            f"the CCC on duty has escalated it."
        )
        body = MessageBody(subject="Hit confirmation overdue", text=text)
        on_duty = hub_id(self.state.roster.hub_on_duty(now))
        recipients = list(dict.fromkeys((breach.owner, breach.asker)))
        out = self._seal(
            body,
            recipients,
            now,
            precedence=Precedence.IMMEDIATE,
            correlation_id=breach.confirmation_id,
        )
        event = HitConfirmationBreach(
            hub=self.state.hub,
            time=now,
            confirmation_id=breach.confirmation_id,
            owner=breach.owner,
            asker=breach.asker,
            urgency=breach.urgency,
            late_seconds=round(breach.late_seconds, 3),
            hub_on_duty=on_duty,
        )
        out.append(self._desk_event(event, breach.confirmation_id))
        log.warning("hit-confirmation-breach", confirmation_id=breach.confirmation_id)
        return out

    # --- effects ------------------------------------------------------------------

    def _seal(
        self,
        body: Body,
        recipients: Sequence[str],
        now: datetime,
        *,
        precedence: Precedence = Precedence.ROUTINE,
        correlation_id: str | None = None,
        flags: Sequence[HeaderFlag] = (),
    ) -> list[OutboundRecord]:
        if not recipients:
            return []
        state = self.state
        try:
            _, records = seal_from_hub(
                body,
                recipients,
                hub=state.identity,
                directory=state.directory,
                topics=state.settings.topics,
                now=now,
                random_bytes=state.random_bytes,
                precedence=precedence,
                correlation_id=correlation_id,
                flags=flags,
            )
        except UnknownParticipant as unknown:  # e.g. a team whose keys the hub never loaded
            log.error("check-desk-cannot-seal", recipients=list(recipients), detail=str(unknown))
            return [
                self._journal(
                    "check-desk-undeliverable",
                    correlation_id or body.type.value,
                    message_type=body.type.value,
                    recipients=list(recipients),
                    detail=str(unknown),
                )
            ]
        return records

    def _desk_event(self, event: DeskEvent, key: str) -> OutboundRecord:
        """Fold a desk event here at once (the tail folds it again, harmlessly) and journal it."""
        self.desks.fold(event)
        return journal_event(self.state, event, key)

    def _seal_for_ccc(self, body: Body, key: str, now: datetime) -> str:
        state = self.state
        return seal_for_ccc(
            body,
            hub=state.identity,
            directory=state.directory,
            topic=state.settings.topics.control,
            key=key,
            now=now,
            random_bytes=state.random_bytes,
        )

    def _open_for_ccc(self, sealed: str | None, key: str) -> Body | None:
        if sealed is None:
            return None
        state = self.state
        return open_for_ccc(
            sealed,
            hub=state.identity,
            directory=state.directory,
            topic=state.settings.topics.control,
            key=key,
            max_bytes=state.settings.max_message_bytes,
        )

    def _journal(self, event: str, key: str, **fields: Any) -> OutboundRecord:
        return journal_record(self.state, event, key, fields)

    def _refuse(self, opened: OpenedMessage, reason: str) -> list[OutboundRecord]:
        header = opened.header
        log.info("check-desk-refused", message_id=header.message_id, reason=reason)
        return [
            self._journal(
                "check-desk-refused",
                header.message_id,
                message_id=header.message_id,
                message_type=header.message_type.value,
                sender=header.sender,
                reason=reason,
            )
        ]
