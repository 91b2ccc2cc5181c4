"""Dead letters for an operator: rows, preview, and the redriven record and its journal event."""

from __future__ import annotations

import json

import pytest

from agents.ops.dlq import (
    DLQ_REDRIVEN,
    NotRedrivable,
    original_headers,
    preview,
    redriven_event,
    redriven_record,
    rows,
)
from brokers.record_headers import dead_letter_headers, read_cloudevent
from brokers.records import ReceivedRecord
from schemas.control_events import COMMON_FIELDS, CONTROL_EVENTS
from schemas.header_names import REDRIVEN_FROM
from schemas.leases import FenceTag, fence_headers
from tests.unit.factories import T0

INBOUND = "i247.inbound"
OWN = (("ce_id", b"0b1c4f8e-5d2a-4c3b-9e7f-1a2b3c4d5e6f"), ("traceparent", b"00-ab-cd-01"))


def dead_letter(
    offset: int,
    reason: str = "stale",
    *,
    own: tuple[tuple[str, bytes], ...] = OWN,
    topic: str = INBOUND,
) -> ReceivedRecord:
    refused = dead_letter_headers(
        reason=reason,
        detail=f"{reason}: details",
        topic=topic,
        partition=2,
        offset=40 + offset,
        timestamp_ms=1_700_000_000_000,
        processor="hub:lyon/intake",
    )
    headers = fence_headers((*own, *refused), FenceTag("intake", 3, 2, 40 + offset))
    return ReceivedRecord(
        "i247.deadletter", 0, offset, 1_700_000_001_000, b"FRA", b"\x00sealed\xff", headers
    )


def test_a_row_carries_the_latest_refusal_and_the_message_id() -> None:
    (row,) = rows([dead_letter(7, "tampered")])
    assert (row.offset, row.reason, row.detail) == (7, "tampered", "tampered: details")
    assert (row.topic, row.partition, row.original_offset) == (INBOUND, 2, 47)
    assert row.message_id == "0b1c4f8e-5d2a-4c3b-9e7f-1a2b3c4d5e6f"
    assert row.time == "2023-11-14T22:13:21.000+00:00"
    assert row.redriven_from is None
    assert json.loads(json.dumps(row.as_json()))["reason"] == "tampered"


def test_rows_filter_by_reason_and_keep_the_newest_within_the_limit() -> None:
    records = [dead_letter(i, "stale" if i % 2 else "malformed") for i in range(6)]
    assert [r.offset for r in rows(records, reason="stale")] == [1, 3, 5]
    assert [r.offset for r in rows(records, reason="stale", limit=2)] == [3, 5]
    assert [r.offset for r in rows(records, limit=0)] == list(range(6))


def test_a_record_without_dead_letter_headers_still_lists() -> None:
    (row,) = rows([ReceivedRecord("i247.deadletter", 0, 3, 0, None, b"", ())])
    assert (row.reason, row.topic, row.message_id) == ("(no reason header)", None, None)


def test_the_preview_shows_hex_and_printable_bytes() -> None:
    lines = preview(b"AB\x00\xff" + b"x" * 30, width=16, limit=20)
    assert lines[0].startswith("00000000  41 42 00 ff 78")
    assert lines[0].endswith("|AB..xxxxxxxxxxxx|")
    assert lines[-1] == "... 14 more bytes"


def test_the_redriven_record_is_the_original_marked_with_its_dead_letter_offset() -> None:
    letter = dead_letter(9)
    out = redriven_record(letter, INBOUND)
    assert (out.topic, out.key, out.value) == (INBOUND, b"FRA", b"\x00sealed\xff")
    assert out.headers == (*OWN, (REDRIVEN_FROM, b"9"))
    assert not any(name.startswith(("i247.dlq.", "i247-lease-")) for name, _ in out.headers)


def test_a_second_redrive_carries_only_the_latest_mark() -> None:
    first = redriven_record(dead_letter(9), INBOUND)
    again = dead_letter(12, own=first.headers)
    assert original_headers(again) == OWN
    assert rows([again])[0].redriven_from == 9
    assert redriven_record(again, INBOUND).headers == (*OWN, (REDRIVEN_FROM, b"12"))


def test_only_intakes_refusals_can_be_redriven() -> None:
    with pytest.raises(NotRedrivable, match="only intake's refusals"):
        redriven_record(dead_letter(1, topic="i247.lane.lyon.flash"), INBOUND)
    with pytest.raises(NotRedrivable, match="i247 dlq show"):
        redriven_record(ReceivedRecord("i247.deadletter", 0, 3, 0, None, b"", ()), INBOUND)


def test_the_journal_event_follows_the_catalog() -> None:
    event = redriven_event(
        dead_letter(9),
        (1, 500),
        control="i247.control",
        by="alice",
        now=T0,
        event_id="7d4e1c2b-3a4f-4e5d-8c6b-9a0b1c2d3e4f",
    )
    body = json.loads(event.value)
    spec = CONTROL_EVENTS[DLQ_REDRIVEN]
    assert set(body) == set(COMMON_FIELDS) | set(spec.fields)
    assert body["hub"] == "operator"
    assert (body["deadletter_offset"], body["partition"], body["offset"]) == (9, 1, 500)
    assert body["original"] == f"{INBOUND}/2/49"
    assert event.key == b"0b1c4f8e-5d2a-4c3b-9e7f-1a2b3c4d5e6f"
    cloud = read_cloudevent(event.headers)
    assert cloud.type == "int.interpol.i247.control.dlq-redriven.v1"


def test_a_refused_redrive_and_a_missing_offset_are_usage_errors() -> None:
    from agents.cli_errors import USAGE, explain
    from agents.ops.dlq_commands import DeadLetterNotFound

    refused = explain(NotRedrivable("dead letter 3 came from x: only intake's refusals"))
    assert (refused.code, refused.line) == (
        USAGE,
        "dead letter 3 came from x: only intake's refusals",
    )
    assert explain(DeadLetterNotFound("no dead letter at offset 9")).code == USAGE
