"""A bureau's client: send, read the inbox, acknowledge, and remember across restarts.

``NcbAdapter`` decides (seal, open, judge, acknowledge) and does no I/O; this client carries
its records to and from Kafka for one participant (an NCB or a team)::

    async with NcbClient("DEU", keys_dir, settings) as client:
        async for item in client.inbox(follow=True):
            if isinstance(item, InboxMessage):
                await client.ack(item)

It folds the lease journal (``LeaseReader``) to refuse deliveries made out of term, drops
a message id it opened before (also across restarts), and keeps its place: the inbox
position as committed offsets of its own consumer group (assigned, never joined, see
``brokers.clients``) and what it handed over in a state file (``agents.ncb.client_state``),
written before the position is committed. So each message is handed to the application
once: nothing re-opened, nothing skipped. docs/ncb-client.md has the details.

The same reader folds the key directory topic (``schemas.key_directory``): peers' rotated
keys are sealed for and verified as soon as it reads them, revoked ones refused; when the
entry is this participant's own and names a new active key, the client reloads its
private keys from the keys directory (where ``i247 keys rotate`` wrote them).

With ``I247_TRACES`` on (or a ``Tracing`` given), ``send`` is a ``send`` span whose trace id
is the message's ``trace_id`` and whose context the record carries, and each inbox record
read is a ``process`` span under the context its hub wrote (docs/tracing.md): the
sender's, the hubs' and the recipient's spans of one message form one trace.

The client watches its broker (``brokers.broker_probe``): an outage is logged once
(``broker-unreachable``), a send waits for the broker and is tried again rather than
failing, and a broker back with its log lost (``broker-log-lost``) is waited out until its
topics are provisioned again; the client then reads the new inbox from its start with a
fresh lease reader (``client-started-over``): the old positions and terms belonged to the
lost log, and what it handed over before stays handed over (the state file).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from opentelemetry import trace
from opentelemetry.trace import format_span_id, format_trace_id

from agents.ncb.adapter import Duplicate, Fenced, Inbound, NcbAdapter, Opened, Receipted, Unopened
from agents.ncb.client_state import ClientState, HandedOver, state_path
from agents.ncb.lease_reader import LeaseReader
from brokers.access import process_security
from brokers.broker_probe import BrokerWatcher
from brokers.broker_watch import BrokerChange, BrokerWatch, ChangeKind
from brokers.clients import make_consumer, make_producer
from brokers.record_headers import TraceParent, header_value
from brokers.records import OutboundRecord, ReceivedRecord
from brokers.settings import Settings
from brokers.tail import received_from_kafka
from brokers.tracing import (
    Tracing,
    extract_context,
    messaging_attributes,
    span_kind,
    span_name,
    start_tracing,
)
from schemas.bodies import Body
from schemas.header import HeaderFlag, Language, MessageType, Precedence, RoutingHeader
from schemas.key_directory import KeyDirectory, KeyEntryRefused, key_directory_for
from schemas.keys import KeyFileError, load_directory, load_identity
from schemas.markings import HandlingCode, Tlp
from schemas.participants import ParticipantKind, kind_of

__all__ = [
    "InboxItem",
    "InboxMessage",
    "InboxReceipt",
    "NcbClient",
    "NotAcknowledgeable",
    "acknowledgeable",
]

log = structlog.get_logger("i247.ncb.client")

_NOT_ACKED = frozenset({MessageType.ACKNOWLEDGEMENT, MessageType.DELIVERY_RECEIPT})


@dataclass(frozen=True, slots=True)
class InboxMessage:
    """A message this participant opened, with where it sits in the inbox."""

    header: RoutingHeader
    body: Body
    precedence: Precedence  # as the CCC assessed it
    hub: str | None  # the hub that delivered it
    partition: int
    offset: int
    opened: Opened

    @property
    def message_id(self) -> str:
        return self.header.message_id


@dataclass(frozen=True, slots=True)
class InboxReceipt:
    """Delivery receipts as ``NcbAdapter.receive`` returned them (passed through untouched):
    a ``Receipted`` batch from a hub, or an ``Opened`` sealed receipt of the older form."""

    item: object
    partition: int
    offset: int


InboxItem = InboxMessage | InboxReceipt


class NotAcknowledgeable(ValueError):
    """Acknowledgements and receipts are not acknowledged; nor is traffic from the CCC."""


def acknowledgeable(message: InboxMessage) -> bool:
    """True for a message a bureau acknowledges: from an NCB or team, not an ack itself."""
    return message.header.message_type not in _NOT_ACKED and kind_of(message.header.sender) in (
        ParticipantKind.NCB,
        ParticipantKind.TEAM,
    )


class NcbClient:
    """One participant's gateway to the backbone: an async context manager."""

    def __init__(
        self,
        participant: str,
        keys_dir: Path | None,
        settings: Settings,
        *,
        fence: bool = True,
        state_file: Path | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        if not settings.bootstrap:
            raise ValueError("NcbClient needs a broker: set I247_BOOTSTRAP (settings.bootstrap)")
        keys = keys_dir if keys_dir is not None else Path(settings.keys_dir)
        self.keys_dir = keys
        self.settings = settings
        self.adapter = NcbAdapter(
            load_identity(keys, participant),
            load_directory(keys),
            settings.topics,
            max_bytes=settings.max_message_bytes,
        )
        self.keys: KeyDirectory = key_directory_for(self.adapter.directory)
        self.group_id = f"{settings.topic_prefix}.client.{participant}"
        self.state_file = state_file or state_path(Path(settings.data_dir), participant)
        self.counts: Counter[str] = Counter()
        self._fence = fence
        self._state: ClientState | None = None
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._leases: LeaseReader | None = None
        self._next: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._generation = 0  # the latest inbox() call; an older one may not read on
        self._owns_tracing = tracing is None  # started from I247_TRACES: flushed at stop
        self.tracing = tracing or start_tracing(settings, f"i247-client-{self.participant}")
        self._watcher: BrokerWatcher | None = None
        self._usable = asyncio.Event()  # the broker answers with an intact log
        self._new_log = False  # lost and provisioned again: start over on the new one

    @property
    def participant(self) -> str:
        return self.adapter.participant

    async def __aenter__(self) -> NcbClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Load the state file, start the producer, the inbox consumer and the lease reader."""
        bootstrap = self.settings.bootstrap
        assert bootstrap is not None
        self._state = ClientState.load(self.state_file)
        try:
            self._producer = make_producer(self.settings)
            await self._producer.start()
            self._consumer = make_consumer(self.settings, group_id=self.group_id)
            await self._consumer.start()
            await self._assign(self._consumer)
            if self._fence:
                self._leases = LeaseReader(
                    bootstrap,
                    self.settings.topics.leases,
                    also={self.settings.topics.keys: self._on_key_entry},
                )
                await self._leases.start()
                await self._leases.catch_up()  # the key directory known before any inbox read
            topics = self.settings.topics
            self._watcher = BrokerWatcher(
                bootstrap,
                [self.adapter.inbox, topics.inbound, topics.leases],
                self._on_broker,
                who=self.participant,
                security=process_security(),
            )
            if (await self._watcher.start()).usable:
                self._usable.set()
        except BaseException:
            await self.stop()
            raise
        log.info(
            "client-started",
            participant=self.participant,
            positions={f"{tp.topic}/{tp.partition}": o for tp, o in self._next.items()},
            opened=len(self._state.opened),
        )

    async def _on_broker(self, change: BrokerChange, watch: BrokerWatch) -> None:
        if watch.usable:
            self._usable.set()
        else:
            self._usable.clear()
        if change.kind is ChangeKind.LOG_READY:
            self._new_log = True

    async def _start_over(self) -> AIOKafkaConsumer:
        """The broker lost its log and has its topics again: read the new inbox from its
        start, folding the new lease journal (positions and terms of the old one are void)."""
        self._new_log = False
        for client in (self._consumer, self._leases):
            if client is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.stop(), 5.0)
        self._next.clear()
        self._committed.clear()
        self._consumer = consumer = make_consumer(self.settings, group_id=self.group_id)
        await consumer.start()
        await self._assign(consumer)
        if self._fence:
            assert self.settings.bootstrap is not None
            self._leases = LeaseReader(
                self.settings.bootstrap,
                self.settings.topics.leases,
                also={self.settings.topics.keys: self._on_key_entry},
            )
            await self._leases.start()
            await self._leases.catch_up()
        log.info("client-started-over", participant=self.participant, reason="broker-log-lost")
        return consumer

    def _on_key_entry(self, record: ReceivedRecord) -> None:
        """A key set changed: seal for and verify with it; take up our own new key."""
        try:
            self.keys = self.keys.fold(record.value)
        except KeyEntryRefused as refusal:
            log.warning("key-entry-refused", participant=self.participant, detail=str(refusal))
            return
        adapter = self.adapter
        adapter.directory = self.keys.overlay(adapter.directory)
        active = self.keys.sealing_key_for(self.participant)
        if active is None or active == adapter.identity.signing_kid:
            return
        try:
            identity = load_identity(self.keys_dir, self.participant)
        except KeyFileError as missing:
            log.error("own-key-missing", participant=self.participant, detail=str(missing))
            return
        if identity.signing_kid != active:
            log.error("own-key-not-installed", participant=self.participant, active=active)
            return
        adapter.identity = identity
        log.info("own-key-rotated", participant=self.participant, kid=active)

    async def _assign(self, consumer: AIOKafkaConsumer) -> None:
        topic = self.adapter.inbox
        found = consumer.partitions_for_topic(topic)
        if not found:
            await consumer._client.force_metadata_update()
            found = consumer.partitions_for_topic(topic)
        if not found:
            raise LookupError(f"inbox topic {topic} does not exist: run `i247 provision` first")
        partitions = [TopicPartition(topic, p) for p in sorted(found)]
        consumer.assign(partitions)
        for tp in partitions:
            committed = await consumer.committed(tp)
            if committed is None:
                await consumer.seek_to_beginning(tp)
                self._next[tp] = await consumer.position(tp)
            else:
                self._next[tp] = self._committed[tp] = committed

    async def stop(self) -> None:
        """Commit the position, stop every Kafka client, close the state file (all of them)."""
        consumer, leases, producer = self._consumer, self._leases, self._producer
        if self._watcher is not None:
            await self._watcher.stop()
            self._watcher = None
        try:
            if consumer is not None:
                await self._commit()
        finally:
            self._consumer = self._leases = self._producer = None
            async with contextlib.AsyncExitStack() as stack:
                if self._state is not None:
                    stack.callback(self._state.close)
                    self._state = None
                if self._owns_tracing:
                    stack.callback(self.tracing.shutdown)
                for client in (producer, leases, consumer):
                    if client is not None:
                        stack.push_async_callback(client.stop)

    async def send(
        self,
        to: Sequence[str],
        body: Body,
        *,
        precedence: Precedence = Precedence.ROUTINE,
        language: Language = Language.EN,
        case_id: str | None = None,
        correlation_id: str | None = None,
        handling: HandlingCode = HandlingCode.H0,
        tlp: Tlp = Tlp.AMBER,
        flags: Sequence[HeaderFlag] = (),
    ) -> str:
        """Seal ``body`` for ``to``, publish it once the broker has it; return its message id."""

        headers: list[RoutingHeader] = []

        def compose(trace: TraceParent | None) -> OutboundRecord:
            header, record = self.adapter.compose(
                to,
                body,
                now=datetime.now(UTC),
                random_bytes=os.urandom,
                precedence=precedence,
                language=language,
                case_id=case_id,
                correlation_id=correlation_id,
                handling=handling,
                tlp=tlp,
                flags=flags,
                trace=trace,
            )
            headers.append(header)
            return record

        await self._publish(compose, correlation_id)
        [header] = headers
        log.info(
            "client-sent",
            message_id=header.message_id,
            trace_id=header.trace_id,
            recipients=header.recipients,
            type=header.message_type.value,
        )
        return header.message_id

    async def ack(self, message: InboxMessage) -> str:
        """Tell the sender (through the CCC) that ``message`` was handled; the ack's id."""
        if not acknowledgeable(message):
            raise NotAcknowledgeable(
                f"{message.header.message_type.value} from {message.header.sender} is not "
                "acknowledged: only messages from NCBs and teams are (not acks or receipts)"
            )

        def compose(trace: TraceParent | None) -> OutboundRecord:
            return self.adapter.acknowledgement(
                message.opened, now=datetime.now(UTC), random_bytes=os.urandom, trace=trace
            )

        record = await self._publish(compose, message.message_id)
        ack_id = (record.header("ce_id") or b"").decode()
        log.info("client-acked", message_id=message.message_id, ack_id=ack_id)
        return ack_id

    async def _publish(
        self, compose: Callable[[TraceParent | None], OutboundRecord], answers: str | None
    ) -> OutboundRecord:
        """Seal (``compose``) and publish one message; when tracing, inside a ``send`` span
        whose trace the message's header and ``traceparent`` name. ``answers``: the message
        it correlates with, as ``messaging.message.conversation_id``."""
        tracer = self.tracing.tracer
        if tracer is None:
            record = compose(None)
            await self._produce(record)
            return record
        inbound = self.adapter.topics.inbound
        span = tracer.start_span(
            span_name("send", inbound),
            kind=span_kind("send"),
            attributes=messaging_attributes("send", inbound, key=self.participant.encode()),
        )
        with trace.use_span(span, end_on_exit=True):
            context = span.get_span_context()
            record = compose(
                TraceParent(
                    format_trace_id(context.trace_id),
                    format_span_id(context.span_id),
                    context.trace_flags.sampled,
                )
            )
            partition, offset = await self._produce(record)
            if span.is_recording():
                message_id = (record.header("ce_id") or b"").decode()
                attributes = messaging_attributes(
                    "send",
                    record.topic,
                    partition=partition,
                    offset=offset,
                    message_id=message_id,
                    body_size=len(record.value),
                )
                if answers:
                    attributes["messaging.message.conversation_id"] = answers
                span.set_attributes(attributes)
            return record

    async def _produce(self, record: OutboundRecord) -> tuple[int, int]:
        """Publish ``record`` once the broker has it; its partition and offset."""
        if self._producer is None:
            raise RuntimeError("NcbClient is not started: use `async with NcbClient(...)`")
        while True:
            try:
                metadata = await self._producer.send_and_wait(
                    record.topic, record.value, key=record.key, headers=list(record.headers)
                )
                return int(metadata.partition), int(metadata.offset)
            except KafkaError as error:
                if self._watcher is None or self._usable.is_set():
                    raise
                log.warning(
                    "client-send-waiting", participant=self.participant, error=repr(error)[:200]
                )
                await self._usable.wait()  # the broker (or its topics) back: try again

    async def inbox(self, *, follow: bool = False, idle_ms: int = 500) -> AsyncIterator[InboxItem]:
        """What this participant opened since its last position, in inbox order.

        Without ``follow`` it ends once the inbox is read up to where it ended at the call;
        with it, it waits for more until the caller stops. An item is written to the state
        file before it is yielded: once yielded it is never yielded again. Leaving the loop
        and calling ``inbox()`` again goes on from there; an older iterator then stops.
        """
        consumer = self._consumer
        if consumer is None or self._state is None:
            raise RuntimeError("NcbClient is not started: use `async with NcbClient(...)`")
        self._generation += 1
        generation = self._generation
        try:
            for tp, offset in self._next.items():
                consumer.seek(tp, offset)
            ends = None if follow else await consumer.end_offsets(list(self._next))
            while generation == self._generation:
                if self._new_log:
                    consumer = await self._start_over()
                    ends = None if follow else await consumer.end_offsets(list(self._next))
                batch = await consumer.getmany(timeout_ms=idle_ms, max_records=500)
                if not batch:
                    if ends is not None and all(self._next[tp] >= e for tp, e in ends.items()):
                        return
                    continue
                for tp, records in batch.items():
                    for raw in records:
                        if generation != self._generation:
                            return  # a newer inbox() reads on from here
                        item = await self._read(received_from_kafka(raw))
                        self._next[tp] = raw.offset + 1
                        if item is not None:
                            yield item
                await self._commit()
        finally:
            if self._consumer is not None and generation == self._generation:
                await self._commit()

    async def _read(self, record: ReceivedRecord) -> InboxItem | None:
        """``_take``, inside a ``process`` span under the delivering hub's when tracing."""
        tracer = self.tracing.tracer
        if tracer is None:
            return await self._take(record)
        message_id = header_value(record.headers, "ce_id")
        attributes = messaging_attributes(
            "process",
            record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            message_id=message_id.decode(errors="replace") if message_id else None,
            body_size=len(record.value),
        )
        attributes["messaging.consumer.group.name"] = self.group_id
        span = tracer.start_span(
            span_name("process", record.topic),
            context=extract_context(record.headers),
            kind=span_kind("process"),
            attributes=attributes,
        )
        with trace.use_span(span, end_on_exit=True):
            before = self.counts.copy()
            item = await self._take(record)
            outcome = sorted((self.counts - before).keys())
            span.set_attribute("i247.outcome", outcome[0] if outcome else "none")
            return item

    async def _take(self, record: ReceivedRecord) -> InboxItem | None:
        """Judge and open one inbox record; record what is handed over before handing it."""
        state = self._state
        assert state is not None
        if state.handed_over(record.topic, record.partition, record.offset, record.timestamp_ms):
            self.counts["re-read"] += 1
            return None
        book = await self._leases.ready_for(record) if self._leases is not None else None
        result: Inbound = self.adapter.receive(record, leases=book)
        if (
            isinstance(result, Unopened)
            and result.reason == "bad-signature"
            and self._leases is not None
        ):  # perhaps signed with a key rotated a moment ago: read the directory, try again
            await self._leases.catch_up()
            result = self.adapter.receive(record, leases=book)
        if isinstance(result, Duplicate):
            self.counts["duplicate"] += 1
            return None
        if isinstance(result, Fenced):
            self.counts["fenced"] += result.deliveries
            log.info("client-fenced", unit=result.tag.unit, epoch=result.tag.epoch)
            return None
        if isinstance(result, Unopened):
            self.counts["unopened"] += 1
            log.warning("client-unopened", reason=str(result.reason), detail=result.detail)
            return None
        if isinstance(result, Opened):
            message_id = result.header.message_id
            if message_id in state.opened:
                self.counts["duplicate"] += 1
                return None
            receipt = result.header.message_type is MessageType.DELIVERY_RECEIPT
            kind = "receipt" if receipt else "message"
            state.record(_entry(record, message_id, kind))
            self.counts[kind] += 1
            log.info("client-opened", message_id=message_id, trace_id=result.header.trace_id)
            if receipt:
                return InboxReceipt(result, record.partition, record.offset)
            return InboxMessage(
                result.header,
                result.body,
                result.precedence,
                result.hub,
                record.partition,
                record.offset,
                result,
            )
        assert isinstance(result, Receipted)  # a hub's signed receipt batch (wire format §10)
        if not result.receipts:  # every receipt in it was handed over before
            self.counts["duplicate"] += len(result.duplicates)
            return None
        state.record(_entry(record, None, "receipt"))
        self.counts["receipt"] += len(result.receipts)  # one per delivery, as before batches
        return InboxReceipt(result, record.partition, record.offset)

    async def _commit(self) -> None:
        """Store the position as the group's offsets (after the state file has the items)."""
        consumer = self._consumer
        moved = {tp: o for tp, o in self._next.items() if self._committed.get(tp) != o}
        if consumer is None or not moved:
            return
        try:
            await consumer.commit(moved)
        except KafkaError as error:  # the state file still keeps what was handed over
            log.warning("client-commit-failed", group=self.group_id, error=repr(error))
            return
        self._committed.update(moved)


def _entry(record: ReceivedRecord, message_id: str | None, kind: str) -> HandedOver:
    return HandedOver(
        record.topic, record.partition, record.offset, record.timestamp_ms, message_id, kind
    )
