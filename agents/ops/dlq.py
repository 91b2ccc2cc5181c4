"""Dead letters as an operator sees them: rows to list, a preview, and a redrive (pure).

``i247 dlq`` (``agents.ops.dlq_commands``) reads the dead-letter topic and hands the records
here. A dead letter is the refused record byte for byte, then the ``i247.dlq.*`` headers
and the fence tag (docs/wire-format.md §14); a redrive re-sends the original bytes, key
and headers to the inbound topic with ``i247.redriven-from`` set to the dead letter's
offset, so a second refusal can be traced back to the first.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from brokers.journal_records import journal_record_of
from brokers.records import OutboundRecord, ReceivedRecord
from schemas.header_names import CE_ID, DLQ_PREFIX, REDRIVEN_FROM
from schemas.journal import DeadLetterRedriven

__all__ = [
    "DLQ_REDRIVEN",
    "OPERATOR",
    "DeadLetterRow",
    "NotRedrivable",
    "original_headers",
    "preview",
    "redriven_event",
    "redriven_record",
    "rows",
]

DLQ_REDRIVEN = "dlq-redriven"  # the journal event a redrive writes (DeadLetterRedriven)
OPERATOR = "operator"  # the ``hub`` of events the command line journals
_PRINTABLE = frozenset(string.printable.encode()) - frozenset(b"\t\n\r\x0b\x0c")


class NotRedrivable(ValueError):
    """A dead letter that cannot be sent back to intake; the message says why."""


def _text(record: ReceivedRecord, name: str) -> str | None:
    value = record.header(name)
    return value.decode("utf-8", "replace") if value is not None else None


def _number(record: ReceivedRecord, name: str) -> int | None:
    text = _text(record, DLQ_PREFIX + name)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    """One dead letter as ``dlq list`` prints it (the latest refusal's headers)."""

    offset: int
    time: str
    reason: str
    detail: str
    topic: str | None
    partition: int | None
    original_offset: int | None
    message_id: str | None
    redriven_from: int | None

    @classmethod
    def of(cls, record: ReceivedRecord) -> DeadLetterRow:
        redriven = _text(record, REDRIVEN_FROM)
        return cls(
            offset=record.offset,
            time=datetime.fromtimestamp(record.timestamp_ms / 1000, UTC).isoformat(
                timespec="milliseconds"
            ),
            reason=_text(record, DLQ_PREFIX + "reason") or "(no reason header)",
            detail=_text(record, DLQ_PREFIX + "detail") or "",
            topic=_text(record, DLQ_PREFIX + "topic"),
            partition=_number(record, "partition"),
            original_offset=_number(record, "offset"),
            message_id=_text(record, CE_ID),
            redriven_from=int(redriven) if redriven and redriven.isdigit() else None,
        )

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def rows(
    records: Iterable[ReceivedRecord], *, reason: str | None = None, limit: int = 0
) -> list[DeadLetterRow]:
    """The rows of ``records`` in log order, of one ``reason`` if given; the last ``limit``
    of them when ``limit`` is positive (the newest are the ones an operator looks for)."""
    found = [DeadLetterRow.of(r) for r in records]
    if reason is not None:
        found = [row for row in found if row.reason == reason]
    return found[-limit:] if limit > 0 else found


def preview(value: bytes, width: int = 16, limit: int = 512) -> list[str]:
    """``hexdump -C``-like lines of the first ``limit`` bytes of ``value``."""
    lines = []
    for start in range(0, min(len(value), limit), width):
        chunk = value[start : start + width]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        shown = "".join(chr(b) if b in _PRINTABLE else "." for b in chunk)
        lines.append(f"{start:08x}  {hexes:<{width * 3 - 1}}  |{shown}|")
    if len(value) > limit:
        lines.append(f"... {len(value) - limit} more bytes")
    return lines


def original_headers(record: ReceivedRecord) -> tuple[tuple[str, bytes], ...]:
    """The refused record's own headers: those before the first ``i247.dlq.*`` one, less
    an earlier ``i247.redriven-from`` mark (the fence tag comes after the dead-letter set)."""
    kept: list[tuple[str, bytes]] = []
    for name, value in record.headers:
        if name.startswith(DLQ_PREFIX):
            break
        if name != REDRIVEN_FROM:
            kept.append((name, value))
    return tuple(kept)


def redriven_record(record: ReceivedRecord, inbound: str) -> OutboundRecord:
    """The record to send back to ``inbound`` for the dead letter ``record``.

    Raises ``NotRedrivable`` when the dead letter was not refused on ``inbound`` (only
    intake's refusals can go back to intake) or carries no dead-letter headers.
    """
    topic = _text(record, DLQ_PREFIX + "topic")
    if topic is None:
        raise NotRedrivable(
            f"dead letter {record.offset} has no {DLQ_PREFIX}topic header: it was not "
            "written by intake; inspect it with `i247 dlq show`"
        )
    if topic != inbound:
        raise NotRedrivable(
            f"dead letter {record.offset} came from {topic}, not the inbound topic {inbound}: "
            "only intake's refusals can be re-driven"
        )
    headers = original_headers(record)
    return OutboundRecord(
        inbound, record.key, record.value, (*headers, (REDRIVEN_FROM, str(record.offset).encode()))
    )


def redriven_event(
    record: ReceivedRecord,
    landed: tuple[int, int],
    *,
    control: str,
    by: str,
    now: datetime,
    event_id: str,
) -> OutboundRecord:
    """The ``dlq-redriven`` journal record (docs/wire-format.md §13) for a redrive of the
    dead letter ``record`` that landed at ``landed`` (partition, offset) of the inbound
    topic; written by the command line, so its ``hub`` is ``operator``."""
    row = DeadLetterRow.of(record)
    event = DeadLetterRedriven(
        hub=OPERATOR,
        time=now,
        deadletter_offset=record.offset,
        reason=row.reason,
        message_id=row.message_id,
        original=f"{row.topic}/{row.partition}/{row.original_offset}",
        partition=landed[0],
        offset=landed[1],
        by=by,
    )
    key = row.message_id or f"deadletter-{record.offset}"
    return journal_record_of(event, topic=control, key=key, event_id=event_id)
