"""A CCC hub as a faust worker: intake on the inbound topic, delivery from the lanes.

The agents here stay short: turn the faust event into a ``ReceivedRecord``, call the pure
core (``admit``, ``plan_delivery``), produce what it returns. The state they keep (replay
memory, delivery ledger, handling clocks) lives in ``HubState`` and is rebuilt, where it
matters, from the log when the hub starts.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from brokers.record_headers import cloudevent_headers, dead_letter_headers
from brokers.records import OutboundRecord, ReceivedRecord
from brokers.settings import Settings
from schemas.header import Precedence, format_timestamp
from schemas.keys import Directory, PrivateIdentity
from schemas.participants import HUB_SITES, hub_id
from schemas.sealing import RandomBytes
from streams.clocks import HandlingClocks
from streams.dedup import SeenMessages
from streams.delivery import DeliveryLedger, plan_delivery, seal_receipt
from streams.intake import Admitted, IntakePolicy, Redelivered, Refused, admit
from streams.liveness import Heartbeat
from streams.replay_memory import rebuild_seen_messages
from streams.roster import DutyRoster
from streams.transport import LowLatencyApp

__all__ = ["HubState", "build_hub_app"]

log = structlog.get_logger("i247.hub")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class HubState:
    """What one hub process remembers between records."""

    settings: Settings
    site: str
    bootstrap: str
    directory: Directory
    identity: PrivateIdentity
    roster: DutyRoster
    clock: Callable[[], datetime] = utc_now
    random_bytes: RandomBytes = os.urandom
    seen: SeenMessages = field(init=False)
    ledger: DeliveryLedger = field(default_factory=DeliveryLedger)
    clocks: HandlingClocks = field(init=False)
    policy: IntakePolicy = field(init=False)
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.seen = SeenMessages(horizon=self.settings.freshness_seconds)
        self.clocks = HandlingClocks(scale=self.settings.clock_scale)
        self.policy = IntakePolicy(
            max_bytes=self.settings.max_message_bytes,
            freshness=timedelta(seconds=self.settings.freshness_seconds),
        )

    @property
    def hub(self) -> str:
        return hub_id(self.site)


def received(event: Any) -> ReceivedRecord:
    """A faust event as the core's record type."""
    message = event.message
    headers = message.headers or ()
    if isinstance(headers, dict):
        headers = tuple(headers.items())
    return ReceivedRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=int((message.timestamp or 0) * 1000),
        key=message.key,
        value=message.value if message.value is not None else b"",
        headers=tuple((k, bytes(v)) for k, v in headers),
    )


def dead_letter(
    record: ReceivedRecord, refusal: Refused, topic: str, processor: str
) -> OutboundRecord:
    """The record, untouched, with the reason in ``i247.dlq.*`` headers."""
    headers = record.headers + tuple(
        dead_letter_headers(
            reason=refusal.reason.value,
            detail=refusal.detail,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp_ms,
            processor=processor,
        )
    )
    return OutboundRecord(topic, record.key, record.value, headers)


def journal_record(state: HubState, event: str, key: str, fields: dict[str, Any]) -> OutboundRecord:
    """An event for the operations journal (``i247.control``), with CloudEvents headers."""
    now = state.clock()
    event_id = str(uuid.UUID(bytes=state.random_bytes(16), version=4))
    body = {"event": event, "hub": state.hub, "time": format_timestamp(now), **fields}
    headers = cloudevent_headers(
        event_id,
        f"/i247/{state.hub}",
        f"int.interpol.i247.control.{event}.v1",
        format_timestamp(now),
    )
    headers[-1] = ("content-type", b"application/json")
    return OutboundRecord(
        state.settings.topics.control, key.encode(), json.dumps(body).encode(), tuple(headers)
    )


def build_hub_app(state: HubState) -> LowLatencyApp:
    """The faust app of one hub; run it with ``faust.Worker``."""
    settings = state.settings
    topics = settings.topics
    datadir = Path(settings.data_dir).resolve() / "faust" / f"{topics.prefix}-ccc-{state.site}"
    app = LowLatencyApp(
        f"{topics.prefix}-ccc-{state.site}",
        broker=[f"kafka://{host}" for host in state.bootstrap.split(",")],
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        broker_session_timeout=settings.session_timeout_ms / 1000,
        broker_heartbeat_interval=settings.heartbeat_interval_ms / 1000,
        broker_request_timeout=max(30.0, 2 * settings.session_timeout_ms / 1000),
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_max_request_size=2 * settings.max_message_bytes,
        topic_replication_factor=settings.replication_factor,
        topic_partitions=1,
        web_enabled=False,
        store="memory://",
        datadir=str(datadir),
        stream_wait_empty=False,
        autodiscover=False,
    )
    datadir.mkdir(parents=True, exist_ok=True)  # faust creates only the last level
    processor = f"{state.hub}/intake"

    def raw_topic(name: str) -> Any:
        return app.topic(
            name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

    async def produce(out: OutboundRecord) -> None:
        await app.producer.send(
            out.topic,
            out.key,
            out.value,
            partition=None,
            timestamp=None,
            headers=list(out.headers),
        )

    @app.agent(raw_topic(topics.inbound), name="intake")
    async def intake(stream: Any) -> AsyncIterator[None]:
        await rebuild_seen_messages(state.bootstrap, topics, state.seen, now=state.clock())
        async for event in stream.events():
            record = received(event)
            outcome = admit(
                record,
                now=state.clock(),
                directory=state.directory,
                seen=state.seen,
                roster=state.roster,
                topics=topics,
                policy=state.policy,
            )
            if isinstance(outcome, Admitted):
                await produce(outcome.lane)
                state.counts["admitted"] += 1
                log.debug(
                    "admitted",
                    message_id=outcome.header.message_id,
                    trace_id=outcome.header.trace_id,
                    lane=outcome.lane.topic,
                    rule=outcome.assessment.rule,
                )
            elif isinstance(outcome, Refused):
                await produce(dead_letter(record, outcome, topics.deadletter, processor))
                state.counts[f"refused.{outcome.reason.value}"] += 1
                log.info(
                    "refused",
                    message_id=outcome.message_id,
                    reason=outcome.reason.value,
                    detail=outcome.detail,
                    origin=record.origin,
                )
            elif isinstance(outcome, Redelivered):
                state.counts["redelivered"] += 1
            yield None

    async def deliver(stream: Any) -> AsyncIterator[None]:
        async for event in stream.events():
            record = received(event)
            now = state.clock()
            plan = plan_delivery(
                record,
                hub=state.hub,
                topics=topics,
                ledger=state.ledger,
                max_bytes=settings.max_message_bytes,
            )
            if plan.clocked_recipients:  # before delivering, so an ack can never arrive first
                state.clocks.start(
                    plan.header.message_id, plan.clocked_recipients, plan.precedence, now
                )
            for out in plan.inbox:
                await produce(out)
            for order in plan.receipts:
                await produce(
                    seal_receipt(
                        order,
                        hub=state.identity,
                        directory=state.directory,
                        topics=topics,
                        now=now,
                        random_bytes=state.random_bytes,
                    )
                )
            if plan.acknowledge:
                state.clocks.acknowledge(
                    plan.acknowledge.message_id, plan.acknowledge.recipient, now
                )
            state.counts["delivered"] += len(plan.inbox)
            state.counts["ccc"] += int(plan.to_ccc)
            state.counts["duplicates"] += len(plan.duplicates)
            log.debug(
                "delivered",
                message_id=plan.header.message_id,
                trace_id=plan.header.trace_id,
                precedence=plan.precedence.value,
                recipients=len(plan.inbox),
            )
            yield None

    for precedence in Precedence:
        lane_topics = [raw_topic(topics.lane(site, precedence)) for site in HUB_SITES]
        channel = app.topic(
            *[t.get_topic_name() for t in lane_topics],
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )
        app.agent(channel, name=f"deliver-{precedence.lane}")(deliver)

    announced = False
    held: set[str] = set()
    sequence = 0

    async def announce(sender: Any, *args: Any, signal: Any = None, **_: Any) -> None:
        assigned = args[0] if args else set()
        nonlocal announced
        event = "hub-ready" if not announced else "hub-rebalanced"
        announced = True
        lanes = sorted({tp.topic for tp in assigned if tp.topic != topics.inbound})
        held.clear()
        held.update(lanes)
        await produce(journal_record(state, event, state.hub, {"lanes": lanes}))
        log.info(event, hub=state.hub, partitions=len(assigned))

    app.on_partitions_assigned.connect(announce)  # type: ignore[arg-type]  # faust types a sync receiver

    @app.timer(1.0)  # type: ignore[untyped-decorator]
    async def clocks_due() -> None:
        for breach in state.clocks.due(state.clock()):
            await produce(
                journal_record(
                    state, "handling-breach", breach.message_id, breach.model_dump(mode="json")
                )
            )
            state.counts["breaches"] += 1
            log.warning(
                "handling-breach", message_id=breach.message_id, precedence=breach.precedence.value
            )

    @app.timer(1.0)  # type: ignore[untyped-decorator]
    async def heartbeat() -> None:
        nonlocal sequence
        beat = Heartbeat(
            site=state.site, sequence=sequence, sent_at=state.clock(), lanes=tuple(sorted(held))
        )
        sequence += 1
        await produce(
            OutboundRecord(topics.heartbeat, state.site.encode(), beat.model_dump_json().encode())
        )

    @app.timer(10.0)  # type: ignore[untyped-decorator]
    async def report() -> None:
        log.info(
            "hub-stats", hub=state.hub, **dict(state.counts), open_clocks=state.clocks.open_count
        )

    return app
