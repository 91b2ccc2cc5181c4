"""Read whole topics once, from their start to the end they have now (group-less).

``i247 status`` and ``i247 dlq`` need the journals as they are at the moment the command
runs, not a live tail: one consumer notes each partition's end offset, reads up to it,
and stops. Records written meanwhile are left for the next run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition

from brokers.access import client_security
from brokers.clients import make_consumer
from brokers.provisioning import TopicsNotProvisioned, existing_topics
from brokers.records import ReceivedRecord
from brokers.settings import Settings, SettingsError
from brokers.tail import received_from_kafka

__all__ = ["read_to_end"]

_FETCH_WAIT_MS = 50


async def read_to_end(
    settings: Settings,
    topics: Iterable[str],
    on_record: Callable[[ReceivedRecord], None] | None = None,
    *,
    ends_of: Iterable[str] = (),
) -> tuple[list[ReceivedRecord], dict[tuple[str, int], int]]:
    """Every record of ``topics`` up to their current ends, in each partition's order
    (passed to ``on_record`` as read, and returned unless ``on_record`` is given), and the
    ends of ``topics`` and of ``ends_of`` (not read), by (topic, partition)."""
    if not settings.bootstrap:
        raise SettingsError("this command needs a broker: set I247_BOOTSTRAP=host:port")
    wanted = list(dict.fromkeys(topics))
    measured = [t for t in dict.fromkeys(ends_of) if t not in wanted]
    present = await existing_topics(settings.bootstrap, security=client_security(settings))
    missing = [t for t in [*wanted, *measured] if t not in present]
    if missing:
        raise TopicsNotProvisioned(settings.bootstrap, missing)
    consumer = make_consumer(settings, fetch_max_wait_ms=_FETCH_WAIT_MS)
    await consumer.start()
    records: list[ReceivedRecord] = []
    try:
        await consumer._client.force_metadata_update()
        parts, others = _partitions(consumer, wanted), _partitions(consumer, measured)
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets([*parts, *others])
        pending = {tp for tp in parts if ends[tp] > 0}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=_FETCH_WAIT_MS * 4)
            for tp, chunk in batch.items():
                for raw in chunk:
                    if raw.offset >= ends[tp]:
                        break
                    record = received_from_kafka(raw)
                    if on_record is None:
                        records.append(record)
                    else:
                        on_record(record)
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    return records, {(tp.topic, tp.partition): end for tp, end in ends.items()}


def _partitions(consumer: AIOKafkaConsumer, topics: list[str]) -> list[TopicPartition]:
    return [
        TopicPartition(t, p)
        for t in topics
        for p in sorted(consumer.partitions_for_topic(t) or {0})
    ]
