"""Producer and consumer factories with settings right for Tansu and for Apache Kafka.

* ``acks="all"`` and idempotence off: Tansu rejects InitProducerId (aiokafka speaks v0),
  so deduplication is the application's (message ids), on both brokers alike;
* ``fetch_max_wait_ms`` from settings: Tansu does not wake a waiting fetch, so this wait
  *is* the per-hop latency there; on Kafka it only bounds idle polling. Consumers made
  here adapt it (``brokers.fetch_wait``): that short wait while records flow, growing to
  ``I247_IDLE_FETCH_WAIT_MS`` while idle, so an idle consumer costs the broker a few
  fetches a second instead of a hundred;
* short session timeouts from settings: Tansu holds a group join for half of it;
* manual commits, reading from the earliest offset when a group has none;
* room for records up to twice ``I247_MAX_MESSAGE_BYTES``: the application refuses bodies
  above the limit itself (Tansu has no size limit), the rest is key and headers;
* TLS and SASL as ``I247_SECURITY`` says (``brokers.access.client_security``).
* batches per partition of up to ``I247_MAX_MESSAGE_BYTES``: aiokafka keeps one produce
  request in flight per broker, and ``send`` waits while a partition's batch is full, so
  at its default 16 KiB (six sealed records) a burst to one lane cost a round trip per six
  records (a hub's intake topped out near 220 records/s, its CPU a third busy).

Group offsets without group membership (measured in tests/integration/test_brokers.py):
a consumer with a ``group_id`` that picks its partitions with ``assign()`` never joins the
group, yet ``commit()`` stores the group's offsets and a later consumer of that group
resumes from them; no join, so no session-timeout wait. While a *subscribed* member of the
same group is alive such commits are refused (UnknownMemberId, raised as
``CommitFailedError``). Tansu 0.6 behaves so, as Apache Kafka's group coordinator does for
a "standalone" consumer (generation -1). So an NCB adapter can own its inbox partitions and
keep its place, provided no consumer subscribes under the same group id.

Both clients are async context managers: ``async with make_producer(settings) as p: ...``.
A client whose ``start()`` fails (no broker) closes itself before the error propagates, so
an unreachable broker leaves no "Unclosed AIOKafka..." warning behind.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer

from brokers.access import client_security
from brokers.fetch_wait import AdaptiveConsumer
from brokers.settings import Settings

__all__ = [
    "BACKGROUND_FETCH_WAIT_MS",
    "Consumer",
    "make_consumer",
    "make_producer",
    "terminate",
]

LINGER_MS = 2  # a few ms batch bursts without adding visible latency


class _Producer(AIOKafkaProducer):  # type: ignore[misc]  # aiokafka is untyped
    """An AIOKafkaProducer that closes itself when ``start()`` fails and whose metadata
    keeps every topic it has sent to (see ``send``)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._tracked: set[str] = set()

    async def send(self, topic: str, *args: Any, **kwargs: Any) -> Any:
        """Send as aiokafka does, with ``topic`` named in the client's metadata requests.

        aiokafka 0.14 tracks only the topics it had to look up: a producer that found its
        topics in the bootstrap metadata tracks none, and its first send to a topic created
        later asks the broker for that one topic alone. The answer replaces the cluster
        view, every other topic's leader becomes unknown, and their batches wait while the
        sender asks again in a tight loop (a hub's deliveries stalled 3 s, thousands of
        metadata requests a second, each time a team's inbox was created).
        """
        if topic not in self._tracked:
            self._tracked.add(topic)
            if self.client.cluster.partitions_for_topic(topic) is None:
                self.client.set_topics(self._tracked)  # one lookup, naming them all
        return await super().send(topic, *args, **kwargs)

    async def start(self) -> None:
        try:
            await super().start()
        except BaseException:
            await self.stop()
            raise


class Consumer(AdaptiveConsumer):
    """An adaptive consumer that closes itself when ``start()`` fails, and whose ``stop()``
    ends even when a fetch failed just before it."""

    async def start(self) -> None:
        try:
            await super().start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop as aiokafka does, to the end, and raise only a cancellation of the caller's.

        aiokafka 0.14's fetcher cancels its pending fetch tasks and awaits each; one in its
        retry back-off (its fetch just failed: the broker went away) raises that
        cancellation into the caller. The stop ended half way, its client left open, and
        the calling task died: a hub's broker watch, as it reacted to the broker's loss.
        """
        try:
            await super().stop()
        except asyncio.CancelledError:
            caller = asyncio.current_task()
            if caller is not None and caller.cancelling():
                raise
            pending = list(getattr(self._fetcher, "_pending_tasks", ()))
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await self._client.close()


def _target(target: Settings | str, settings: Settings | None) -> tuple[str, Settings]:
    """The bootstrap address and the tuning, from a Settings or from an address + Settings."""
    if isinstance(target, Settings):
        if settings is not None:
            raise TypeError("pass the settings once: make_producer(settings) or (bootstrap, s)")
        if not target.bootstrap:
            raise ValueError(
                "settings.bootstrap is unset: start a broker first (brokers.embedded.broker_for)"
                " or set I247_BOOTSTRAP"
            )
        return target.bootstrap, target
    return target, settings if settings is not None else Settings()


BACKGROUND_FETCH_WAIT_MS = 100
"""Fetch wait for readers off the message path (replay memory, notices, books, archive).

On Tansu a waiting fetch is woken late by a new record (up to 0.7 s), so every consumer
polls once per fetch wait: 30 idle consumers at 10 ms cost about 0.6 of a core in the broker
and as much again in the clients (measured on two cores); at 100 ms, 0.2 and 0.1. Only the
hops a message takes (intake, lanes, inboxes) and the lease journal need the short wait.
"""


def make_producer(
    target: Settings | str, settings: Settings | None = None, /, **overrides: Any
) -> AIOKafkaProducer:
    """A producer, not started, for ``settings.bootstrap`` or the given bootstrap address.

    ``overrides`` are AIOKafkaProducer options and win over the defaults here.
    """
    bootstrap, tuning = _target(target, settings)
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "enable_idempotence": False,
        "linger_ms": LINGER_MS,
        "max_request_size": 2 * tuning.max_message_bytes,
        **client_security(tuning),
        "max_batch_size": tuning.max_message_bytes,
    }
    options.update(overrides)
    return _Producer(**options)


def make_consumer(
    target: Settings | str,
    settings: Settings | None = None,
    /,
    *,
    group_id: str | None = None,
    topics: Iterable[str] | None = None,
    **overrides: Any,
) -> Consumer:
    """A consumer, not started: subscribed to ``topics`` if given, else ready for ``assign``.

    With ``group_id`` it commits that group's offsets (explicitly: auto-commit is off);
    without, it keeps no offsets. ``overrides`` are AIOKafkaConsumer options; its fetch
    wait starts at ``fetch_max_wait_ms`` and grows to the idle cap (``idle_fetch_wait_ms``,
    an override too) while nothing arrives.
    """
    bootstrap, tuning = _target(target, settings)
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": tuning.fetch_max_wait_ms,
        "session_timeout_ms": tuning.session_timeout_ms,
        "heartbeat_interval_ms": tuning.heartbeat_interval_ms,
        "max_partition_fetch_bytes": 2 * tuning.max_message_bytes,
        **client_security(tuning),
    }
    idle_ms = int(overrides.pop("idle_fetch_wait_ms", tuning.idle_fetch_wait_ms))
    options.update(overrides)
    return Consumer(*(topics or ()), idle_fetch_wait_ms=idle_ms, **options)


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
