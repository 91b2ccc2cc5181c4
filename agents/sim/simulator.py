"""The traffic simulator: all NCB adapters, one Kafka gateway, paced live traffic.

Each simulated bureau is an ``NcbAdapter`` with its own keys; they share one producer and
one inbox reader (196 consumers would cost 196 fetch loops for nothing), which hands each
record to the adapter whose inbox it came from. An ``Observer`` reads the CCC's lanes and
dead letters so the books (``Accounting``) are kept from what really crossed the broker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from agents.ncb.adapter import Duplicate, Fenced, NcbAdapter, Opened, Receipted, Unopened
from agents.ncb.lease_reader import LeaseReader
from agents.sim.accounting import Accepted, Accounting, Opening
from agents.sim.desk_traffic import DeskTraffic, kind_of_record
from agents.sim.faults import (
    forge_signature,
    key_as_another,
    make_malformed,
    make_oversized,
    tamper_body,
    tamper_header,
)
from agents.sim.traffic import EXPECTED_REASON, Fault, Planned, TrafficMix
from brokers.fetch_wait import rest_paused
from brokers.records import OutboundRecord, ReceivedRecord
from brokers.tail import received_from_kafka
from schemas import header_names as names
from schemas.errors import RejectedMessage
from schemas.header import MessageType, Precedence, Suite
from schemas.journal import (
    HandlingBreach,
    JournalEventModel,
    MalformedJournalEvent,
    control_event_of,
)
from schemas.key_directory import KeyDirectory, KeyEntryRefused, key_directory_for
from schemas.keys import Directory, PrivateIdentity, generate_identity
from schemas.leases import LeaseBook
from schemas.participants import ParticipantKind, kind_of
from schemas.sealing import RandomBytes, parse_envelope
from schemas.topics import TopicCatalog

__all__ = ["Observer", "Simulator", "received_from"]

log = structlog.get_logger("i247.simulator")

_ACKED = frozenset({MessageType.MESSAGE, MessageType.DIFFUSION})
OBSERVER_BUSY_PACE_MS = 200
"""The Observer rests this long after a fetch that brought records: it reads the lanes, and
Tansu's CPU for a fetch that returns records grows with the batches already in them."""
_YIELD_EVERY = 20  # inbox records opened between two turns of the event loop (~5 ms)
_ACKS_HELD = 200  # acknowledgements deferred at most, while a batch is being opened


def utc_now() -> datetime:
    return datetime.now(UTC)


def received_from(record: object) -> ReceivedRecord:
    """An aiokafka ``ConsumerRecord`` as the core's record type."""
    return received_from_kafka(record)


@dataclass
class Simulator:
    """Runs the adapters: sends the mix, reads inboxes, acknowledges, keeps the books."""

    topics: TopicCatalog
    directory: Directory
    identities: Mapping[str, PrivateIdentity]
    mix: TrafficMix
    producer: AIOKafkaProducer
    books: Accounting
    max_bytes: int
    freshness: timedelta
    suite: Suite = Suite.X25519
    clock: Callable[[], datetime] = utc_now
    random_bytes: RandomBytes = os.urandom
    desks: DeskTraffic | None = None  # notices, teams and checks beside the plain mix
    adapters: dict[str, NcbAdapter] = field(init=False)
    _by_inbox: dict[str, NcbAdapter] = field(init=False)
    _last_good: dict[str, OutboundRecord] = field(default_factory=dict)
    _outsider: NcbAdapter = field(init=False)
    _inflight: set[asyncio.Future[object]] = field(default_factory=set)
    _acks_due: list[tuple[NcbAdapter, Opened]] = field(default_factory=list)
    _keys: KeyDirectory | None = None

    def __post_init__(self) -> None:
        self.adapters = {
            p: NcbAdapter(i, self.directory, self.topics, self.max_bytes)
            for p, i in self.identities.items()
            if kind_of(p) is ParticipantKind.NCB
        }
        self._by_inbox = {a.inbox: a for a in self.adapters.values()}
        outsider = self.identities.get("XKX")
        if outsider is None:
            outsider = generate_identity("XKX")
        self._outsider = NcbAdapter(outsider, self.directory, self.topics, self.max_bytes)

    def fold_key_entry(self, record: ReceivedRecord) -> None:
        """A key directory entry (``i247.keys``): every bureau seals for and verifies with it."""
        keys = self._keys if self._keys is not None else key_directory_for(self.directory)
        try:
            self._keys = keys.fold(record.value)
        except KeyEntryRefused as refusal:
            log.warning("key-entry-refused", detail=str(refusal))
            return
        self.directory = self._keys.overlay(self.directory)
        for adapter in (*self.adapters.values(), *self._by_inbox.values(), self._outsider):
            adapter.directory = self._keys.overlay(adapter.directory)

    @property
    def inboxes(self) -> list[str]:
        return sorted(self._by_inbox)

    def adopt(self, adapter: NcbAdapter) -> None:
        """Read ``adapter``'s inbox too (a team's), through ``on_inbox_record``."""
        self._by_inbox[adapter.inbox] = adapter

    async def _send(self, record: OutboundRecord) -> None:
        future = await self.producer.send(
            record.topic, record.value, key=record.key, headers=list(record.headers)
        )
        self._inflight.add(future)
        future.add_done_callback(self._inflight.discard)

    def build(self, planned: Planned) -> tuple[str, OutboundRecord]:
        """The record for ``planned`` (spoiled if it carries a fault) and its message id."""
        now = self.clock()
        adapter = self.adapters[planned.sender]
        fault = planned.fault
        if fault is Fault.REPLAYED and planned.sender in self._last_good:
            record = self._last_good[planned.sender]
            return (record.header("ce_id") or b"").decode(), record
        if fault is Fault.UNKNOWN_SENDER:
            adapter = self._outsider
        directory = self.directory
        recipients = planned.recipients
        if fault is Fault.UNKNOWN_RECIPIENT:
            recipients = (*recipients, "XKX")
            adapter = NcbAdapter(
                adapter.identity,
                directory.with_identities([self._outsider.identity.public()]),
                self.topics,
                self.max_bytes,
            )
        created = now - 2 * self.freshness if fault is Fault.STALE else now
        header, record = adapter.compose(
            recipients,
            planned.body,
            now=created,
            random_bytes=self.random_bytes,
            precedence=planned.precedence,
            language=planned.language,
            flags=planned.flags,
            suite=self.suite,
        )
        if fault is None:
            self._last_good[planned.sender] = record
        elif fault is Fault.TAMPERED_BODY:
            record = tamper_body(record)
        elif fault is Fault.TAMPERED_HEADER:
            record = tamper_header(record)
        elif fault is Fault.WRONG_SIGNATURE:
            impostor = next(i for p, i in self.identities.items() if p != planned.sender)
            record = forge_signature(record, impostor, self.max_bytes)
        elif fault is Fault.MALFORMED:
            record = make_malformed(record)
        elif fault is Fault.OVERSIZED:
            record = make_oversized(record, self.max_bytes)
        elif fault is Fault.KEY_NOT_SENDER:
            other = next(p for p in sorted(self.adapters) if p != planned.sender)
            record = key_as_another(
                record,
                header,
                planned.body,
                sender=adapter.identity,
                directory=directory,
                key=other.encode(),
                random_bytes=self.random_bytes,
            )
        return header.message_id, record

    async def send_next(self) -> None:
        planned = self.mix.next()
        if planned.fault is Fault.REPLAYED and planned.sender not in self._last_good:
            planned = dataclasses.replace(planned, fault=None)
        message_id, record = self.build(planned)
        expected = EXPECTED_REASON[planned.fault].value if planned.fault else None
        kind = planned.fault.value if planned.fault else MessageType(planned.body.type).value
        self.books.on_sent(message_id, kind, expected)
        await self._send(record)

    async def pump(self, rate: float, duration: float, stop: asyncio.Event) -> None:
        """Send at ``rate`` messages per second for ``duration`` seconds (or until ``stop``).

        Each message is stamped when it is built, just before it is sent; if the simulator
        falls behind its schedule it sends what is due at once, and the books say how far
        behind it fell (``offered``), so a run that did not offer its rate shows it.
        """
        start = time.monotonic()
        sent = 0
        behind = 0
        elapsed = 0.0
        while not stop.is_set():
            elapsed = time.monotonic() - start
            if elapsed >= duration:
                break
            due = int(elapsed * rate) + 1
            behind = max(behind, due - sent - 1)
            while sent < due:
                await self.send_next()
                sent += 1
                if sent % _YIELD_EVERY == 0:  # catching up: let the inbox reader in
                    await asyncio.sleep(0)
            if self.desks is not None:
                await self.send_all(self.desks.due(elapsed, self.clock()))
            await asyncio.sleep(0.005)
        await self.producer.flush()
        self.books.offered = {
            "rate": rate,
            "seconds": round(elapsed, 3),
            "sent": sent,
            "achieved_rate": round(sent / elapsed, 1) if elapsed else 0.0,
            "max_behind": behind,
        }

    async def send_all(self, records: list[OutboundRecord]) -> None:
        """Send records composed elsewhere (answers, desk traffic), entered in the books."""
        for record in records:
            message_id = (record.header("ce_id") or b"").decode()
            self.books.on_sent(message_id, kind_of_record(record), None)
            await self._send(record)

    def on_inbox_record(
        self,
        record: ReceivedRecord,
        leases: LeaseBook | None = None,
        fetched_at: datetime | None = None,
        *,
        defer_acks: bool = False,
    ) -> list[OutboundRecord]:
        """Hand a record to its adapter; return what it answers (acknowledgement, desk).

        ``fetched_at`` (when the consumer handed the record over) lets the books tell the
        simulator's own queueing apart from the backbone's latency. With ``defer_acks`` the
        acknowledgement is sealed later, by ``acknowledgements()``: a batch of deliveries
        is opened (and its latency taken) before the costlier seals of its answers.
        """
        adapter = self._by_inbox.get(record.topic)
        if adapter is None:
            return []
        result = adapter.receive(record, leases=leases)
        if isinstance(result, Fenced):
            self.books.fenced += result.deliveries
            return []
        if isinstance(result, Receipted):  # counted per receipt, as when each was a record
            self.books.receipts += len(result.receipts)
            self.books.duplicates_suppressed["recipient"] += len(result.duplicates)
            for receipt in result.receipts:
                if receipt.recipient == "ccc":
                    self.books.on_delivered(receipt.delivered, "ccc", None)
            return []
        if isinstance(result, Duplicate):
            self.books.duplicates_suppressed["recipient"] += 1
            return []
        if isinstance(result, Unopened):
            self.books.unopened[str(result.reason)] += 1
            log.warning(
                "unopened",
                participant=adapter.participant,
                reason=str(result.reason),
                detail=result.detail,
            )
            return []
        assert isinstance(result, Opened)
        now = self.clock()
        header = result.header
        latency = (now - header.created_at).total_seconds() * 1000
        lag = now.timestamp() * 1000 - record.timestamp_ms if record.timestamp_ms > 0 else None
        own = (now - fetched_at).total_seconds() * 1000 if fetched_at is not None else None
        opening = Opening(
            created_ms=header.created_at.timestamp() * 1000,
            opened_ms=now.timestamp() * 1000,
            inbox_ms=float(record.timestamp_ms) if record.timestamp_ms > 0 else None,
            fetched_ms=fetched_at.timestamp() * 1000 if fetched_at is not None else None,
        )
        self.books.on_delivered(
            header.message_id, adapter.participant, latency, lag, own, opening=opening
        )
        out: list[OutboundRecord] = []
        if self.desks is not None:
            out += self.desks.on_opened(adapter.participant, result, now)
        if header.message_type in _ACKED and kind_of(header.sender) is ParticipantKind.NCB:
            if defer_acks:
                self._acks_due.append((adapter, result))
            else:
                out.append(adapter.acknowledgement(result, now=now, random_bytes=self.random_bytes))
        return out

    def acknowledgements(self) -> list[OutboundRecord]:
        """Seal the acknowledgements deferred so far, each stamped when it is sealed."""
        due, self._acks_due = self._acks_due, []
        return [
            adapter.acknowledgement(opened, now=self.clock(), random_bytes=self.random_bytes)
            for adapter, opened in due
        ]

    async def read_inboxes(
        self, consumer: AIOKafkaConsumer, stop: asyncio.Event, leases: LeaseReader | None = None
    ) -> None:
        """Open what reaches the inboxes, then acknowledge it; hand the loop back every few
        records so that a large batch does not hold the pump (and its send schedule) back.

        A batch is opened first and its acknowledgements sealed after (at most
        ``_ACKS_HELD`` at a time): each opening is stamped when it really happens, and no
        longer waits behind the seals of the answers to the records before it.
        """
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=2000)
            fetched_at = self.clock()
            handled = 0
            for records in batch.values():
                for raw in records:
                    record = received_from(raw)
                    book = await leases.ready_for(record) if leases is not None else None
                    answers = self.on_inbox_record(record, book, fetched_at, defer_acks=True)
                    await self.send_all(answers)
                    if len(self._acks_due) >= _ACKS_HELD:
                        await self.send_all(self.acknowledgements())
                    handled += 1
                    if handled % _YIELD_EVERY == 0:
                        await asyncio.sleep(0)
            await self.send_all(self.acknowledgements())


@dataclass
class Observer:
    """Reads lanes, dead letters and the journal to learn what the CCC decided."""

    topics: TopicCatalog
    books: Accounting
    max_bytes: int
    journal: list[JournalEventModel] = field(default_factory=list)  # typed (unknown: skipped)
    on_control: Callable[[ReceivedRecord], None] | None = None  # e.g. the team traffic's fold

    def partitions(self) -> list[TopicPartition]:
        partition_topics = [*self.topics.lanes(), self.topics.deadletter, self.topics.control]
        return [TopicPartition(n, 0) for n in partition_topics]

    def on_record(self, record: ReceivedRecord) -> None:
        if record.topic == self.topics.deadletter:
            reason = (record.header(names.DLQ_PREFIX + "reason") or b"?").decode()
            message_id = (record.header("ce_id") or b"").decode() or None
            self.books.on_refused(message_id, reason)
        elif record.topic == self.topics.control:
            if self.on_control is not None:
                self.on_control(record)
            try:
                event = json.loads(record.value)
                typed = control_event_of(event) if isinstance(event, dict) else None
            except MalformedJournalEvent as fault:
                log.warning("journal-event-malformed", offset=record.offset, detail=str(fault))
                typed = None
            except ValueError:
                return
            if isinstance(typed, HandlingBreach):
                self.books.breaches += 1
            if isinstance(typed, JournalEventModel):
                self.journal.append(typed)
        else:
            try:
                header = parse_envelope(record.value, max_bytes=self.max_bytes).header
            except RejectedMessage:
                return
            hub = (record.header(names.HUB) or b"?").decode()
            precedence = Precedence((record.header(names.PRECEDENCE) or b"ROUTINE").decode())
            admitted = float(record.timestamp_ms) if record.timestamp_ms > 0 else None
            self.books.on_accepted(
                header.message_id,
                Accepted(hub, precedence, tuple(header.recipients), admitted_ms=admitted),
            )

    async def run(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=5000)
            handled = 0
            for records in batch.values():
                for raw in records:
                    self.on_record(received_from(raw))
                    handled += 1
                    if handled % (10 * _YIELD_EVERY) == 0:
                        await asyncio.sleep(0)
            if batch:  # its books take lane times from the records: resting costs no figure
                pace = OBSERVER_BUSY_PACE_MS / 1000
                await rest_paused(consumer, consumer.assignment(), pace, wake=stop)
