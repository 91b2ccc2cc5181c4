"""An NCB adapter: how one member country's bureau publishes to, and reads from, I-24/7.

It seals what it sends (``compose``), opens what reaches its inbox (``receive``) and
acknowledges what it handled (``acknowledgement``). Opening checks that a record was
sealed for a topic the adapter expects (the inbound topic, or its own inbox for what the
CCC itself sealed there), and drops a message id it already opened, so the bureau sees
each message once however often Kafka redelivers it. Delivery receipts come as batches
signed by a hub (``schemas.receipts``): verified against the hub's key, their receipts
deduplicated by receipt id the same way (``Receipted``). The adapter does no I/O itself; the
simulator or a real bureau's gateway carries its records to and from Kafka.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from brokers.record_headers import TraceParent, envelope_headers, is_receipt_batch
from brokers.records import OutboundRecord, ReceivedRecord
from schemas import header_names as names
from schemas.bodies import AcknowledgementBody, Body
from schemas.errors import RejectedMessage, RejectReason
from schemas.header import HeaderFlag, Language, MessageType, Precedence, RoutingHeader, Suite
from schemas.keys import Directory, PrivateIdentity
from schemas.leases import FenceTag, FenceVerdict, LeaseBook, fence_tag, judge
from schemas.markings import HandlingCode, Tlp
from schemas.receipts import Receipt, listed_receipts, verify_receipts
from schemas.sealing import RandomBytes, open_sealed, parse_envelope, seal
from schemas.topics import TopicCatalog

__all__ = ["Duplicate", "Fenced", "Inbound", "NcbAdapter", "Opened", "Receipted", "Unopened"]


@dataclass(frozen=True, slots=True)
class Opened:
    """A message this NCB opened for the first time."""

    header: RoutingHeader
    body: Body
    precedence: Precedence
    hub: str | None


@dataclass(frozen=True, slots=True)
class Duplicate:
    message_id: str


@dataclass(frozen=True, slots=True)
class Unopened:
    """A record in the inbox that this NCB refuses to trust, and why."""

    reason: RejectReason | str
    detail: str


@dataclass(frozen=True, slots=True)
class Fenced:
    """A delivery made by a hub whose lease term on that lane had already ended there.

    ``deliveries`` is how many it stood for: a receipt batch's receipts as it lists them
    (counted, not trusted: a fenced record is never verified), else one.
    """

    tag: FenceTag
    deliveries: int = 1


@dataclass(frozen=True, slots=True)
class Receipted:
    """A verified receipt batch: the receipts new to this NCB, and the ids it had seen."""

    hub: str
    receipts: tuple[Receipt, ...]
    duplicates: tuple[str, ...] = ()


Inbound = Opened | Duplicate | Unopened | Fenced | Receipted


@dataclass
class NcbAdapter:
    identity: PrivateIdentity
    directory: Directory
    topics: TopicCatalog
    max_bytes: int = 1_048_576
    memory: int = 100_000
    _opened: OrderedDict[str, None] = field(default_factory=OrderedDict)
    _receipted: OrderedDict[str, None] = field(default_factory=OrderedDict)

    @property
    def participant(self) -> str:
        return self.identity.participant

    @property
    def inbox(self) -> str:
        return self.topics.inbox(self.participant)

    def compose(
        self,
        recipients: Sequence[str],
        body: Body,
        *,
        now: datetime,
        random_bytes: RandomBytes,
        precedence: Precedence = Precedence.ROUTINE,
        language: Language = Language.EN,
        flags: Sequence[HeaderFlag] = (),
        case_id: str | None = None,
        correlation_id: str | None = None,
        handling: HandlingCode = HandlingCode.H0,
        tlp: Tlp = Tlp.AMBER,
        suite: Suite = Suite.X25519,
        trace: TraceParent | None = None,
    ) -> tuple[RoutingHeader, OutboundRecord]:
        """Seal ``body`` for ``recipients`` as a record for the inbound topic.

        ``trace``: the sender's span (trace id, span id, sampled) when it traces; the header's
        ``trace_id`` and the record's ``traceparent`` then name it. Else both are drawn."""
        header = RoutingHeader(
            message_id=str(uuid.UUID(bytes=random_bytes(16), version=4)),
            sender=self.participant,
            recipients=list(recipients),
            message_type=MessageType(body.type),
            precedence=precedence,
            created_at=now,
            language=language,
            case_id=case_id,
            correlation_id=correlation_id,
            trace_id=trace.trace_id if trace else random_bytes(16).hex(),
            handling=handling,
            tlp=tlp,
            flags=list(flags),
            suite=suite,
        )
        key = self.participant.encode()
        sealed = seal(
            header,
            body,
            sender=self.identity,
            directory=self.directory,
            topic=self.topics.inbound,
            key=key,
            random_bytes=random_bytes,
        )
        record = OutboundRecord(
            self.topics.inbound,
            key,
            sealed.to_bytes(),
            envelope_headers(header, trace.parent_id, sampled=trace.sampled)
            if trace
            else envelope_headers(header, random_bytes(8).hex()),
        )
        return header, record

    def receive(self, record: ReceivedRecord, *, leases: LeaseBook | None = None) -> Inbound:
        """Open one inbox record, or say why not; a message id opened before is a duplicate.

        With ``leases`` (the lease journal folded at least up to when ``record`` was read),
        a delivery made outside its hub's lease term is ``Fenced``, never opened.
        """
        if leases is not None:
            tag = fence_tag(record.headers)
            if tag is None:
                return Unopened("unfenced", "no lease tag: not delivered by a CCC hub's lane")
            verdict = judge(leases, tag.unit, tag.epoch, tag.partition, tag.offset)
            if verdict is FenceVerdict.FENCED:
                batch = is_receipt_batch(record.headers)
                return Fenced(tag, listed_receipts(record.value) if batch else 1)
            if verdict is FenceVerdict.UNKNOWN:
                return Unopened(
                    "unknown-epoch", f"{tag.unit}@{tag.epoch}: catch up the lease journal first"
                )
        if is_receipt_batch(record.headers):
            return self._receipts(record)
        sealed_topic = (record.header(names.SEALED_TOPIC) or b"").decode()
        sealed_key = record.header(names.SEALED_KEY) or b""
        if sealed_topic not in (self.topics.inbound, self.inbox):
            return Unopened("unexpected-origin", f"sealed for {sealed_topic!r}, not for this NCB")
        try:
            sealed = parse_envelope(record.value, max_bytes=self.max_bytes)
            if sealed.header.message_id in self._opened:
                return Duplicate(sealed.header.message_id)
            opened = open_sealed(
                sealed,
                topic=sealed_topic,
                key=sealed_key,
                directory=self.directory,
                identity=self.identity,
            )
        except RejectedMessage as refusal:
            return Unopened(refusal.reason, str(refusal))
        self._opened[opened.header.message_id] = None
        while len(self._opened) > self.memory:
            self._opened.popitem(last=False)
        assessed = record.header(names.PRECEDENCE)
        hub = record.header(names.HUB)
        return Opened(
            opened.header,
            opened.body,
            Precedence(assessed.decode()) if assessed else opened.header.precedence,
            hub.decode() if hub else None,
        )

    def _receipts(self, record: ReceivedRecord) -> Receipted | Unopened:
        """Verify a hub's receipt batch for this inbox; keep the receipts not seen before."""
        try:
            batch = verify_receipts(
                record.value,
                topic=self.inbox,
                key=record.key or b"",
                directory=self.directory,
                max_bytes=self.max_bytes,
            )
        except RejectedMessage as refusal:
            return Unopened(refusal.reason, str(refusal))
        if batch.sender != self.participant:
            return Unopened("unexpected-origin", f"receipts for {batch.sender}, not this NCB")
        fresh: list[Receipt] = []
        seen: list[str] = []
        for item in batch.items:
            if item.receipt_id in self._receipted:
                seen.append(item.receipt_id)
                continue
            self._receipted[item.receipt_id] = None
            fresh.append(item)
        while len(self._receipted) > self.memory:
            self._receipted.popitem(last=False)
        return Receipted(batch.hub, tuple(fresh), tuple(seen))

    def acknowledgement(
        self,
        opened: Opened,
        *,
        now: datetime,
        random_bytes: RandomBytes,
        trace: TraceParent | None = None,
    ) -> OutboundRecord:
        """Tell the sender (through the CCC) that this NCB has handled ``opened``
        (``trace``: the acknowledging span, as for ``compose``)."""
        _, record = self.compose(
            [opened.header.sender],
            AcknowledgementBody(acknowledged=opened.header.message_id),
            now=now,
            random_bytes=random_bytes,
            precedence=opened.precedence,
            language=opened.header.language,
            case_id=opened.header.case_id,
            correlation_id=opened.header.message_id,
            trace=trace,
        )
        return record
