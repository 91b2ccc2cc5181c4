"""A paced tail (it rests after an empty fetch) still hands over every record, in order."""

from __future__ import annotations

import asyncio

import pytest

from brokers.clients import make_producer
from brokers.provisioning import provision
from brokers.records import ReceivedRecord
from brokers.settings import Settings
from brokers.tail import TopicTail
from schemas.topics import TopicKind, TopicSpec

PACE_MS = 400


async def produce(settings: Settings, topic: str, values: list[bytes]) -> int:
    """Write ``values``; return the offset of the last."""
    producer = make_producer(settings)
    await producer.start()
    try:
        last = -1
        for value in values:
            last = (await producer.send_and_wait(topic, value, key=b"k")).offset
        return int(last)
    finally:
        await producer.stop()


@pytest.mark.parametrize("busy_pace_ms", [0, PACE_MS], ids=["rests-when-idle", "rests-always"])
async def test_a_paced_tail_reads_every_record_in_order_after_idling(
    settings: Settings, busy_pace_ms: int
) -> None:
    assert settings.bootstrap
    topic = settings.topics.control
    await provision(settings.bootstrap, [TopicSpec(topic, TopicKind.CONTROL)])
    seen: list[ReceivedRecord] = []
    tail = TopicTail(
        settings.bootstrap, [topic], seen.append, pace_ms=PACE_MS, busy_pace_ms=busy_pace_ms
    )
    await tail.start()
    try:
        first = [f"before-{n}".encode() for n in range(5)]
        last = await produce(settings, topic, first)
        await tail.wait_past(topic, last)
        await asyncio.sleep(3 * PACE_MS / 1000)  # idle: the tail rests between empty fetches
        second = [f"after-{n}".encode() for n in range(20)]
        await tail.catch_up()  # waiting for nothing new must not hang on a resting tail
        last = await produce(settings, topic, second)
        assert await tail.wait_until(lambda: len(seen) == len(first + second), timeout=60)
    finally:
        await tail.stop()
    assert [r.value for r in seen] == first + second
    assert [r.offset for r in seen] == list(range(len(first + second)))


async def test_a_resting_tail_picks_up_a_record_without_a_waiter(settings: Settings) -> None:
    """Nobody waits on it: the rest ends by itself and the next fetch brings the record."""
    assert settings.bootstrap
    topic = settings.topics.control
    await provision(settings.bootstrap, [TopicSpec(topic, TopicKind.CONTROL)])
    arrived = asyncio.Event()
    tail = TopicTail(settings.bootstrap, [topic], lambda record: arrived.set(), pace_ms=PACE_MS)
    await tail.start()
    try:
        await asyncio.sleep(3 * PACE_MS / 1000)
        await produce(settings, topic, [b"late"])
        async with asyncio.timeout(60):
            await arrived.wait()
    finally:
        await tail.stop()
    assert tail.position(topic) == 1
