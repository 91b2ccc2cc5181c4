"""The CCC's checks desk: database checks, hit escalations, hit confirmations, multi-country
queries. A thin shell around ``answer_check``, ``HitConfirmations`` and
``MultiCountryCollector``: it seals what they decide and journals what happened.

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

State: the exchanges and collections live in the hub that opened them (a hub change
loses the open ones: their confirmations and replies are then journaled as not matched).

Worked example: FRA checks passenger "Jean Dupont" (BEL's Red Notice) while Lyon is on
duty: FRA's inbox gets a ``check-answer`` with one hit, then a FLASH ``message``; BEL gets
the same FLASH message and a ``hit-confirmation-request``; the control topic gets
``check-answered``, ``check-hit-escalated`` and ``hit-confirmation-requested``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import structlog

from brokers.records import OutboundRecord, ReceivedRecord
from schemas.bodies import Body, MessageBody
from schemas.checks import (
    CheckRequest,
    HitConfirmation,
    HitConfirmationRequest,
    MultiCountryQuery,
    MultiCountryReply,
    Urgency,
)
from schemas.errors import UnknownParticipant
from schemas.header import HeaderFlag, MessageType, Precedence, format_timestamp
from schemas.participants import ParticipantKind, hub_id, kind_of
from schemas.sealing import OpenedMessage
from streams.ccc_desk import seal_from_hub
from streams.checks import Escalation, answer_check
from streams.databases import Databases
from streams.hit_confirmation import Breach, HitConfirmations, Reminder
from streams.hub_state import HubState, journal_record
from streams.multi_country import MultiCountryCollector, ReplyOutcome

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

    def __init__(self, state: HubState, databases: Databases) -> None:
        self.state = state
        self.databases = databases
        self.confirmations = HitConfirmations(scale=state.settings.clock_scale)
        self.collector = MultiCountryCollector(scale=state.settings.clock_scale)
        self._requests: dict[str, HitConfirmationRequest] = {}  # open exchanges, to remind
        self._askers: dict[str, str] = {}  # query id -> asker, for late replies

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
            self._journal(
                "check-answered",
                request.correlation_id,
                correlation_id=request.correlation_id,
                asker=request.asker,
                items=len(request.items),
                hits=hits,
                escalations=len(outcome.escalations),
                confirmations=len(outcome.confirmations),
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
            self._journal(
                "check-hit-escalated",
                escalation.correlation_id,
                correlation_id=escalation.correlation_id,
                item_index=escalation.item_index,
                database=record.database.value,
                owner=record.owner,
                hub_on_duty=hubs[0] if hubs else None,
                recipients=list(escalation.recipients),
                flag=escalation.flag.value,
                precedence=escalation.precedence.value,
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
        self.confirmations.open(request, now)
        self._requests[request.confirmation_id] = request
        deadline = now + self.confirmations.deadline_for(request.urgency)
        out = self._seal(
            request,
            [request.owner],
            now,
            precedence=_URGENCY_PRECEDENCE[request.urgency],
            correlation_id=request.confirmation_id,
        )
        out.append(
            self._journal(
                "hit-confirmation-requested",
                request.confirmation_id,
                confirmation_id=request.confirmation_id,
                correlation_id=request.correlation_id,
                owner=request.owner,
                urgency=request.urgency.value,
                deadline=format_timestamp(deadline),
            )
        )
        return out

    def _confirm(self, confirmation: HitConfirmation, now: datetime) -> list[OutboundRecord]:
        in_time = self.confirmations.confirm(confirmation, now)
        if in_time:
            self._requests.pop(confirmation.confirmation_id, None)
        return [
            self._journal(
                "hit-confirmed",
                confirmation.confirmation_id,
                confirmation_id=confirmation.confirmation_id,
                owner=confirmation.owner,
                confirmed=confirmation.confirmed,
                in_time=in_time,
            )
        ]

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
        self.collector.open(query, now)
        self._askers[query.query_id] = query.asker
        out = self._seal(query, list(query.targets), now, correlation_id=query.query_id)
        out.append(
            self._journal(
                "multi-country-opened",
                query.query_id,
                query_id=query.query_id,
                asker=query.asker,
                targets=list(query.targets),
                closes_at=format_timestamp(now + self.collector.window_for(query)),
            )
        )
        return out

    def _reply(self, reply: MultiCountryReply, now: datetime) -> list[OutboundRecord]:
        outcome = self.collector.add_reply(reply, now)
        out = [
            self._journal(
                "multi-country-reply",
                reply.query_id,
                query_id=reply.query_id,
                responder=reply.responder,
                outcome=outcome.value,
            )
        ]
        asker = self._askers.get(reply.query_id)
        if outcome is ReplyOutcome.LATE and asker is not None:
            out += self._seal(reply, [asker], now, correlation_id=reply.query_id)
        return out

    # --- clocks -------------------------------------------------------------------

    def tick(self, now: datetime) -> list[OutboundRecord]:
        out: list[OutboundRecord] = []
        for owed in self.confirmations.due(now):
            out += (
                self._remind(owed, now) if isinstance(owed, Reminder) else self._breach(owed, now)
            )
        for answer in self.collector.due(now):
            out += self._seal(answer, [answer.asker], now, correlation_id=answer.query_id)
            out.append(
                self._journal(
                    "multi-country-consolidated",
                    answer.query_id,
                    query_id=answer.query_id,
                    asker=answer.asker,
                    answered=sorted(answer.answers),
                    silent=list(answer.silent),
                )
            )
        return out

    def _remind(self, reminder: Reminder, now: datetime) -> list[OutboundRecord]:
        request = self._requests.get(reminder.confirmation_id)
        out = [
            self._journal(
                "hit-confirmation-reminder",
                reminder.confirmation_id,
                confirmation_id=reminder.confirmation_id,
                owner=reminder.owner,
                deadline=format_timestamp(reminder.deadline),
            )
        ]
        if request is not None:  # the request again: the owner's reminder
            out += self._seal(
                request,
                [reminder.owner],
                now,
                precedence=_URGENCY_PRECEDENCE[reminder.urgency],
                correlation_id=reminder.confirmation_id,
            )
        return out

    def _breach(self, breach: Breach, now: datetime) -> list[OutboundRecord]:
        self._requests.pop(breach.confirmation_id, None)
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
        out.append(
            self._journal(
                "hit-confirmation-breach",
                breach.confirmation_id,
                confirmation_id=breach.confirmation_id,
                owner=breach.owner,
                asker=breach.asker,
                urgency=breach.urgency.value,
                late_seconds=round(breach.late_seconds, 3),
                hub_on_duty=on_duty,
            )
        )
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
