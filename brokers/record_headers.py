"""Kafka record headers the backbone writes and reads, as pure functions.

* CloudEvents 1.0, Kafka protocol binding, binary mode (``ce_*``), so tools outside the
  project can read the traffic's metadata;
* W3C Trace Context ``traceparent``;
* dead-letter headers in the manner of Kafka Connect's ``__connect.errors.*``, under
  ``i247.dlq.*``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from schemas.header import RoutingHeader, format_timestamp

__all__ = [
    "CONTENT_TYPE",
    "DeadLetterInfo",
    "cloudevent_headers",
    "dead_letter_headers",
    "envelope_headers",
    "header_value",
    "parse_traceparent",
    "read_dead_letter",
    "traceparent",
]

Headers = Iterable[tuple[str, bytes]]
CONTENT_TYPE = "application/vnd.i247.envelope+json; version=1"
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
DLQ = "i247.dlq."


def header_value(headers: Headers, name: str) -> bytes | None:
    """The first value of header ``name``, or None."""
    for key, value in headers:
        if key == name:
            return value
    return None


def traceparent(trace_id: str, span_id: str, *, sampled: bool = True) -> str:
    """``00-<trace id>-<span id>-<flags>``; ids are lowercase hex and never all zero."""
    value = f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}"
    parse_traceparent(value)
    return value


def parse_traceparent(value: str) -> tuple[str, str, bool]:
    """(trace id, parent span id, sampled); ``ValueError`` for anything W3C forbids."""
    match = _TRACEPARENT.match(value)
    if not match:
        raise ValueError(f"not a version-00 traceparent: {value!r}")
    trace_id, span_id, flags = match.groups()
    if set(trace_id) == {"0"} or set(span_id) == {"0"}:
        raise ValueError("traceparent ids must not be all zeros")
    return trace_id, span_id, bool(int(flags, 16) & 1)


def cloudevent_headers(
    event_id: str, source: str, event_type: str, time: str
) -> list[tuple[str, bytes]]:
    """Binary-mode CloudEvents attributes as Kafka headers."""
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", event_id.encode()),
        ("ce_source", source.encode()),
        ("ce_type", event_type.encode()),
        ("ce_time", time.encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]


def envelope_headers(header: RoutingHeader, span_id: str) -> tuple[tuple[str, bytes], ...]:
    """The headers of a sealed record (docs/wire-format.md §7)."""
    return (
        *cloudevent_headers(
            header.message_id,
            f"/i247/{header.sender}",
            f"int.interpol.i247.{header.message_type.value}.v1",
            format_timestamp(header.created_at),
        ),
        ("traceparent", traceparent(header.trace_id, span_id).encode()),
    )


class DeadLetterInfo(BaseModel):
    """Why and from where a record was dead-lettered."""

    model_config = ConfigDict(frozen=True)

    reason: str
    detail: str
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    processor: str


def dead_letter_headers(
    *,
    reason: str,
    detail: str,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int,
    processor: str,
) -> list[tuple[str, bytes]]:
    return [
        (f"{DLQ}reason", reason.encode()),
        (f"{DLQ}detail", detail.encode()[:4096]),
        (f"{DLQ}topic", topic.encode()),
        (f"{DLQ}partition", str(partition).encode()),
        (f"{DLQ}offset", str(offset).encode()),
        (f"{DLQ}timestamp", str(timestamp_ms).encode()),
        (f"{DLQ}processor", processor.encode()),
    ]


def read_dead_letter(headers: Headers) -> DeadLetterInfo:
    """The dead-letter headers of a record; ``KeyError`` if it has none."""
    found = {k.removeprefix(DLQ): v.decode() for k, v in headers if k.startswith(DLQ)}
    return DeadLetterInfo(
        reason=found["reason"],
        detail=found["detail"],
        topic=found["topic"],
        partition=int(found["partition"]),
        offset=int(found["offset"]),
        timestamp_ms=int(found["timestamp"]),
        processor=found["processor"],
    )
