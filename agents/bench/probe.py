"""A probe through a measured path before its timed load: the load then starts live.

Every bench part that times a path from its first record would otherwise time the start-up
of its readers and forwarders (the fixed load's first 300-700 records waited 2-3.5 s; the
checks' first seconds, p50 764 ms over a 5 s run against 22 ms over 15 s).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer

from brokers.records import OutboundRecord

__all__ = ["through_path"]


async def through_path(
    producer: AIOKafkaProducer,
    record: OutboundRecord,
    arrived: asyncio.Event,
    collector: asyncio.Task[Any],
    timeout: float = 120,
) -> None:
    """Send ``record`` and wait until the collector has read it at the end of the path: the
    timed load then starts on a live path. Without it the first seconds timed the readers'
    and forwarders' start-up (the first 300-700 records of a 200/s run waited 2-3.5 s)."""
    await producer.send_and_wait(
        record.topic, record.value, key=record.key, headers=list(record.headers)
    )
    waiting = asyncio.ensure_future(arrived.wait())
    await asyncio.wait({waiting, collector}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if collector.done():
        collector.result()  # the collector's error, if it failed
    elif not arrived.is_set():
        raise TimeoutError(f"the probe did not come through in {timeout:.0f} s")
