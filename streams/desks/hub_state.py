"""What one hub process keeps, and the records it writes about itself: dead letters, journal.

Shared by the hub's runtime (leases, the work loop) and its service (timers).
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from opentelemetry.trace import Tracer

from brokers.journal_records import journal_record_of
from brokers.record_headers import cloudevent_headers, dead_letter_headers
from brokers.records import OutboundRecord, ReceivedRecord
from brokers.settings import Settings
from schemas.control_events import control_ce_type
from schemas.header import format_timestamp
from schemas.journal import JournalEventModel
from schemas.keys import Directory, PrivateIdentity
from schemas.participants import hub_id
from schemas.sealing import RandomBytes
from streams.core.dedup import SeenMessages
from streams.core.desk_state import DeskState
from streams.core.intake import IntakePolicy, Refused
from streams.core.roster import DutyRoster
from streams.health.metrics import HubMetrics

__all__ = ["HubState", "dead_letter", "journal_event", "journal_record", "utc_now"]

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
    desks: DeskState = field(init=False)
    policy: IntakePolicy = field(init=False)
    counts: Counter[str] = field(default_factory=Counter)
    metrics: HubMetrics = field(default_factory=HubMetrics)
    tracer: Tracer | None = None  # None: I247_TRACES=off (streams.hub.tracing)

    def __post_init__(self) -> None:
        self.seen = SeenMessages(horizon=self.settings.freshness_seconds)
        self.desks = DeskState()  # folded from the journal by the hub's tail
        self.policy = IntakePolicy(
            max_bytes=self.settings.max_message_bytes,
            freshness=timedelta(seconds=self.settings.freshness_seconds),
        )

    @property
    def hub(self) -> str:
        return hub_id(self.site)


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
    """An untyped event for the operations journal (``i247.control``), with CloudEvents
    headers: what the desks still write until their events are typed (``journal_event``)."""
    now = state.clock()
    body = {"event": event, "hub": state.hub, "time": format_timestamp(now), **fields}
    headers = cloudevent_headers(
        _event_id(state),
        f"/i247/{state.hub}",
        control_ce_type(event),
        format_timestamp(now),
        content_type="application/json",
    )
    return OutboundRecord(
        state.settings.topics.control, key.encode(), json.dumps(body).encode(), tuple(headers)
    )


def journal_event(state: HubState, event: JournalEventModel, key: str) -> OutboundRecord:
    """A typed journal event (``schemas.journal``) as its record on ``i247.control``."""
    return journal_record_of(
        event, topic=state.settings.topics.control, key=key, event_id=_event_id(state)
    )


def _event_id(state: HubState) -> str:
    return str(uuid.UUID(bytes=state.random_bytes(16), version=4))
