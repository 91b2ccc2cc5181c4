"""Rebuild the replay memory from the lanes when a hub starts.

The lanes are the log of what intake admitted: each lane record is keyed by message id
and carries ``i247-origin`` (where intake read it) and ``ce_time`` (when it was created).
Reading them back tells a restarted hub which ids it already accepted, and from where, so
it can tell its own reprocessing (same origin) from a replay (another origin).
"""

from __future__ import annotations

from datetime import datetime

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from brokers.access import process_security
from brokers.records import ReceivedRecord
from schemas import header_names as names
from schemas.topics import TopicCatalog
from streams.core.dedup import SeenMessages

__all__ = ["rebuild_seen_messages", "remember_lane_record"]

log = structlog.get_logger("i247.hub")


def _origin(value: bytes) -> tuple[str, int, int] | None:
    topic, _, rest = value.decode().rpartition("/")
    topic, _, partition = topic.rpartition("/")
    try:
        return topic, int(partition), int(rest)
    except ValueError:
        return None


async def rebuild_seen_messages(
    bootstrap: str, topics: TopicCatalog, seen: SeenMessages, *, now: datetime
) -> int:
    """Load every admitted id still inside the freshness horizon; return how many."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
        **process_security(),
    )
    await consumer.start()
    loaded = 0
    try:
        partitions = [
            TopicPartition(name, p)
            for name in topics.lanes()
            for p in (consumer.partitions_for_topic(name) or {0})
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        pending = {tp for tp, end in ends.items() if end > 0}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=200)
            for tp, records in batch.items():
                for record in records:
                    headers = dict(record.headers or ())
                    origin = _origin(headers.get(names.ORIGIN, b""))
                    created = headers.get("ce_time")
                    if record.key and origin and created:
                        created_at = datetime.fromisoformat(created.decode())
                        seen.remember(record.key.decode(), origin, created_at, now)
                        loaded += 1
                    if record.offset + 1 >= ends[tp]:
                        pending.discard(tp)
    finally:
        await consumer.stop()
    log.info("replay-memory-rebuilt", admitted_ids=loaded)
    return loaded


def remember_lane_record(seen: SeenMessages, record: ReceivedRecord, *, now: datetime) -> bool:
    """Fold one lane record into the replay memory; True if it was remembered."""
    origin = _origin(record.header(names.ORIGIN) or b"")
    created = record.header("ce_time")
    if not (record.key and origin and created):
        return False
    try:
        created_at = datetime.fromisoformat(created.decode())
    except ValueError:
        return False
    return seen.remember(record.key.decode(), origin, created_at, now)
