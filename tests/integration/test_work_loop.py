"""The work loop on the real broker: a term whose outputs fail restarts and still delivers.

A lane record is planned (the delivery ledger notes it) before its outputs are produced;
when they are not acknowledged the loop restarts from the term's positions and reads the
same record again, which must be delivered then, not taken for a duplicate.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from agents.ncb.adapter import NcbAdapter
from brokers.clients import make_consumer, make_producer
from brokers.provisioning import provision
from brokers.records import OutboundRecord, ReceivedRecord
from brokers.settings import Settings
from schemas.bodies import MessageBody
from schemas.header import Precedence
from schemas.topics import TopicKind, TopicSpec
from streams.core.delivery import DeliveryLedger, plan_delivery
from streams.hub.unit_workers import WorkerContext, WorkLoop
from tests.unit.factories import small_keyring

BODY = MessageBody(subject="Cash courier intercepted", text="EUR 400,000 in false-bottom case")
RECIPIENTS = ("DEU", "ITA")
MESSAGES = 12


class Deliveries:
    """A lane's delivery handler with one ledger for the term, as the hub's is."""

    def __init__(self, settings: Settings, *, fail_after_planning: int = 0) -> None:
        self.settings = settings
        self.ledger = DeliveryLedger()
        self.fail_after_planning = fail_after_planning  # crash this many times, once planned

    async def handle(self, record: ReceivedRecord, epoch: int) -> list[OutboundRecord]:
        plan = plan_delivery(
            record,
            hub="hub:lyon",
            topics=self.settings.topics,
            ledger=self.ledger,
            max_bytes=self.settings.max_message_bytes,
        )
        if self.fail_after_planning:
            self.fail_after_planning -= 1
            raise RuntimeError("a step after planning failed (e.g. provisioning an inbox)")
        return list(plan.inbox)


class Producers:
    """The loop's producers: the first refuses every record (as a broker that never
    acknowledges would leave them undone), the ones after a restart are sound. With
    ``impatient_first`` the loop gives the first producer's acknowledgements no time at
    all (they come too late), and ten seconds after a restart."""

    def __init__(
        self, settings: Settings, *, first_refuses: bool, impatient_first: bool = False
    ) -> None:
        self.settings = settings
        self.first_refuses = first_refuses
        self.impatient_first = impatient_first
        self.context: WorkerContext | None = None
        self.made = 0

    def __call__(self) -> AIOKafkaProducer:
        self.made += 1
        if self.context is not None:
            self.context.ack_timeout = 0.0 if self.impatient_first and self.made == 1 else 10.0
        if self.first_refuses and self.made == 1:
            return make_producer(self.settings, max_request_size=64)
        return make_producer(self.settings)


async def send_lane(settings: Settings, lane: str) -> list[str]:
    directory, ids = small_keyring()
    fra = NcbAdapter(ids["FRA"], directory, settings.topics)
    assert settings.bootstrap
    await provision(
        settings.bootstrap,
        [TopicSpec(lane, TopicKind.LANE), *settings.topics.inboxes(list(RECIPIENTS))],
    )
    producer = make_producer(settings)
    await producer.start()
    ids_sent: list[str] = []
    try:
        for _ in range(MESSAGES):
            header, record = fra.compose(
                list(RECIPIENTS), BODY, now=datetime.now(UTC), random_bytes=os.urandom
            )
            await producer.send_and_wait(lane, record.value, key=record.key)
            ids_sent.append(header.message_id)
    finally:
        await producer.stop()
    return ids_sent


async def delivered(settings: Settings, expected: int) -> Counter[tuple[str, str]]:
    """(message id, recipient) of every inbox record, once ``expected`` are there."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    seen: Counter[tuple[str, str]] = Counter()
    try:
        inboxes = {settings.topics.inbox(code): code for code in RECIPIENTS}
        consumer.assign([TopicPartition(topic, 0) for topic in inboxes])
        for tp in consumer.assignment():
            consumer.seek(tp, 0)
        async with asyncio.timeout(60):
            while sum(seen.values()) < expected:
                batch = await consumer.getmany(timeout_ms=200)
                for tp, records in batch.items():
                    for raw in records:
                        seen[(raw.key.decode(), inboxes[tp.topic])] += 1
        # anything extra already written would be read by now; one more short fetch
        for records in (await consumer.getmany(timeout_ms=500)).values():
            for raw in records:
                seen[(raw.key.decode(), inboxes[raw.topic])] += 1
    finally:
        await consumer.stop()
    return seen


async def run_term(settings: Settings, lane: str, handler: Deliveries, producers: Producers) -> int:
    """Carry the lane for one term until every record is done; the restarts it took."""
    context = WorkerContext(
        new_consumer=lambda: make_consumer(settings),
        new_producer=producers,
        may_work=lambda unit, epoch: True,
        on_first_output=lambda unit, epoch, at: asyncio.sleep(0),
        clock=lambda: datetime.now(UTC),
        ack_timeout=10.0,
    )
    producers.context = context
    loop = WorkLoop(context)
    await loop.start()
    try:
        term = await loop.add(lane, lane, 1, {0: 0}, handler.handle)
        for _ in range(1200):  # done within a minute, however loaded the machine
            if term.positions.get(0, 0) >= MESSAGES:
                break
            await asyncio.sleep(0.05)
        assert term.positions.get(0, 0) == MESSAGES
    finally:
        await loop.stop()
    return producers.made - 1


async def test_outputs_not_acknowledged_restart_the_loop_and_every_message_is_delivered_once(
    settings: Settings,
) -> None:
    lane = settings.topics.lane("lyon", Precedence.ROUTINE)
    sent = await send_lane(settings, lane)
    producers = Producers(settings, first_refuses=True)

    restarts = await run_term(settings, lane, Deliveries(settings), producers)

    assert restarts >= 1
    got = await delivered(settings, MESSAGES * len(RECIPIENTS))
    assert got == Counter({(m, code): 1 for m in sent for code in RECIPIENTS})


async def test_a_handler_failing_after_planning_retries_and_loses_nothing(
    settings: Settings,
) -> None:
    lane = settings.topics.lane("lyon", Precedence.ROUTINE)
    sent = await send_lane(settings, lane)
    handler = Deliveries(settings, fail_after_planning=2)

    await run_term(settings, lane, handler, Producers(settings, first_refuses=False))

    assert handler.fail_after_planning == 0
    got = await delivered(settings, MESSAGES * len(RECIPIENTS))
    assert got == Counter({(m, code): 1 for m in sent for code in RECIPIENTS})


async def test_acknowledgements_that_come_too_late_restart_the_loop_and_lose_nothing(
    settings: Settings,
) -> None:
    """The first producer's outputs land after the loop gave up on them (the old producer
    flushes as it stops): recipients may get a copy twice, never none."""
    lane = settings.topics.lane("lyon", Precedence.ROUTINE)
    sent = await send_lane(settings, lane)
    producers = Producers(settings, first_refuses=False, impatient_first=True)

    restarts = await run_term(settings, lane, Deliveries(settings), producers)

    assert restarts >= 1
    got = await delivered(settings, MESSAGES * len(RECIPIENTS))
    assert set(got) == {(m, code) for m in sent for code in RECIPIENTS}
