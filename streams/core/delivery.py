"""Delivery: from a lane record to recipients' inboxes, receipts and clock events.

Theory of operation: ``plan_delivery`` reads one lane record (the sender's sealed bytes,
already admitted by intake) and returns effects as data: one inbox record per NCB or team
recipient (unless this process planned that delivery from another lane record: a
duplicate), one receipt order per such delivery, the handling clock to start, and, for an
acknowledgement, the clock to stop. Messages to
``ccc`` are handled by the hub itself (``to_ccc``). The shell produces the records, turns
the receipt orders into signed receipt batches (``receipt_records``, one per sender) and
journals the clock events (a ``ClockBatch`` per handled batch: ``clocks-opened`` for the
deliveries that start a handling clock, ``clocks-stopped`` for acknowledgements), which
every hub folds into its ``streams.core.desk_state.DeskState``, so whichever hub holds intake
runs the clocks.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from brokers.record_headers import receipt_batch_headers
from brokers.records import OutboundRecord, ReceivedRecord
from schemas import header_names as names
from schemas.header import MessageType, Precedence, RoutingHeader
from schemas.journal import ClocksOpened, ClocksStopped, OpenedClock, StoppedClock
from schemas.keys import PrivateIdentity
from schemas.participants import CCC, ParticipantKind, kind_of
from schemas.receipts import MAX_RECEIPTS, Receipt, receipt_id_for, sign_receipts
from schemas.sealing import parse_envelope
from schemas.topics import TopicCatalog

__all__ = [
    "Acknowledge",
    "ClockBatch",
    "DeliveryLedger",
    "DeliveryPlan",
    "Origin",
    "ReceiptOrder",
    "ledger_horizon",
    "plan_delivery",
    "receipt_id_for",
    "receipt_records",
]

_NO_RECEIPTS = frozenset({MessageType.DELIVERY_RECEIPT, MessageType.ACKNOWLEDGEMENT})


@dataclass(frozen=True, slots=True)
class ReceiptOrder:
    """Tell ``sender`` that ``message_id`` reached ``recipient``."""

    header: RoutingHeader
    recipient: str
    precedence: Precedence


@dataclass(frozen=True, slots=True)
class Acknowledge:
    """``recipient`` has handled ``message_id``: stop that clock."""

    message_id: str
    recipient: str


@dataclass(frozen=True, slots=True)
class DeliveryPlan:
    header: RoutingHeader
    precedence: Precedence
    inbox: tuple[OutboundRecord, ...] = ()
    receipts: tuple[ReceiptOrder, ...] = ()
    to_ccc: bool = False
    acknowledge: Acknowledge | None = None
    clocked_recipients: tuple[str, ...] = ()
    duplicates: tuple[str, ...] = ()


Origin = tuple[str, int, int]
"""The lane record a delivery was planned from: (topic, partition, offset)."""


LEDGER_MARGIN = timedelta(seconds=60)
"""Added to intake's window: hubs' clocks and a lane's writes across a takeover differ."""


def ledger_horizon(freshness: timedelta, future_skew: timedelta) -> timedelta:
    """How long (in creation time) a pair can still be duplicated: see ``DeliveryLedger``."""
    return freshness + future_skew + LEDGER_MARGIN


DEFAULT_LEDGER_HORIZON = ledger_horizon(timedelta(seconds=300), timedelta(seconds=60))


class DeliveryLedger:
    """Which lane record each (message, recipient) pair was planned from, for as long as a
    duplicate of it can still come.

    A pair planned from a DIFFERENT lane record is a duplicate (intake admitted the message
    twice, e.g. after a failover) and is skipped. The SAME lane record read again is planned
    again: the loop reads a record twice only when its outputs were not acknowledged (the
    worker restarted from its positions), so skipping it would lose the delivery. Across
    restarts recipients deduplicate by message id themselves.

    Bounded by time, not by count: intake admits a message only within its freshness window
    of the message's signed creation time (plus a future skew), so both admissions of a
    duplicate fall in that window, and so does every record its lane partition holds
    between them. A pair is therefore forgotten once its partition has planned a message
    created ``horizon`` (at least the window plus the skew) after it. The ledger holds about
    rate x horizon pairs and stops growing after one horizon, whatever the run's length.
    """

    __slots__ = ("_expiry", "_newest", "_pairs", "_topics", "horizon")

    def __init__(self, horizon: timedelta = DEFAULT_LEDGER_HORIZON) -> None:
        self.horizon = horizon.total_seconds()
        self._pairs: dict[str, int] = {}  # "message id\0recipient" -> packed origin
        self._topics: dict[str, int] = {}  # lane topic -> index, for packing origins
        self._expiry: dict[tuple[str, int], list[tuple[float, str]]] = {}  # per partition
        self._newest: dict[tuple[str, int], float] = {}  # newest creation time planned

    def duplicate(self, message_id: str, recipient: str, origin: Origin) -> bool:
        """Whether the pair was already planned from another lane record."""
        planned = self._pairs.get(f"{message_id}\0{recipient}")
        return planned is not None and planned != self._pack(origin)

    def record(self, message_id: str, recipient: str, origin: Origin, created_at: datetime) -> None:
        """Note the pair as planned from ``origin``; the first origin stays the one that
        counts. Forgets the pairs of ``origin``'s partition that are past the horizon."""
        where = origin[:2]
        created = created_at.timestamp()
        newest = max(self._newest.get(where, created), created)
        self._newest[where] = newest
        expiry = self._expiry.setdefault(where, [])
        limit = newest - self.horizon
        while expiry and expiry[0][0] < limit:
            del self._pairs[heapq.heappop(expiry)[1]]
        key = f"{message_id}\0{recipient}"
        if key in self._pairs or created < limit:
            return
        self._pairs[key] = self._pack(origin)
        heapq.heappush(expiry, (created, key))

    def _pack(self, origin: Origin) -> int:
        topic, partition, offset = origin
        index = self._topics.setdefault(topic, len(self._topics))
        return (index << 80) | (partition << 48) | offset

    def __len__(self) -> int:
        return len(self._pairs)


def plan_delivery(
    record: ReceivedRecord,
    *,
    hub: str,
    topics: TopicCatalog,
    ledger: DeliveryLedger,
    max_bytes: int,
) -> DeliveryPlan:
    """Plan the effects of one lane record; ``ledger`` is updated with what is planned (a
    record planned before is planned again: its outputs may never have been acknowledged)."""
    header = parse_envelope(record.value, max_bytes=max_bytes).header
    # Receipts go to the sender's inbox; hubs have none, so a hub's own traffic earns none.
    clocked_type = header.message_type not in _NO_RECEIPTS
    receipted = clocked_type and kind_of(header.sender) in (
        ParticipantKind.NCB,
        ParticipantKind.TEAM,
    )
    raw_precedence = record.header(names.PRECEDENCE)
    precedence = Precedence(raw_precedence.decode()) if raw_precedence else header.precedence
    headers = (
        *tuple((k, v) for k, v in record.headers if k != names.HUB),
        (names.HUB, hub.encode()),
    )
    origin = (record.topic, record.partition, record.offset)
    inbox: list[OutboundRecord] = []
    receipts: list[ReceiptOrder] = []
    duplicates: list[str] = []
    clocked: list[str] = []
    to_ccc = False
    for recipient in header.recipients:
        if recipient == CCC:
            to_ccc = True
            if receipted:
                receipts.append(ReceiptOrder(header, CCC, precedence))
            continue
        if ledger.duplicate(header.message_id, recipient, origin):
            duplicates.append(recipient)
            continue
        ledger.record(header.message_id, recipient, origin, header.created_at)
        inbox.append(
            OutboundRecord(
                topics.inbox(recipient), header.message_id.encode(), record.value, headers
            )
        )
        if receipted:
            receipts.append(ReceiptOrder(header, recipient, precedence))
        if clocked_type:
            clocked.append(recipient)
    acknowledge = None
    if header.message_type is MessageType.ACKNOWLEDGEMENT and header.correlation_id:
        acknowledge = Acknowledge(header.correlation_id, header.sender)
    return DeliveryPlan(
        header=header,
        precedence=precedence,
        inbox=tuple(inbox),
        receipts=tuple(receipts),
        to_ccc=to_ccc,
        acknowledge=acknowledge,
        clocked_recipients=tuple(clocked),
        duplicates=tuple(duplicates),
    )


@dataclass
class ClockBatch:
    """The clocks a batch of deliveries starts and stops, journaled as (at most) two
    records per batch (``clocks-opened``, ``clocks-stopped``) rather than one per message."""

    opened: list[OpenedClock] = field(default_factory=list)
    stopped: list[StoppedClock] = field(default_factory=list)

    def add(self, plan: DeliveryPlan, *, now: datetime, objective: timedelta) -> None:
        """Note ``plan``'s clock (deadline ``now + objective``) and acknowledgement."""
        if plan.clocked_recipients:
            self.opened.append(
                OpenedClock(
                    message_id=plan.header.message_id,
                    recipients=plan.clocked_recipients,
                    precedence=plan.precedence,
                    deadline=now + objective,
                )
            )
        if plan.acknowledge is not None:
            ack = plan.acknowledge
            self.stopped.append(
                StoppedClock(message_id=ack.message_id, recipient=ack.recipient, at=now)
            )

    def take(self, *, hub: str, now: datetime) -> list[ClocksOpened | ClocksStopped]:
        """The batch's events, written at ``now``; the batch is empty afterwards."""
        events: list[ClocksOpened | ClocksStopped] = []
        if self.opened:
            events.append(ClocksOpened(hub=hub, time=now, clocks=tuple(self.opened)))
        if self.stopped:
            events.append(ClocksStopped(hub=hub, time=now, stops=tuple(self.stopped)))
        self.opened, self.stopped = [], []
        return events


def receipt_records(
    orders: Sequence[ReceiptOrder],
    *,
    hub: PrivateIdentity,
    topics: TopicCatalog,
    now: datetime,
) -> list[OutboundRecord]:
    """One signed receipt batch per sender (split every ``MAX_RECEIPTS``), to its inbox.

    A delivery ordered twice (a lane record read again) is listed once: its receipt id is
    derived, so the sender would drop the second copy anyway.
    """
    by_sender: dict[str, dict[str, Receipt]] = {}
    for order in orders:
        original = order.header
        receipt_id = receipt_id_for(original.message_id, order.recipient)
        by_sender.setdefault(original.sender, {}).setdefault(
            receipt_id,
            Receipt(
                receipt_id=receipt_id,
                delivered=original.message_id,
                recipient=order.recipient,
                precedence=order.precedence,
                delivered_at=now,
                trace_id=original.trace_id,
            ),
        )
    records: list[OutboundRecord] = []
    for sender, receipts in by_sender.items():
        items = list(receipts.values())
        topic = topics.inbox(sender)
        for start in range(0, len(items), MAX_RECEIPTS):
            chunk = items[start : start + MAX_RECEIPTS]
            batch = sign_receipts(chunk, hub=hub, sender=sender, topic=topic, issued_at=now)
            span = hashlib.sha256(batch.batch_id.encode()).hexdigest()[:16]
            headers = receipt_batch_headers(
                batch.batch_id, hub.participant, now, chunk[0].trace_id, span
            )
            records.append(
                OutboundRecord(topic, batch.batch_id.encode(), batch.to_bytes(), headers)
            )
    return records
