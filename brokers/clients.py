"""Producer and consumer factories with settings right for Tansu and for Apache Kafka.

* ``acks="all"`` and idempotence off: Tansu rejects InitProducerId (aiokafka speaks v0),
  so deduplication is the application's (message ids), on both brokers alike;
* ``fetch_max_wait_ms`` from settings: Tansu does not wake a waiting fetch, so this wait
  *is* the per-hop latency there; on Kafka it only bounds idle polling;
* short session timeouts from settings: Tansu holds a group join for half of it;
* manual offset commits; room for records up to twice ``I247_MAX_MESSAGE_BYTES`` (headers).
"""

from __future__ import annotations

import signal
import subprocess
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from brokers.settings import Settings

__all__ = ["make_consumer", "make_producer", "terminate"]


def make_producer(bootstrap: str, settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """A producer (not started) for ``bootstrap``."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "enable_idempotence": False,
        "linger_ms": 2,
        "max_request_size": 2 * settings.max_message_bytes,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def make_consumer(
    bootstrap: str, settings: Settings, *topics: str, group_id: str | None = None, **overrides: Any
) -> AIOKafkaConsumer:
    """A consumer (not started); subscribed to ``topics`` if given, else for ``assign``."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": settings.fetch_max_wait_ms,
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
        "max_partition_fetch_bytes": 2 * settings.max_message_bytes,
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


def terminate(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds: how every child process is stopped."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
