"""The record headers of the published contract, as JSON Schema, one entry per header.

Names come from ``schemas.header_names`` (the one place they are spelled), value rules
from ``brokers.record_headers`` and ``schemas.leases``; ``brokers.contract`` puts them on
the AsyncAPI messages. Kafka header values are bytes: every value here is UTF-8 text.
"""

from __future__ import annotations

from typing import Any

from brokers.record_headers import CONTENT_TYPE, RECEIPTS_CONTENT_TYPE, RECEIPTS_TYPE
from schemas import header_names as h
from schemas.errors import RejectReason
from schemas.header import Precedence

__all__ = [
    "CONTROL_HEADERS",
    "DEAD_LETTER_HEADERS",
    "ENVELOPE_HEADERS",
    "FENCE",
    "FORWARDING",
    "NOTICE_HEADERS",
    "RECEIPT_HEADERS",
    "REPLAY_HEADERS",
    "HeaderSpec",
    "headers_schema",
]

HeaderSpec = tuple[str, dict[str, Any]]
_DECIMAL = r"^[0-9]+$"
_SIGNED = r"^-?[0-9]+$"
_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$"
_HUB = r"^hub:(lyon|buenos-aires|singapore)$"


def _s(description: str, **rules: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **rules}


_CLOUDEVENT: tuple[HeaderSpec, ...] = (
    (h.CE_SPECVERSION, _s("CloudEvents version", const="1.0")),
    (h.CE_ID, _s("the message id (the event id on the control topic)", pattern=_UUID)),
    (h.CE_SOURCE, _s("/i247/ then the sender's participant id", pattern=r"^/i247/.+$")),
    (h.CE_TIME, _s("the routing header's created_at (the event time)", pattern=_TIME)),
)
ENVELOPE_HEADERS: tuple[HeaderSpec, ...] = (
    *_CLOUDEVENT,
    (
        h.CE_TYPE,
        _s("int.interpol.i247.<message_type>.v1", pattern=r"^int\.interpol\.i247\.[a-z-]+\.v1$"),
    ),
    (h.CONTENT_TYPE, _s("the envelope's media type", const=CONTENT_TYPE)),
    (
        h.TRACEPARENT,
        _s(
            "W3C Trace Context 00-<trace_id>-<span id>-<flags>",
            pattern=r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
        ),
    ),
)
CONTROL_HEADERS: tuple[HeaderSpec, ...] = (
    *_CLOUDEVENT,
    (
        h.CE_TYPE,
        _s(
            "int.interpol.i247.control.<event>.v1",
            pattern=r"^int\.interpol\.i247\.control\..+\.v1$",
        ),
    ),
    (h.CONTENT_TYPE, _s("JSON", const="application/json")),
)
RECEIPT_HEADERS: tuple[HeaderSpec, ...] = (
    (h.CE_SPECVERSION, _s("CloudEvents version", const="1.0")),
    (h.CE_ID, _s("the batch id (the record key)", pattern=_UUID)),
    (h.CE_SOURCE, _s("/i247/ then the signing hub's id", pattern=r"^/i247/hub:.+$")),
    (h.CE_TIME, _s("the batch's issued_at", pattern=_TIME)),
    (h.CE_TYPE, _s("a receipt batch, not an envelope", const=RECEIPTS_TYPE)),
    (h.CONTENT_TYPE, _s("the receipt batch's media type", const=RECEIPTS_CONTENT_TYPE)),
    (
        h.TRACEPARENT,
        _s(
            "W3C Trace Context, the first receipt's trace_id",
            pattern=r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
        ),
    ),
    (h.HUB, _s("the hub that delivered and signs", pattern=_HUB)),
)
FORWARDING: tuple[HeaderSpec, ...] = (
    (h.SEALED_TOPIC, _s("the topic the envelope was sealed for (§4.1)")),
    (h.SEALED_KEY, _s("the record key it was sealed for (the sender id)")),
    (h.PRECEDENCE, _s("the precedence the CCC assessed", enum=[p.value for p in Precedence])),
    (h.HUB, _s("the hub that routed or delivered it", pattern=_HUB)),
    (h.ORIGIN, _s("<topic>/<partition>/<offset> where the CCC first read it")),
)
FENCE: tuple[HeaderSpec, ...] = (
    (h.LEASE_UNIT, _s("the unit whose term wrote the record: intake, or a lane topic")),
    (h.LEASE_EPOCH, _s("the term's epoch, decimal", pattern=_DECIMAL)),
    (h.LEASE_PARTITION, _s("the input record's partition, decimal", pattern=_DECIMAL)),
    (h.LEASE_OFFSET, _s("the input record's offset, decimal", pattern=_DECIMAL)),
)
NOTICE_HEADERS: tuple[HeaderSpec, ...] = (
    (h.SEALED_TOPIC, _s("the notices topic")),
    (h.SEALED_KEY, _s("the notice id")),
    (h.NOTICE_VERSION, _s("the notice's version, decimal", pattern=_DECIMAL)),
    (h.HUB, _s("the hub that wrote it", pattern=_HUB)),
)
_POSITION = {
    "partition": _s("partition where it was read, decimal", pattern=_DECIMAL),
    "offset": _s("offset where it was read, decimal", pattern=_DECIMAL),
    "timestamp": _s("the record's own timestamp, epoch ms, decimal", pattern=_SIGNED),
    "topic": _s("topic where it was read"),
}
DEAD_LETTER_HEADERS: tuple[HeaderSpec, ...] = tuple(
    (h.DLQ_PREFIX + field, spec)
    for field, spec in (
        ("reason", _s("reason code", enum=[r.value for r in RejectReason])),
        ("detail", _s("what was wrong, in words; at most 4096 bytes")),
        *((f, _POSITION[f]) for f in ("topic", "partition", "offset", "timestamp")),
        ("processor", _s("<hub id>/<step> that refused it, e.g. hub:lyon/intake")),
    )
)
REPLAY_HEADERS: tuple[HeaderSpec, ...] = tuple(
    (h.REPLAY_PREFIX + field, spec)
    for field, spec in (
        ("name", _s("the replay's name")),
        *((f, _POSITION[f]) for f in ("topic", "partition", "offset", "timestamp")),
    )
)
if tuple(f.removeprefix(h.DLQ_PREFIX) for f, _ in DEAD_LETTER_HEADERS) != h.DLQ_FIELDS:
    raise AssertionError("DEAD_LETTER_HEADERS must list schemas.header_names.DLQ_FIELDS")
if tuple(f.removeprefix(h.REPLAY_PREFIX) for f, _ in REPLAY_HEADERS) != h.REPLAY_FIELDS:
    raise AssertionError("REPLAY_HEADERS must list schemas.header_names.REPLAY_FIELDS")


def headers_schema(
    specs: tuple[HeaderSpec, ...],
    *,
    optional: tuple[HeaderSpec, ...] = (),
    open_ended: bool = False,
) -> dict[str, Any]:
    """An object schema of the headers ``specs``, all required except ``optional``;
    ``open_ended`` when the record keeps other headers (dead letters, replays)."""
    skip = {name for name, _ in optional}
    return {
        "type": "object",
        "properties": dict(specs),
        "required": [name for name, _ in specs if name not in skip],
        "additionalProperties": True if open_ended else {"type": "string"},
    }
