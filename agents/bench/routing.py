"""The routing path at saturation, and where the hub's CPU per routed message goes.

**Saturation** (``routing_saturation``): messages are sealed before anything is timed (the
load generator must not be what is measured), produced to the inbound topic as a backlog,
then one hub process (``i247 hub --site lyon``) is started and drains it. A message counts
as *routed* once its copy reached the recipient's inbox **and** a delivery receipt for it
reached the sender's inbox. Receipts are recognised loosely, so that a change of their
form does not break the count: a record on an inbox whose CloudEvents ``ce_type`` contains
``receipt``; the message ids it covers are the sent ids found anywhere in its bytes (a
receipt batch lists the delivered ids in clear; a sealed receipt, the form before it,
named its message in its clear routing header as ``correlation_id``). If receipt records
arrive but name none of the ids (an opaque batch, e.g. a Merkle root only), a delivered
message counts as routed and the drain ends once receipts stop arriving (``receipts_by``
says which rule applied). The rate is routed messages / seconds from the reader's last
poll before the first routed event to the last routed event, so the hub's start-up is
excluded (up to one poll of it, ~0.1 s, is not).

**CPU per routed message**: the CPU time (user + system) of the hub process and its
descendants over the same window, divided by the messages routed.
**Breakdown**: the cost of each step on the routing path, timed in this process with the
hub's own functions, times the calls it makes per routed message (``ROUTE_CALLS``); what
the measured total leaves over is "other/framework" (the event loop, the clients' I/O,
fencing, clocks, logging).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from agents.bench.idle import tree_cpu_seconds
from agents.demo.run import start_hub
from agents.ncb.adapter import NcbAdapter
from agents.ops.operations import provision_all
from brokers.clients import make_consumer, make_producer, terminate
from brokers.record_headers import header_value
from brokers.records import OutboundRecord, ReceivedRecord
from brokers.settings import Settings
from schemas.bodies import MessageBody
from schemas.header import Precedence
from schemas.keys import PrivateIdentity, load_identity
from schemas.sealing import open_sealed, parse_envelope, verify
from schemas.sealing_memo import memos_off
from schemas.topics import TopicCatalog
from streams.core.dedup import SeenMessages
from streams.core.delivery import DeliveryLedger, ReceiptOrder, plan_delivery, receipt_records
from streams.core.intake import Admitted, IntakePolicy, admit
from streams.core.priority import assess_priority
from streams.core.roster import DutyRoster

__all__ = [
    "ROUTE_CALLS",
    "TEXT",
    "RoutingFigures",
    "breakdown",
    "client_costs",
    "is_receipt",
    "receipt_cost",
    "routing_saturation",
    "sealed_batch",
    "sent_ids_in",
    "step_costs",
]

TEXT = "Identification of suspect via fingerprints; request for criminal record check. " * 10
HUB = "hub:lyon"

# Calls per routed message on today's path: intake parses, verifies and admits (admit
# includes the parse, the verify and the priority, so its own share is what is left),
# produces the lane record; the lane plans the delivery (its own parse), signs a receipt
# batch for the lane record, produces the inbox copy and the batch; each hop consumes one.
ROUTE_CALLS: dict[str, float] = {
    "parse": 1,
    "verify": 1,
    "intake/admit (rest)": 1,
    "priority": 1,
    "plan_delivery": 1,
    "receipt": 1,
    "produce": 3,
    "consume": 2,
}
_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _time_step(fn: Callable[[], object], n: int) -> float:
    """CPU µs per call (process time, so a busy machine's preemption is not counted)."""
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n * 1e6


def receipt_cost(
    order: ReceiptOrder, hub: PrivateIdentity, topics: TopicCatalog, now: datetime
) -> float:
    """CPU µs of the receipt for one delivery as the lane makes it: the lane signs the
    receipts of each lane record as one batch per sender, so one delivery, one batch."""
    return _time_step(lambda: receipt_records([order], hub=hub, topics=topics, now=now), 500)


def step_costs(adapters: Mapping[str, NcbAdapter], settings: Settings) -> dict[str, float]:
    """CPU microseconds per call of each step on the hot path (no broker)."""
    now = datetime.now(UTC)
    fra, deu = adapters["FRA"], adapters["DEU"]
    body = MessageBody(subject="bench", text=TEXT)
    header, record = fra.compose(["DEU"], body, now=now, random_bytes=os.urandom)
    topics = fra.topics  # the prefix the adapters seal for (a run may have moved it)
    key = b"FRA"
    max_bytes = settings.max_message_bytes
    sealed = parse_envelope(record.value, max_bytes=max_bytes)
    policy = IntakePolicy(max_bytes=max_bytes)
    roster = DutyRoster()
    counter = iter(range(10**9))

    def intake_once() -> object:
        seen = SeenMessages(horizon=settings.freshness_seconds)
        received = ReceivedRecord(topics.inbound, 0, next(counter), 0, key, record.value)
        return admit(
            received,
            now=now,
            directory=fra.directory,
            seen=seen,
            roster=roster,
            topics=topics,
            policy=policy,
        )

    admitted = intake_once()
    if not isinstance(admitted, Admitted):
        raise RuntimeError(f"the bench's own message was not admitted: {admitted}")
    lane = admitted.lane
    lane_record = ReceivedRecord(lane.topic, 0, 0, 0, lane.key, lane.value, lane.headers)

    def plan_once() -> Any:
        return plan_delivery(
            lane_record, hub=HUB, topics=topics, ledger=DeliveryLedger(), max_bytes=max_bytes
        )

    order = plan_once().receipts[0]
    hub = load_identity(Path(settings.keys_dir), HUB)
    with memos_off():  # each step on the same bytes again: time the cold path, not a lookup
        costs = {
            "seal (2 key holders)": _time_step(
                lambda: fra.compose(["DEU"], body, now=now, random_bytes=os.urandom), 300
            ),
            "parse": _time_step(lambda: parse_envelope(record.value, max_bytes=max_bytes), 2000),
            "verify": _time_step(
                lambda: verify(sealed, topic=topics.inbound, key=key, directory=fra.directory), 2000
            ),
            "priority": _time_step(lambda: assess_priority(header), 5000),
            "intake/admit (all checks)": _time_step(intake_once, 2000),
            "plan_delivery": _time_step(plan_once, 2000),
            "receipt": receipt_cost(order, hub, topics, now),
            "open (verify + HPKE + AES-GCM)": _time_step(
                lambda: open_sealed(
                    sealed,
                    topic=topics.inbound,
                    key=key,
                    directory=fra.directory,
                    identity=deu.identity,
                ),
                1000,
            ),
        }
    costs["intake/admit (rest)"] = max(
        0.0,
        costs["intake/admit (all checks)"] - costs["parse"] - costs["verify"] - costs["priority"],
    )
    return costs


async def client_costs(
    bootstrap: str, settings: Settings, value: bytes, n: int = 2000
) -> dict[str, float]:
    """CPU µs of this process per record produced (send + flush) and consumed (fetch and
    decode), with the project's client settings, on a topic of the bench's own."""
    topic = f"bench-clients-{uuid.uuid4().hex[:8]}"
    producer = make_producer(bootstrap, settings)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"warm-up")
        start = time.process_time()
        for index in range(n):
            await producer.send(topic, value, key=str(index).encode())
        await producer.flush()
        produce = (time.process_time() - start) / n * 1e6
    finally:
        await producer.stop()
    consumer = make_consumer(bootstrap, settings, topics=[topic], auto_offset_reset="earliest")
    await consumer.start()
    try:
        got, start = 0, time.process_time()
        deadline = time.monotonic() + 60
        while got < n + 1 and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=100, max_records=5000)
            got += sum(len(records) for records in batch.values())
        consume = (time.process_time() - start) / max(got, 1) * 1e6
    finally:
        await consumer.stop()
    return {"produce": produce, "consume": consume}


def breakdown(per_call_us: Mapping[str, float], total_us: float | None) -> dict[str, float | None]:
    """µs per routed message of each step (per-call cost times ``ROUTE_CALLS``), and
    "other/framework": the measured total less their sum (None if there is no total)."""
    steps: dict[str, float | None] = {
        step: per_call_us[step] * calls for step, calls in ROUTE_CALLS.items()
    }
    known = sum(v for v in steps.values() if v is not None)
    steps["other/framework"] = None if total_us is None else total_us - known
    return steps


def is_receipt(headers: Any) -> bool:
    """A delivery receipt, of whatever form: its CloudEvents type names a receipt."""
    ce_type = header_value(headers or (), "ce_type") or b""
    return b"receipt" in ce_type.lower()


def sent_ids_in(value: bytes, sent: Mapping[str, str]) -> set[str]:
    """The sent message ids named anywhere in a record's bytes."""
    return {m.decode() for m in _UUID.findall(value or b"")} & sent.keys()


def sealed_batch(
    adapters: Mapping[str, NcbAdapter], count: int, now: datetime
) -> list[tuple[str, OutboundRecord]]:
    """``count`` sealed ROUTINE messages, one recipient each, senders round the world;
    with their message ids. Sealing happens here, before anything is timed."""
    codes = sorted(adapters)
    body = MessageBody(subject="bench", text=TEXT)
    records = []
    for i in range(count):
        sender = adapters[codes[i % len(codes)]]
        recipient = codes[(i * 7 + 3) % len(codes)]
        if recipient == sender.participant:
            recipient = codes[(i * 7 + 4) % len(codes)]
        header, record = sender.compose(
            [recipient], body, now=now, random_bytes=os.urandom, precedence=Precedence.ROUTINE
        )
        records.append((header.message_id, record.with_headers([("bench-sent", b"0")])))
    return records


@dataclass
class RoutingFigures:
    """One drain of the backlog: what was routed, in how long, at what CPU."""

    messages: int
    delivered: int
    receipt_records: int
    receipted: int
    routed: int
    receipts_by: str  # "ids" | "records" | "none seen"
    seconds: float
    hub_cpu_seconds: float | None

    @property
    def rate(self) -> float:
        return self.routed / self.seconds if self.seconds > 0 else 0.0

    @property
    def hub_cpu_percent(self) -> float | None:
        """How busy the hub was while draining, in % of one core: well under 100 means it
        spent the drain waiting (on the broker, on the machine), not computing."""
        if self.hub_cpu_seconds is None or self.seconds <= 0:
            return None
        return self.hub_cpu_seconds / self.seconds * 100

    @property
    def cpu_us_per_message(self) -> float | None:
        if self.hub_cpu_seconds is None or not self.routed:
            return None
        return self.hub_cpu_seconds / self.routed * 1e6

    def as_json(self) -> dict[str, Any]:
        per_message, busy = self.cpu_us_per_message, self.hub_cpu_percent
        return {
            "messages": self.messages,
            "delivered": self.delivered,
            "receipt_records": self.receipt_records,
            "receipted": self.receipted,
            "routed": self.routed,
            "receipts_by": self.receipts_by,
            "seconds": round(self.seconds, 3),
            "msgs_per_s": round(self.rate, 1),
            "hub_cpu_s": None if self.hub_cpu_seconds is None else round(self.hub_cpu_seconds, 3),
            "hub_cpu_us_per_msg": None if per_message is None else round(per_message, 1),
            "hub_cpu_percent": None if busy is None else round(busy, 1),
        }


class _Drain:
    """Counts deliveries and receipts on the inboxes and samples the hub's CPU as they come."""

    def __init__(self, sent: Mapping[str, str], hub_pid: Callable[[], int | None]) -> None:
        self.sent = sent  # message id -> the sender's inbox topic
        self.hub_pid = hub_pid
        self.delivered: set[str] = set()
        self.receipted: set[str] = set()
        self.receipt_records = 0
        self.first = self.last = self.last_receipt = 0.0
        self.cpu_first: float | None = None
        self.cpu_last: float | None = None
        self.started = asyncio.Event()

    def note(self, topic: str, key: bytes | None, value: bytes, headers: Any) -> bool:
        if is_receipt(headers):
            self.receipt_records += 1
            self.last_receipt = time.monotonic()
            self.receipted.update(i for i in sent_ids_in(value, self.sent) if self.sent[i] == topic)
            return True
        message_id = (key or b"").decode(errors="replace")
        if message_id in self.sent:
            self.delivered.add(message_id)
            return True
        return False

    def sample(self) -> tuple[float, float | None]:
        """Now and the hub's CPU seconds so far."""
        pid = self.hub_pid()
        return time.monotonic(), tree_cpu_seconds(pid) if pid else None

    def mark(self, before: tuple[float, float | None]) -> None:
        """Routed events arrived: the clock starts at the poll before the first of them
        (``before``), so a drain that arrives in one batch still has a duration."""
        if not self.first:
            self.first, self.cpu_first = before
            self.started.set()
        self.last, self.cpu_last = self.sample()

    @property
    def mode(self) -> str:
        if self.receipted:
            return "ids"
        return "records" if self.receipt_records else "none seen"

    @property
    def routed(self) -> int:
        if self.mode == "ids":
            return len(self.delivered & self.receipted)
        return len(self.delivered) if self.mode == "records" else 0

    def done(self, quiet_s: float) -> bool:
        if len(self.delivered) < len(self.sent):
            return False
        if self.mode == "ids":
            return self.routed >= len(self.sent)
        return time.monotonic() - max(self.last_receipt, self.last) > quiet_s

    def figures(self) -> RoutingFigures:
        cpu = None
        if self.cpu_first is not None and self.cpu_last is not None:
            cpu = self.cpu_last - self.cpu_first
        return RoutingFigures(
            messages=len(self.sent),
            delivered=len(self.delivered),
            receipt_records=self.receipt_records,
            receipted=len(self.receipted & self.sent.keys()),
            routed=self.routed,
            receipts_by=self.mode,
            seconds=self.last - self.first,
            hub_cpu_seconds=cpu,
        )


async def _drain(
    consumer: AIOKafkaConsumer, drain: _Drain, *, stall_s: float = 60.0, quiet_s: float = 2.0
) -> None:
    progress = time.monotonic()
    while not drain.done(quiet_s):
        before = drain.sample() if not drain.first else (0.0, None)
        batch = await consumer.getmany(timeout_ms=100, max_records=5000)
        seen = False
        for tp, records in batch.items():
            for r in records:
                seen = drain.note(tp.topic, r.key, r.value, r.headers) or seen
        if seen:
            drain.mark(before)
            progress = time.monotonic()
        elif time.monotonic() - progress > stall_s:
            return


async def _py_spy(drain: _Drain, pid: int, path: Path, seconds: int = 15) -> None:
    """``py-spy record`` of the hub for ``seconds`` once routing has begun (speedscope
    format if ``path`` ends in .json, else raw collapsed stacks for flamegraph tools)."""
    await drain.started.wait()
    kind = "speedscope" if path.suffix == ".json" else "raw"
    command = ["py-spy", "record", "-p", str(pid), "-d", str(seconds), "-f", kind]
    process = await asyncio.create_subprocess_exec(
        *command, "-o", str(path), "--nonblocking", stdout=asyncio.subprocess.DEVNULL
    )
    await process.wait()


async def routing_saturation(
    bootstrap: str,
    settings: Settings,
    adapters: Mapping[str, NcbAdapter],
    count: int,
    run_dir: Path,
    profile: Path | None = None,
) -> RoutingFigures:
    """Seal ``count`` messages, produce them as a backlog, start a hub, time the drain;
    with ``profile``, record the hub with py-spy from its first routed message on."""
    if profile is not None and shutil.which("py-spy") is None:
        raise FileNotFoundError("--profile-hub needs py-spy on PATH: pip install py-spy")
    prefix = f"benchr{uuid.uuid4().hex[:6]}"
    local = settings.model_copy(update={"topic_prefix": prefix, "bootstrap": bootstrap})
    await provision_all(local)
    topics = local.topics
    for adapter in adapters.values():
        adapter.topics = topics
    batch = sealed_batch(adapters, count, datetime.now(UTC))
    sent = {message_id: topics.inbox((record.key or b"").decode()) for message_id, record in batch}
    producer = make_producer(bootstrap, local)
    await producer.start()
    try:
        for _, record in batch:
            await producer.send(
                record.topic, record.value, key=record.key, headers=list(record.headers)
            )
        await producer.flush()
    finally:
        await producer.stop()
    consumer = make_consumer(
        bootstrap,
        local,
        topics=[topics.inbox(code) for code in adapters],
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=2 * local.max_message_bytes,
    )
    await consumer.start()
    hub = None
    try:
        hub = start_hub(local, "lyon", bootstrap, run_dir)
        drain = _Drain(sent, lambda: hub.pid if hub is not None and hub.poll() is None else None)
        draining = asyncio.create_task(_drain(consumer, drain))
        if profile is not None:
            spy = asyncio.create_task(_py_spy(drain, hub.pid, profile))
        await asyncio.wait_for(draining, timeout=900)
        if profile is not None:
            if not drain.started.is_set():
                spy.cancel()
            await asyncio.gather(spy, return_exceptions=True)
    finally:
        if hub is not None:
            terminate(hub)
        await consumer.stop()
    return drain.figures()
