"""The brokers layer against a real broker: embedded Tansu, provisioning, clients."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka import TopicPartition

from brokers.clients import make_consumer, make_producer
from brokers.embedded import EmbeddedBroker, broker_for
from brokers.provisioning import provision
from brokers.settings import Settings
from schemas.topics import TopicCatalog

pytestmark = pytest.mark.integration


def test_the_embedded_broker_starts_answers_stops_and_keeps_its_log(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path)
    address = broker.start()
    try:
        assert address.startswith("127.0.0.1:")
        assert broker.process is not None
        assert broker.process.poll() is None
    finally:
        broker.stop()
    assert broker.process is None
    assert broker.log_path.exists()


async def test_with_a_bootstrap_configured_nothing_embedded_starts(bootstrap: str) -> None:
    async with broker_for(Settings(bootstrap=bootstrap)) as address:
        assert address == bootstrap


async def test_provisioning_is_idempotent(bootstrap: str, settings: Settings) -> None:
    specs = settings.topics.core() + settings.topics.inboxes(["FRA", "DEU"])
    first = await provision(bootstrap, specs)
    second = await provision(bootstrap, specs)
    assert len(first.created) == len(specs)
    assert second.created == ()
    assert set(second.existing) == {s.name for s in specs}


async def test_records_round_trip_with_headers_byte_for_byte(
    bootstrap: str, settings: Settings
) -> None:
    topic = TopicCatalog(settings.topic_prefix).deadletter
    await provision(bootstrap, [s for s in settings.topics.core() if s.name == topic])
    headers = [("ce_id", b"\x00\xffraw"), ("i247.dlq.reason", b"stale"), ("empty", b"")]
    producer = make_producer(bootstrap, settings)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"value", key=b"key", headers=headers)
    finally:
        await producer.stop()
    consumer = make_consumer(bootstrap, settings)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        batch = await consumer.getmany(timeout_ms=5000)
    finally:
        await consumer.stop()
    [record] = [r for records in batch.values() for r in records]
    assert (record.key, record.value) == (b"key", b"value")
    assert list(record.headers) == headers
