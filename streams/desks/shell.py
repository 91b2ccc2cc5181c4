"""The one sealing shell of the desks: it turns their effects into the records a hub writes.

Theory of operation
-------------------
When a hub delivers a lane record whose recipients include ``ccc``, it opens the message
with its own key (every hub holds a ``ccc`` key) and hands it to ``DeskShell.handle``,
which dispatches by message type to the desk registered for it (notices, diffusions,
checks, teams, vehicles: each a ``streams.desks.context.EffectDesk``), builds the
``DeskContext`` from the hub's state, and makes records of the effects the desk returns;
``tick`` (every second) does the same for what the desks owe on time. In order:

* a ``Send`` is sealed from the hub once per recipient (``seal_from_hub``: CloudEvents
  and envelope headers, the sealed topic and key), each copy to that recipient's inbox;
* a ``Journal`` becomes a record on ``i247.control`` (``journal_event``: CloudEvents
  headers), after sealing its ``seal_for_ccc`` body into the event and folding it into
  the desks' state when asked;
* a ``PublishNotice`` becomes a record on the compacted notices topic, sealed for it;
* an ``AdmitTeam`` lays the team's keys over the hub's directory and queues its inbox
  topic for ``take_new_inboxes``.

Fence and trace headers are added by the runtime, as for every output of a worker.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import cast

import structlog

from brokers.records import OutboundRecord, ReceivedRecord
from schemas.bodies import Body, NoticeBody
from schemas.errors import RejectedMessage
from schemas.header import Language, MessageType, Precedence, RoutingHeader
from schemas.journal import DeskEvent
from schemas.participants import CCC
from schemas.sealing import OpenedMessage, open_sealed, parse_envelope, seal
from streams.desks.ccc_desk import open_for_ccc, seal_for_ccc, seal_from_hub
from streams.desks.context import DeskContext, EffectDesk
from streams.desks.effects import AdmitTeam, Effect, Journal, PublishNotice, Send
from streams.desks.hub_state import HubState, journal_event

__all__ = ["DeskShell"]

log = structlog.get_logger("i247.desks")


class DeskShell:
    """The CCC's desks on one hub: dispatch by message type, the context each desk reads,
    and the records of what they say."""

    def __init__(self, state: HubState) -> None:
        self.state = state
        self.desks: list[EffectDesk] = []
        self.counts: Counter[str] = Counter()
        self._new_inboxes: list[str] = []

    def register(self, desk: EffectDesk) -> None:
        taken = {t for d in self.desks for t in d.handles} & desk.handles
        if taken:
            raise ValueError(f"message types {sorted(taken)} already have a desk")
        self.desks.append(desk)

    def handle(self, opened: OpenedMessage, now: datetime) -> list[OutboundRecord]:
        """The records of what the desk for ``opened``'s type says; none if no desk takes it."""
        kind = opened.header.message_type
        for desk in self.desks:
            if kind in desk.handles:
                self.counts[f"desk.{kind.value}"] += 1
                return self.carry_out(desk.handle(self.context(now), opened), now)
        self.counts["desk.unhandled"] += 1
        return []

    def tick(self, now: datetime) -> list[OutboundRecord]:
        """The records of what every desk says on time (renewals, deadlines, windows)."""
        out: list[OutboundRecord] = []
        for desk in self.desks:
            out += self.carry_out(desk.tick(self.context(now)), now)
        return out

    def context(self, now: datetime) -> DeskContext:
        state = self.state
        return DeskContext(
            now=now,
            hub=state.hub,
            directory=state.directory,
            roster=state.roster,
            desks=state.desks,
            topics=state.settings.topics,
            clock_scale=state.settings.clock_scale,
            calendar=state.settings.calendar,
            random_bytes=state.random_bytes,
            open_for_ccc=self._open_for_ccc,
        )

    def carry_out(self, effects: Iterable[Effect], now: datetime) -> list[OutboundRecord]:
        """The records of ``effects``, in their order."""
        out: list[OutboundRecord] = []
        for effect in effects:
            if isinstance(effect, Send):
                out += self._send(effect, now)
            elif isinstance(effect, Journal):
                out.append(self._journal_record(effect, now))
            elif isinstance(effect, PublishNotice):
                out.append(self._publish(effect, now))
            else:
                self._admit(effect)
        return out

    def take_new_inboxes(self) -> list[str]:
        """Inbox topics of teams admitted since the last call; the runtime creates them."""
        taken, self._new_inboxes = self._new_inboxes, []
        return taken

    def _send(self, send: Send, now: datetime) -> list[OutboundRecord]:
        if not send.to:
            return []
        state = self.state
        _, records = seal_from_hub(
            send.body,
            send.to,
            hub=state.identity,
            directory=state.directory,
            topics=state.settings.topics,
            now=now,
            random_bytes=state.random_bytes,
            precedence=send.precedence,
            correlation_id=send.correlation_id,
            flags=send.flags,
        )
        return records

    def _journal_record(self, effect: Journal, now: datetime) -> OutboundRecord:
        state = self.state
        event = effect.event
        if effect.seal_for_ccc is not None:
            sealed = seal_for_ccc(
                effect.seal_for_ccc,
                hub=state.identity,
                directory=state.directory,
                topic=state.settings.topics.control,
                key=effect.key,
                now=now,
                random_bytes=state.random_bytes,
            )
            event = event.model_copy(update={"sealed": sealed})
        if effect.fold:
            state.desks.fold(cast(DeskEvent, event))
        return journal_event(state, event, effect.key)

    def _publish(self, publish: PublishNotice, now: datetime) -> OutboundRecord:
        """The notice's latest state for the compacted topic, sealed for it and its key."""
        state, notice = self.state, publish.notice
        topics, identity, random_bytes = state.settings.topics, state.identity, state.random_bytes
        header = RoutingHeader(
            message_id=str(uuid.UUID(bytes=random_bytes(16), version=4)),
            sender=identity.participant,
            recipients=[*publish.recipients, CCC],
            message_type=MessageType.NOTICE,
            precedence=Precedence.ROUTINE,
            created_at=now,
            language=Language.EN,
            correlation_id=notice.notice_id,
            trace_id=random_bytes(16).hex(),
        )
        key = notice.notice_id.encode()
        sealed = seal(
            header,
            NoticeBody(notice=notice),
            sender=identity,
            directory=state.directory,
            topic=topics.notices,
            key=key,
            random_bytes=random_bytes,
        ).to_bytes()
        headers = (
            ("i247-sealed-topic", topics.notices.encode()),
            ("i247-sealed-key", key),
            ("i247-notice-version", str(notice.version).encode()),
            ("i247-hub", identity.participant.encode()),
        )
        return OutboundRecord(topics.notices, key, sealed, headers)

    def open_stored(self, record: ReceivedRecord) -> OpenedMessage | None:
        """A record of a topic the hub reads (the notices topic), opened with its key as
        sealed for that topic and key; ``None``, logged, if it does not open."""
        state = self.state
        try:
            sealed = parse_envelope(record.value, max_bytes=state.settings.max_message_bytes)
            return open_sealed(
                sealed,
                topic=record.topic,
                key=record.key or b"",
                directory=state.directory,
                identity=state.identity,
            )
        except RejectedMessage as refusal:
            log.error("notice-record-unreadable", origin=record.origin, detail=str(refusal))
            return None

    def _admit(self, admit: AdmitTeam) -> None:
        state = self.state
        state.directory = state.directory.with_identities([admit.identity])
        self._new_inboxes.append(state.settings.topics.inbox(admit.identity.participant))

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
