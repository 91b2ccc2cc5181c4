"""Kafka record headers the backbone writes and reads, as pure functions.

* CloudEvents 1.0, Kafka protocol binding, binary mode (``ce_*`` plus ``content-type``), so
  tools outside the project can read the traffic's metadata without opening a body;
* W3C Trace Context ``traceparent`` (version 00); span ids are passed in, never drawn here;
* dead-letter headers in the manner of Kafka Connect's ``__connect.errors.*``, under
  ``i247.dlq.*``: why a record was refused, where it was read, and who refused it.

Headers are ``(name, bytes)`` pairs as aiokafka gives them. Kafka allows a name to repeat;
like Kafka's ``Headers.lastHeader`` the readers here take the *last* value, so a record
refused again after a replay reports its latest refusal. Malformed headers come from the
wire: they raise ``BadHeader``, which callers dead-letter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.header import MessageType, RoutingHeader, format_timestamp
from schemas.header_names import (
    CE_ID,
    CE_SOURCE,
    CE_SPECVERSION,
    CE_TIME,
    CE_TYPE,
    DLQ_FIELDS,
    DLQ_PREFIX,
    HUB,
    REPLAY_FIELDS,
    REPLAY_PREFIX,
    TRACEPARENT,
)
from schemas.header_names import CONTENT_TYPE as CONTENT_TYPE_HEADER

__all__ = [
    "CONTENT_TYPE",
    "DLQ_PREFIX",
    "RECEIPTS_CONTENT_TYPE",
    "RECEIPTS_TYPE",
    "REPLAY_PREFIX",
    "BadHeader",
    "CloudEvent",
    "DeadLetterInfo",
    "Headers",
    "ReplayMark",
    "TraceParent",
    "cloudevent_headers",
    "dead_letter_headers",
    "envelope_headers",
    "envelope_message_type",
    "envelope_type",
    "header_value",
    "is_receipt_batch",
    "parse_traceparent",
    "read_cloudevent",
    "read_dead_letter",
    "read_replay_mark",
    "receipt_batch_headers",
    "replay_headers",
    "traceparent",
]

Headers = Iterable[tuple[str, bytes]]
CONTENT_TYPE = "application/vnd.i247.envelope+json; version=1"
_ENVELOPE_TYPE = ("int.interpol.i247.", ".v1")  # ce_type = prefix + message type + suffix
RECEIPTS_TYPE = "int.interpol.i247.receipt-batch.v1"  # a signed receipt batch, not an envelope
RECEIPTS_CONTENT_TYPE = "application/vnd.i247.receipts+json; version=1"
MAX_DETAIL_BYTES = 4096

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$", re.IGNORECASE
)
_INTEGER = re.compile(r"^-?[0-9]{1,19}$")
_DLQ_FIELDS = DLQ_FIELDS


class BadHeader(ValueError):
    """A record's headers are missing or malformed: the sender's fault, so dead-letter it."""


def header_value(headers: Headers, name: str) -> bytes | None:
    """The last value of header ``name`` (as Kafka's ``lastHeader``), or None if absent."""
    found = None
    for key, value in headers:
        if key == name:
            found = value
    return found


def _text(headers: Headers, name: str) -> str:
    value = header_value(headers, name)
    if value is None:
        raise BadHeader(f"header {name!r} is missing")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise BadHeader(f"header {name!r} is not UTF-8") from None


# --- W3C Trace Context --------------------------------------------------------------


class TraceParent(NamedTuple):
    """The parts of a version-00 ``traceparent``."""

    trace_id: str
    parent_id: str
    sampled: bool


def traceparent(trace_id: str, span_id: str, *, sampled: bool = True) -> str:
    """``00-<32 hex trace id>-<16 hex span id>-01`` (``-00`` if not sampled).

    >>> traceparent("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    """
    value = f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}"
    parse_traceparent(value)
    return value


def parse_traceparent(value: str | bytes) -> TraceParent:
    """Split a ``traceparent``; ``BadHeader`` for anything W3C forbids in version 00.

    Lowercase hex only, exact lengths, ids not all zeros, version 00 with nothing after
    the flags (later versions may append fields; we speak 00 alone).
    """
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    match = _TRACEPARENT.match(value)
    if not match:
        raise BadHeader(f"not a version-00 traceparent: {value[:80]!r}")
    trace_id, parent_id, flags = match.groups()
    if trace_id == "0" * 32 or parent_id == "0" * 16:
        raise BadHeader("traceparent ids must not be all zeros")
    return TraceParent(trace_id, parent_id, bool(int(flags, 16) & 1))


# --- CloudEvents 1.0, Kafka binary mode ------------------------------------------------


class CloudEvent(BaseModel):
    """The CloudEvents context attributes of a record (its data is the record value)."""

    model_config = ConfigDict(frozen=True)

    specversion: str = "1.0"
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    time: datetime | None = None
    datacontenttype: str | None = None


def _rfc3339(time: datetime | str) -> str:
    if isinstance(time, datetime):
        return format_timestamp(time)  # raises ValueError for a naive time: our bug
    if not _RFC3339.match(time):
        raise ValueError(f"ce_time must be an RFC 3339 timestamp with an offset, not {time!r}")
    return time


def cloudevent_headers(
    event_id: str,
    source: str,
    event_type: str,
    time: datetime | str,
    *,
    content_type: str = CONTENT_TYPE,
) -> list[tuple[str, bytes]]:
    """Binary-mode CloudEvents attributes as Kafka headers, ``content-type`` last.

    ``time`` is an aware datetime (formatted as RFC 3339 UTC) or an RFC 3339 string.
    """
    for attribute, value in (("ce_id", event_id), ("ce_source", source), ("ce_type", event_type)):
        if not value:
            raise ValueError(f"{attribute} must not be empty (CloudEvents 1.0 requires it)")
    return [
        (CE_SPECVERSION, b"1.0"),
        (CE_ID, event_id.encode()),
        (CE_SOURCE, source.encode()),
        (CE_TYPE, event_type.encode()),
        (CE_TIME, _rfc3339(time).encode()),
        (CONTENT_TYPE_HEADER, content_type.encode()),
    ]


def read_cloudevent(headers: Headers) -> CloudEvent:
    """The CloudEvents attributes of a record; ``BadHeader`` if it is not a 1.0 event."""
    headers = list(headers)
    version = _text(headers, "ce_specversion")
    if version != "1.0":
        raise BadHeader(f"ce_specversion is {version!r}; only CloudEvents 1.0 is read")
    time = None
    if header_value(headers, "ce_time") is not None:
        raw = _text(headers, "ce_time")
        if not _RFC3339.match(raw):
            raise BadHeader(f"ce_time is not RFC 3339: {raw[:64]!r}")
        try:
            time = datetime.fromisoformat(raw.upper())
        except ValueError:
            raise BadHeader(f"ce_time is not a real instant: {raw[:64]!r}") from None
    content_type = header_value(headers, "content-type")
    fields = {name: _text(headers, f"ce_{name}") for name in ("id", "source", "type")}
    if not all(fields.values()):
        raise BadHeader("ce_id, ce_source and ce_type must not be empty")
    return CloudEvent(
        id=fields["id"],
        source=fields["source"],
        type=fields["type"],
        time=time,
        datacontenttype=None if content_type is None else _text(headers, "content-type"),
    )


def envelope_type(message_type: MessageType) -> str:
    """The CloudEvents type of a sealed record of ``message_type``."""
    return f"{_ENVELOPE_TYPE[0]}{message_type.value}{_ENVELOPE_TYPE[1]}"


def envelope_message_type(headers: Headers) -> str | None:
    """The message type a sealed record declares in its ``ce_type``, read without opening
    it; None if the record is not an envelope."""
    value = header_value(headers, "ce_type")
    text = value.decode(errors="replace") if value else ""
    prefix, suffix = _ENVELOPE_TYPE
    if text == RECEIPTS_TYPE or not (text.startswith(prefix) and text.endswith(suffix)):
        return None
    return text[len(prefix) : -len(suffix)] or None


def envelope_headers(
    header: RoutingHeader, span_id: str, *, sampled: bool = True
) -> tuple[tuple[str, bytes], ...]:
    """The headers of a sealed record (docs/wire-format.md §7); its ``traceparent`` names
    the header's trace and the sender's span ``span_id``."""
    return (
        *cloudevent_headers(
            header.message_id,
            f"/i247/{header.sender}",
            envelope_type(header.message_type),
            header.created_at,
        ),
        (TRACEPARENT, traceparent(header.trace_id, span_id, sampled=sampled).encode()),
    )


def is_receipt_batch(headers: Headers) -> bool:
    """Whether a record declares itself a receipt batch (docs/wire-format.md §10)."""
    return header_value(headers, CE_TYPE) == RECEIPTS_TYPE.encode()


def receipt_batch_headers(
    batch_id: str, hub: str, issued_at: datetime, trace_id: str, span_id: str
) -> tuple[tuple[str, bytes], ...]:
    """The headers of a receipt batch: CloudEvents of its own type, the first receipt's trace."""
    return (
        *cloudevent_headers(
            batch_id,
            f"/i247/{hub}",
            RECEIPTS_TYPE,
            issued_at,
            content_type=RECEIPTS_CONTENT_TYPE,
        ),
        (TRACEPARENT, traceparent(trace_id, span_id).encode()),
        (HUB, hub.encode()),
    )


# --- dead letters --------------------------------------------------------------------


class DeadLetterInfo(BaseModel):
    """Why, where from and by whom a record was dead-lettered."""

    model_config = ConfigDict(frozen=True)

    reason: str
    detail: str
    topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    timestamp_ms: int
    processor: str


def _clip(text: str, limit: int) -> bytes:
    """UTF-8 of ``text``, cut to ``limit`` bytes without splitting a character."""
    return text.encode()[:limit].decode("utf-8", errors="ignore").encode()


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
    """``i247.dlq.*`` headers to append to the refused record, left otherwise untouched.

    ``detail`` is cut to 4 KiB; ``timestamp`` is the refused record's own, in epoch ms.
    """
    values = {
        "reason": reason.encode(),
        "detail": _clip(detail, MAX_DETAIL_BYTES),
        "topic": topic.encode(),
        "partition": str(partition).encode(),
        "offset": str(offset).encode(),
        "timestamp": str(timestamp_ms).encode(),
        "processor": processor.encode(),
    }
    return [(DLQ_PREFIX + name, values[name]) for name in _DLQ_FIELDS]


def read_dead_letter(headers: Headers) -> DeadLetterInfo:
    """The latest dead-letter headers of a record; ``BadHeader`` if absent or malformed."""
    headers = list(headers)
    missing = [n for n in _DLQ_FIELDS if header_value(headers, DLQ_PREFIX + n) is None]
    if missing:
        raise BadHeader(f"not a dead letter: missing {', '.join(DLQ_PREFIX + n for n in missing)}")
    found = {name: _text(headers, DLQ_PREFIX + name) for name in _DLQ_FIELDS}
    numbers = {n: found[n] for n in ("partition", "offset", "timestamp")}
    if not all(_INTEGER.match(v) for v in numbers.values()):
        raise BadHeader(f"dead-letter partition, offset and timestamp must be integers: {numbers}")
    try:
        return DeadLetterInfo(
            reason=found["reason"],
            detail=found["detail"],
            topic=found["topic"],
            partition=int(numbers["partition"]),
            offset=int(numbers["offset"]),
            timestamp_ms=int(numbers["timestamp"]),
            processor=found["processor"],
        )
    except ValidationError as exc:
        raise BadHeader(f"dead-letter position is out of range: {numbers}") from exc


# --- replay marks --------------------------------------------------------------------

_REPLAY_FIELDS = REPLAY_FIELDS


class ReplayMark(BaseModel):
    """Where a replayed record was originally read, and which replay re-published it."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    topic: str = Field(min_length=1)
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    timestamp_ms: int


def replay_headers(mark: ReplayMark) -> list[tuple[str, bytes]]:
    """``i247.replay.*`` headers to append to a re-published record, ``name`` first.

    >>> replay_headers(ReplayMark(name="r1", topic="i247.inbound", partition=0, offset=7,
    ...                           timestamp_ms=1))[0]
    ('i247.replay.name', b'r1')
    """
    values = {
        "name": mark.name,
        "topic": mark.topic,
        "partition": str(mark.partition),
        "offset": str(mark.offset),
        "timestamp": str(mark.timestamp_ms),
    }
    return [(REPLAY_PREFIX + field, values[field].encode()) for field in _REPLAY_FIELDS]


def read_replay_mark(headers: Headers) -> ReplayMark | None:
    """The latest replay mark of a record; None for live traffic, ``BadHeader`` if malformed."""
    headers = list(headers)
    present = [n for n in _REPLAY_FIELDS if header_value(headers, REPLAY_PREFIX + n) is not None]
    if not present:
        return None
    if len(present) != len(_REPLAY_FIELDS):
        missing = sorted(set(_REPLAY_FIELDS) - set(present))
        raise BadHeader(
            f"incomplete replay mark: missing {', '.join(REPLAY_PREFIX + n for n in missing)}"
        )
    found = {name: _text(headers, REPLAY_PREFIX + name) for name in _REPLAY_FIELDS}
    numbers = {n: found[n] for n in ("partition", "offset", "timestamp")}
    if not all(_INTEGER.match(v) for v in numbers.values()):
        raise BadHeader(f"replay partition, offset and timestamp must be integers: {numbers}")
    try:
        return ReplayMark(
            name=found["name"],
            topic=found["topic"],
            partition=int(numbers["partition"]),
            offset=int(numbers["offset"]),
            timestamp_ms=int(numbers["timestamp"]),
        )
    except ValidationError as exc:
        raise BadHeader(f"replay mark is out of range: {found}") from exc
