"""The CCC's notice desk: review requests, broadcast notices, run their clock, record diffusions.

Theory of operation
-------------------
The hub hands the desk every opened message addressed to ``ccc`` of four kinds:

* ``notice-request``: the desk checks that the sender is the requesting NCB (else it
  refuses, ``not-requester``), opens the notice (``NoticeLifecycle.open``), starts the
  review, runs ``review_notice`` against the notices it holds and carries the outcome out
  (``decide``). The outcome goes back to the sender as a ``notice-decision``, sealed from
  the hub. A request answered once (published or refused) gets the same answer again if it
  comes back (a redelivery, say); a returned one is reviewed again.
* ``notice-action``: the requester suspends, reinstates, renews or cancels its notice. Any
  other sender, an unknown notice or a move the lifecycle forbids is refused with a
  ``message`` from the hub that says why.
* ``diffusion``: NCBs address diffusions to their recipients *and* ``ccc``; the desk
  records each in its ``DiffusionLedger``.
* ``diffusion-recall``: from the diffusion's own sender; ``recall_diffusion`` does the same
  for the CCC after a compliance finding. The recall goes to every original recipient and
  the sender.

A notice change recipients must see (publish, suspend, reinstate, renew, cancel, expire)
is *broadcast*: one seal from the hub, copied to the inbox of every recipient
(``broadcast_recipients``: all 196 NCBs or one region's members, plus the teams it
concerns, plus the requester), and one record on the compacted notices topic, key the
notice id, value the envelope of the latest state sealed for the topic and that key,
addressed to the same recipients **and** ``ccc``. So the topic stays as confidential as
the inboxes (only the recipients, the hubs and the auditor can open it), a late NCB opens
its own copy from it, and every hub rebuilds the notices in force from it (``restore``,
fed by a tail of the topic from its start, so each hub also follows the others' writes).

``tick`` runs the clock (``NoticeLifecycle.tick``, scaled by ``Settings.clock_scale``):
the renewal prompt to the requester, then the expiry broadcast. Only the hub on intake
duty ticks (``on_duty``), so three hubs do not prompt three times. A prompt raises the
notice's version (``prompted_at``); that version is written to the topic only, not to
the inboxes (recipients need not see it), so a hub that takes over does not prompt again.

Journal events (``i247.control``, key the notice or diffusion id), which the simulator's
summary can count: ``notice-requested``, ``notice-decided`` (``decision``: published,
refused or returned; ``reasons``: the codes), ``notice-transition`` (``transition``: the
lifecycle event), ``notice-broadcast`` (``recipients``: inbox copies written),
``notice-action-refused``, ``renewal-prompted``, ``diffusion-recorded`` (``recipients``),
``diffusion-not-recorded``, ``diffusion-recalled`` (``recipients``),
``diffusion-recall-refused``, ``notice-desk-failed`` (a fault, the message skipped).

Returned requests survive a hub change: ``notice-decided`` carries the returned notice's
``version``, and every hub folds it (``streams.desk_state``). What does not: the answers
given to requests (a repeated request is reviewed afresh) and the diffusion ledger (a recall of a
diffusion recorded by a hub since gone is refused as unknown; journal events carry the
ids and recipient counts but not the recipient lists, which would be needed to rebuild).

Worked example: FRA sends a Red Notice request for a murder suspect to ``ccc``. The desk
publishes ``red-<request id>`` version 3 (open, review, publish), sends FRA a
``notice-decision`` (published, with the notice id), copies the notice to 196 inboxes
and writes it to ``i247.notices``. FRA then sends ``notice-action`` cancel: version 4,
cancelled, broadcast the same way.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any

import structlog
from pydantic import ValidationError

from brokers.records import OutboundRecord, ReceivedRecord
from schemas.bodies import (
    Body,
    DiffusionBody,
    DiffusionRecallBody,
    MessageBody,
    NoticeActionBody,
    NoticeBody,
    NoticeDecisionBody,
    NoticeRequestBody,
    RenewalPromptBody,
)
from schemas.errors import RejectedMessage
from schemas.header import Language, MessageType, Precedence, RoutingHeader
from schemas.journal import (
    DiffusionRecalled,
    DiffusionRecorded,
    JournalEventModel,
    NoticeDecided,
)
from schemas.keys import Directory, PrivateIdentity
from schemas.notice_view import NoticeView, diffusion_from_message
from schemas.notices import (
    DiffusionRecall,
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
from schemas.participants import CCC, ParticipantKind, kind_of
from schemas.registry import MemberRegistry, Region, UnknownMember, default_registry
from schemas.sealing import OpenedMessage, RandomBytes, open_sealed, parse_envelope, seal
from schemas.topics import TopicCatalog
from streams.ccc_desk import seal_from_hub
from streams.desk_state import DeskState
from streams.diffusions import (
    AlreadyRecalled,
    ConflictingDiffusion,
    DiffusionLedger,
    UnknownDiffusion,
)
from streams.hub_state import HubState, journal_record
from streams.notice_lifecycle import (
    Broadcast,
    IllegalTransition,
    Journal,
    NoticeEvent,
    NoticeLifecycle,
    NotifyRequester,
    PromptRenewal,
    Transition,
    broadcast_recipients,
)
from streams.notice_review import review_notice

__all__ = ["ACTION_EVENTS", "Journaler", "NoticeDesk", "TeamsInScope", "notice_id_for"]

log = structlog.get_logger("i247.notices")

Journaler = Callable[[str, str, dict[str, Any]], OutboundRecord]
TeamsInScope = Callable[[], Iterable[tuple[str, Region]]]

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
    """Notices and diffusions at the CCC; a ``Desk`` for ``streams.ccc_desk.CccDesk``."""

    handles = frozenset(
        {
            MessageType.NOTICE_REQUEST,
            MessageType.NOTICE_ACTION,
            MessageType.DIFFUSION,
            MessageType.DIFFUSION_RECALL,
        }
    )

    def __init__(
        self,
        *,
        identity: PrivateIdentity,
        directory: Directory,
        topics: TopicCatalog,
        registry: MemberRegistry,
        lifecycle: NoticeLifecycle,
        journal: Journaler,
        random_bytes: RandomBytes,
        teams: TeamsInScope = _no_teams,
        on_duty: Callable[[], bool] = _always,
        max_bytes: int = 1_048_576,
        memory: int = 100_000,
        directory_of: Callable[[], Directory] | None = None,
        desks: DeskState | None = None,
    ) -> None:
        self.identity = identity
        self._directory = directory
        self._directory_of = directory_of
        self.topics = topics
        self.registry = registry
        self.lifecycle = lifecycle
        self.journal = journal
        self.random_bytes = random_bytes
        self.teams = teams  # the seam for a team registry: (team id, region deployed in)
        self.on_duty = on_duty
        self.max_bytes = max_bytes
        self.ledger = DiffusionLedger(registry)
        self._view = NoticeView()  # published and later states, by id, highest version
        # returned requests (by request id) are desk state, folded from ``notice-decided``
        self.desks = DeskState() if desks is None else desks
        self._answers: dict[str, NoticeDecisionBody] = {}  # final answers, by request id
        self._handled: OrderedDict[str, None] = OrderedDict()
        self._memory = memory

    @property
    def directory(self) -> Directory:
        """The hub's directory as it is now (it learns teams' keys as they are approved)."""
        return self._directory if self._directory_of is None else self._directory_of()

    @directory.setter
    def directory(self, directory: Directory) -> None:
        self._directory, self._directory_of = directory, None

    @classmethod
    def from_state(
        cls,
        state: HubState,
        *,
        registry: MemberRegistry | None = None,
        teams: TeamsInScope = _no_teams,
        on_duty: Callable[[], bool] = _always,
    ) -> NoticeDesk:
        """The desk of one hub process: its key, directory, topics, clock scale and journal."""
        settings = state.settings
        return cls(
            identity=state.identity,
            directory=state.directory,
            topics=settings.topics,
            registry=registry or default_registry(),
            lifecycle=NoticeLifecycle(scale=settings.calendar),
            journal=lambda event, key, fields: journal_record(state, event, key, fields),
            random_bytes=state.random_bytes,
            teams=teams,
            on_duty=on_duty,
            max_bytes=settings.max_message_bytes,
            directory_of=lambda: state.directory,
            desks=state.desks,
        )

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
        try:
            sealed = parse_envelope(record.value, max_bytes=self.max_bytes)
            opened = open_sealed(
                sealed,
                topic=record.topic,
                key=record.key or b"",
                directory=self.directory,
                identity=self.identity,
            )
        except RejectedMessage as refusal:
            log.error("notice-record-unreadable", origin=record.origin, detail=str(refusal))
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

    # --- the Desk protocol --------------------------------------------------------

    def handle(
        self, opened: OpenedMessage, record: ReceivedRecord, now: datetime
    ) -> list[OutboundRecord]:
        header, body = opened.header, opened.body
        if header.message_id in self._handled:
            log.info("ccc-message-again", message_id=header.message_id)
            return []
        self._handled[header.message_id] = None
        while len(self._handled) > self._memory:
            self._handled.popitem(last=False)
        try:
            return self._dispatch(header, body, now)
        except Exception:  # a desk fault must not stall the lane that carried the message
            log.exception("notice-desk-failed", message_id=header.message_id)
            fields = {"message_id": header.message_id, "type": header.message_type.value}
            return [self.journal("notice-desk-failed", header.message_id, fields)]

    def _dispatch(self, header: RoutingHeader, body: Body, now: datetime) -> list[OutboundRecord]:
        if isinstance(body, NoticeRequestBody):
            return self._request(header, body.request, now)
        if isinstance(body, NoticeActionBody):
            return self._action(header, body, now)
        if isinstance(body, DiffusionBody):
            return self._diffusion(header, body, now)
        if isinstance(body, DiffusionRecallBody):
            return self._recall_request(header, body.recall, now)
        return []

    def tick(self, now: datetime) -> list[OutboundRecord]:
        """Prompt renewals and expire notices, if this hub is on duty for the clock."""
        if not self.on_duty():
            return []
        out: list[OutboundRecord] = []
        for notice in self._view.snapshot()[0]:
            moved = self.lifecycle.tick(notice, now)
            if moved is not None:
                out += self._carry_out(moved, now, answer_to=None, correlation=None)
        return out

    # --- notice requests ----------------------------------------------------------

    def _request(
        self, header: RoutingHeader, request: NoticeRequest, now: datetime
    ) -> list[OutboundRecord]:
        notice_id = notice_id_for(request)
        fields = {
            "notice_id": notice_id,
            "request_id": request.request_id,
            "requester": request.requesting_ncb,
            "sender": header.sender,
            "colour": request.colour.value,
            "region": request.region.value if request.region else None,
        }
        out = [self.journal("notice-requested", notice_id, fields)]
        answered = self._answers.get(request.request_id)
        if answered is not None:  # published or refused before: the same answer again
            return out + self._decision(answered, header, now)
        held = self._view.latest(notice_id)
        if held is not None and held.request_id == request.request_id:
            # published by a hub since replaced (its lanes redelivered to us): the notice is
            # on the compacted topic, so this request was published; it is no duplicate
            outcome = ReviewOutcome(
                request_id=request.request_id, decision=ReviewDecision.PUBLISHED, reasons=()
            )
            answer = NoticeDecisionBody(outcome=outcome, notice_id=notice_id)
            self._answers[request.request_id] = answer
            out.append(self._decided(notice_id, header.sender, outcome, now))
            return out + self._decision(answer, header, now)
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
            out.append(self._decided(notice_id, header.sender, outcome, now))
            return out + self._decision(answer, header, now)
        notice = self.lifecycle.open(request, notice_id)
        returned = self.desks.returned.get(request.request_id)
        if returned is not None:  # completed after a return: same notice, next version
            notice = notice.model_copy(update={"version": returned})
        started = self.lifecycle.apply(notice, NoticeEvent.START_REVIEW, now=now)
        out += self._carry_out(started, now, answer_to=None, correlation=None)
        outcome = review_notice(request, notices_in_force=self.in_force(), now=now)
        decided = self.lifecycle.decide(started.notice, outcome, now=now)
        version = decided.notice.version
        out.append(self._decided(notice_id, header.sender, outcome, now, version))
        out += self._carry_out(decided, now, answer_to=header, correlation=header.message_id)
        return out

    def _decided(
        self,
        notice_id: str,
        requester: str,
        outcome: ReviewOutcome,
        now: datetime,
        version: int | None = None,
    ) -> OutboundRecord:
        """Journal a decision; a returned request's version is desk state every hub folds
        (``streams.desk_state``), so its completion is reviewed as the next version by
        whichever hub receives it. Folded here at once, and again from the journal."""
        event = NoticeDecided(
            hub=self.identity.participant,
            time=now,
            notice_id=notice_id,
            request_id=outcome.request_id,
            requester=requester,
            decision=outcome.decision.value,
            reasons=tuple(r.code.value for r in outcome.reasons),
            version=version,
        )
        self.desks.fold(event)
        return self._journal_event(event, notice_id)

    def _journal_event(self, event: JournalEventModel, key: str) -> OutboundRecord:
        """A typed journal event (``schemas.journal``), written by this desk's journal."""
        fields = event.model_dump(mode="json", exclude={"event", "hub", "time"})
        return self.journal(event.event_name, key, fields)

    def _decision(
        self, answer: NoticeDecisionBody, to: RoutingHeader, now: datetime
    ) -> list[OutboundRecord]:
        return self._send(answer, [to.sender], now, correlation=to.message_id)

    # --- notice actions -----------------------------------------------------------

    def _action(
        self, header: RoutingHeader, body: NoticeActionBody, now: datetime
    ) -> list[OutboundRecord]:
        notice = self._view.latest(body.notice_id)
        why: str | None = None
        if notice is None:
            why = f"no notice {body.notice_id} is published; check the id in your decision"
        elif header.sender != notice.requester:
            why = f"only {notice.requester}, which requested {body.notice_id}, may act on it"
        if notice is None or why is not None:
            return self._refuse_action(header, body, now, why or "")
        try:
            moved = self.lifecycle.apply(
                notice, ACTION_EVENTS[body.action], now=now, by=header.sender
            )
        except (IllegalTransition, PermissionError) as refusal:
            return self._refuse_action(header, body, now, str(refusal))
        return self._carry_out(moved, now, answer_to=None, correlation=header.message_id)

    def _refuse_action(
        self, header: RoutingHeader, body: NoticeActionBody, now: datetime, why: str
    ) -> list[OutboundRecord]:
        fields = {
            "notice_id": body.notice_id,
            "action": body.action.value,
            "by": header.sender,
            "why": why,
        }
        reply = MessageBody(subject=f"notice action refused: {body.notice_id}", text=why)
        return [
            self.journal("notice-action-refused", body.notice_id, fields),
            *self._send(reply, [header.sender], now, correlation=header.message_id),
        ]

    # --- effects ------------------------------------------------------------------

    def _carry_out(
        self,
        moved: Transition,
        now: datetime,
        *,
        answer_to: RoutingHeader | None,
        correlation: str | None,
    ) -> list[OutboundRecord]:
        """Journal, broadcast and answer what one lifecycle transition says."""
        notice = moved.notice
        if notice.state in _CIRCULATED:
            self._view.apply(notice)
        out: list[OutboundRecord] = []
        for effect in moved.effects:
            if isinstance(effect, Journal):
                out.append(self._transition(effect))
            elif isinstance(effect, Broadcast):
                out += self._broadcast(effect.notice, now, correlation)
            elif isinstance(effect, NotifyRequester) and effect.outcome is not None:
                answer = NoticeDecisionBody(
                    outcome=effect.outcome,
                    notice_id=notice.notice_id if effect.state is NoticeState.PUBLISHED else None,
                )
                if effect.outcome.decision is not ReviewDecision.RETURNED:
                    self._answers[effect.outcome.request_id] = answer
                to = answer_to.sender if answer_to is not None else effect.ncb
                out += self._send(answer, [to], now, correlation=correlation)
            elif isinstance(effect, PromptRenewal):
                prompt = effect.prompt
                out += self._send(
                    RenewalPromptBody(prompt=prompt), [prompt.requester], now, correlation=None
                )
                out.append(self._compacted(notice, self._recipients(notice), now))
                out.append(
                    self.journal(
                        "renewal-prompted",
                        prompt.notice_id,
                        {
                            "notice_id": prompt.notice_id,
                            "requester": prompt.requester,
                            "version": prompt.version,
                            "expires_at": prompt.expires_at.isoformat(),
                        },
                    )
                )
            # NotifyRequester without an outcome: the requester is among the broadcast's
            # recipients (``_recipients`` adds it), so the broadcast is its notification.
        return out

    def _transition(self, effect: Journal) -> OutboundRecord:
        return self.journal(
            "notice-transition",
            effect.notice_id,
            {
                "notice_id": effect.notice_id,
                "transition": effect.event.value,
                "from_state": effect.from_state.value,
                "to_state": effect.to_state.value,
                "version": effect.version,
                "by": effect.by,
            },
        )

    def _recipients(self, notice: Notice) -> tuple[str, ...]:
        chosen = broadcast_recipients(notice, self.registry, self.teams())
        chosen = chosen if notice.requester in chosen else (*chosen, notice.requester)
        unknown = [r for r in chosen if r not in self.directory]
        if unknown:  # a team whose keys this hub has not folded yet: the others still get it
            log.warning("notice-recipients-unknown", notice_id=notice.notice_id, unknown=unknown)
        return tuple(r for r in chosen if r in self.directory)

    def _broadcast(
        self, notice: Notice, now: datetime, correlation: str | None
    ) -> list[OutboundRecord]:
        recipients = self._recipients(notice)
        _, copies = seal_from_hub(
            NoticeBody(notice=notice),
            recipients,
            hub=self.identity,
            directory=self.directory,
            topics=self.topics,
            now=now,
            random_bytes=self.random_bytes,
            precedence=Precedence.ROUTINE,
            correlation_id=correlation or notice.notice_id,
        )
        fields = {
            "notice_id": notice.notice_id,
            "version": notice.version,
            "state": notice.state.value,
            "region": notice.region.value if notice.region else None,
            "recipients": len(copies),
        }
        return [
            *copies,
            self._compacted(notice, recipients, now),
            self.journal("notice-broadcast", notice.notice_id, fields),
        ]

    def _compacted(
        self, notice: Notice, recipients: Sequence[str], now: datetime
    ) -> OutboundRecord:
        """The notice's latest state for the compacted topic, sealed for it and its key."""
        header = RoutingHeader(
            message_id=str(uuid.UUID(bytes=self.random_bytes(16), version=4)),
            sender=self.identity.participant,
            recipients=[*recipients, CCC],
            message_type=MessageType.NOTICE,
            precedence=Precedence.ROUTINE,
            created_at=now,
            language=Language.EN,
            correlation_id=notice.notice_id,
            trace_id=self.random_bytes(16).hex(),
        )
        key = notice.notice_id.encode()
        sealed = seal(
            header,
            NoticeBody(notice=notice),
            sender=self.identity,
            directory=self.directory,
            topic=self.topics.notices,
            key=key,
            random_bytes=self.random_bytes,
        ).to_bytes()
        headers = (
            ("i247-sealed-topic", self.topics.notices.encode()),
            ("i247-sealed-key", key),
            ("i247-notice-version", str(notice.version).encode()),
            ("i247-hub", self.identity.participant.encode()),
        )
        return OutboundRecord(self.topics.notices, key, sealed, headers)

    def _send(
        self, body: Body, recipients: Sequence[str], now: datetime, *, correlation: str | None
    ) -> list[OutboundRecord]:
        _, copies = seal_from_hub(
            body,
            recipients,
            hub=self.identity,
            directory=self.directory,
            topics=self.topics,
            now=now,
            random_bytes=self.random_bytes,
            correlation_id=correlation,
        )
        return copies

    # --- diffusions ---------------------------------------------------------------

    def _diffusion(
        self, header: RoutingHeader, body: DiffusionBody, now: datetime
    ) -> list[OutboundRecord]:
        try:
            diffusion = diffusion_from_message(header, body)
            recipients = self.ledger.record(diffusion)
        except (ValidationError, UnknownMember, ConflictingDiffusion) as problem:
            failed = {"diffusion_id": header.message_id, "sender": header.sender}
            log.warning("diffusion-not-recorded", **failed, detail=str(problem))
            return [self.journal("diffusion-not-recorded", header.message_id, dict(failed))]
        recorded = DiffusionRecorded(
            hub=self.identity.participant,
            time=now,
            diffusion_id=diffusion.diffusion_id,
            sender=diffusion.sender,
            region=diffusion.region.value if diffusion.region else None,
            recipients=len(recipients),
            reached=tuple(recipients),  # addressing only: every hub folds it (``restore``)
        )
        return [self._journal_event(recorded, diffusion.diffusion_id)]

    def fold_journal(self, event: DiffusionRecorded | DiffusionRecalled) -> None:
        """Follow the diffusions other hubs recorded and recalled (from ``i247.control``)."""
        if isinstance(event, DiffusionRecorded):
            self.ledger.restore(event.diffusion_id, event.sender, event.reached, recalled=False)
        elif self.ledger.sender_of(event.diffusion_id) is not None:
            self.ledger.restore(event.diffusion_id, event.sender, (), recalled=True)

    def _recall_request(
        self, header: RoutingHeader, recall: DiffusionRecall, now: datetime
    ) -> list[OutboundRecord]:
        sender = self.ledger.sender_of(recall.diffusion_id)
        if sender is not None and sender != header.sender:
            why = f"only {sender}, which sent {recall.diffusion_id}, may recall it"
            return self._refuse_recall(recall, header.sender, now, why, header.message_id)
        return self.recall_diffusion(recall, now, by=header.sender, correlation=header.message_id)

    def recall_diffusion(
        self,
        recall: DiffusionRecall,
        now: datetime,
        *,
        by: str = CCC,
        correlation: str | None = None,
    ) -> list[OutboundRecord]:
        """Recall a recorded diffusion: every original recipient and its sender are told.

        ``by`` is ``ccc`` for the CCC's own recall (a compliance finding) or the sending NCB.
        """
        try:
            effect = self.ledger.recall(recall)
        except (UnknownDiffusion, AlreadyRecalled) as refusal:
            return self._refuse_recall(recall, by, now, str(refusal), correlation)
        told = tuple(sorted({*effect.recipients, effect.sender}))
        recalled = DiffusionRecalled(
            hub=self.identity.participant,
            time=now,
            diffusion_id=recall.diffusion_id,
            reason=recall.reason.value,
            by=by,
            sender=effect.sender,
            recipients=len(effect.recipients),
        )
        return [
            *self._send(DiffusionRecallBody(recall=recall), told, now, correlation=correlation),
            self._journal_event(recalled, recall.diffusion_id),
        ]

    def _refuse_recall(
        self, recall: DiffusionRecall, by: str, now: datetime, why: str, correlation: str | None
    ) -> list[OutboundRecord]:
        fields = {"diffusion_id": recall.diffusion_id, "by": by, "why": why}
        out = [self.journal("diffusion-recall-refused", recall.diffusion_id, fields)]
        if by != CCC and kind_of(by) is ParticipantKind.NCB:
            reply = MessageBody(subject=f"recall refused: {recall.diffusion_id}", text=why)
            out += self._send(reply, [by], now, correlation=correlation)
        return out
