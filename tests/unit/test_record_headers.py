"""Record headers: CloudEvents binary mode, W3C traceparent, dead-letter reasons."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brokers.record_headers import (
    CONTENT_TYPE,
    BadHeader,
    CloudEvent,
    DeadLetterInfo,
    cloudevent_headers,
    dead_letter_headers,
    envelope_headers,
    header_value,
    parse_traceparent,
    read_cloudevent,
    read_dead_letter,
    traceparent,
)
from tests.unit.factories import T0, make_header

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"  # the W3C specification's example
SPAN = "00f067aa0ba902b7"


class TestHeaderValue:
    @pytest.mark.parametrize(
        ("headers", "name", "expected"),
        [
            ([], "a", None),
            ([("a", b"1")], "b", None),
            ([("a", b"1")], "a", b"1"),
            ([("a", b"")], "a", b""),
            ([("a", b"1"), ("b", b"2"), ("a", b"3")], "a", b"3"),
            ([("A", b"1")], "a", None),
        ],
    )
    def test_it_is_the_last_value_of_that_exact_name(
        self, headers: list[tuple[str, bytes]], name: str, expected: bytes | None
    ) -> None:
        assert header_value(headers, name) == expected


class TestCloudEvents:
    def test_the_binary_mode_headers_in_order_with_content_type_last(self) -> None:
        assert cloudevent_headers("m-1", "/i247/FRA", "int.interpol.i247.message.v1", T0) == [
            ("ce_specversion", b"1.0"),
            ("ce_id", b"m-1"),
            ("ce_source", b"/i247/FRA"),
            ("ce_type", b"int.interpol.i247.message.v1"),
            ("ce_time", b"2026-11-23T12:00:00.000000Z"),
            ("content-type", CONTENT_TYPE.encode()),
        ]

    @pytest.mark.parametrize(
        ("time", "written"),
        [
            (T0, "2026-11-23T12:00:00.000000Z"),
            (T0.astimezone(timezone(timedelta(hours=8))), "2026-11-23T12:00:00.000000Z"),
            ("2026-11-23T12:00:00Z", "2026-11-23T12:00:00Z"),
            ("2026-11-23T13:00:00.5+01:00", "2026-11-23T13:00:00.5+01:00"),
        ],
    )
    def test_time_is_written_as_rfc_3339(self, time: datetime | str, written: str) -> None:
        headers = cloudevent_headers("m", "/s", "t", time)
        assert header_value(headers, "ce_time") == written.encode()

    @pytest.mark.parametrize(
        ("arguments", "message"),
        [
            (("", "/s", "t", T0), "ce_id"),
            (("m", "", "t", T0), "ce_source"),
            (("m", "/s", "", T0), "ce_type"),
            (("m", "/s", "t", datetime(2026, 11, 23, 12)), "timezone"),  # naive
            (("m", "/s", "t", "2026-11-23"), "RFC 3339"),
            (("m", "/s", "t", "2026-11-23T12:00:00"), "RFC 3339"),
        ],
    )
    def test_our_own_bad_attributes_are_refused(
        self, arguments: tuple[str, str, str, datetime | str], message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            cloudevent_headers(*arguments)

    def test_the_content_type_can_be_another(self) -> None:
        headers = cloudevent_headers("m", "/s", "t", T0, content_type="application/json")
        assert headers[-1] == ("content-type", b"application/json")

    def test_they_read_back_as_the_event_written(self) -> None:
        headers = cloudevent_headers("m-1", "/i247/FRA", "int.interpol.i247.message.v1", T0)
        assert read_cloudevent(headers) == CloudEvent(
            id="m-1",
            source="/i247/FRA",
            type="int.interpol.i247.message.v1",
            time=T0,
            datacontenttype=CONTENT_TYPE,
        )

    def test_time_and_content_type_are_optional_on_read(self) -> None:
        headers = [("ce_specversion", b"1.0"), ("ce_id", b"m"), ("ce_source", b"/s")]
        event = read_cloudevent([*headers, ("ce_type", b"t")])
        assert (event.time, event.datacontenttype) == (None, None)

    @pytest.mark.parametrize(
        ("replace", "message"),
        [
            (("ce_specversion", None), "ce_specversion"),
            (("ce_specversion", b"0.3"), "only CloudEvents 1.0"),
            (("ce_id", None), "ce_id"),
            (("ce_id", b""), "must not be empty"),
            (("ce_source", b"\xff"), "not UTF-8"),
            (("ce_time", b"yesterday"), "RFC 3339"),
            (("ce_time", b"2026-13-45T99:00:00Z"), "real instant"),
        ],
    )
    def test_malformed_events_from_the_wire_are_bad_headers(
        self, replace: tuple[str, bytes | None], message: str
    ) -> None:
        name, value = replace
        headers = [(k, v) for k, v in cloudevent_headers("m", "/s", "t", T0) if k != name]
        if value is not None:
            headers.append((name, value))
        with pytest.raises(BadHeader, match=message):
            read_cloudevent(headers)

    def test_a_sealed_record_carries_an_event_and_a_trace(self) -> None:
        header = make_header()
        headers = envelope_headers(header, SPAN)
        event = read_cloudevent(headers)
        assert (event.id, event.source, event.time) == (header.message_id, "/i247/FRA", T0)
        assert parse_traceparent(header_value(headers, "traceparent") or b"") == (
            header.trace_id,
            SPAN,
            True,
        )


class TestTraceparent:
    def test_the_specification_example(self) -> None:
        assert traceparent(TRACE, SPAN) == f"00-{TRACE}-{SPAN}-01"
        assert parse_traceparent(f"00-{TRACE}-{SPAN}-01") == (TRACE, SPAN, True)

    def test_unsampled_traces_carry_flags_00(self) -> None:
        assert traceparent(TRACE, SPAN, sampled=False).endswith("-00")
        assert parse_traceparent(f"00-{TRACE}-{SPAN}-00").sampled is False

    def test_only_the_sampled_bit_of_the_flags_counts(self) -> None:
        assert parse_traceparent(f"00-{TRACE}-{SPAN}-03").sampled is True
        assert parse_traceparent(f"00-{TRACE}-{SPAN}-02").sampled is False

    def test_bytes_from_a_header_are_read_too(self) -> None:
        assert parse_traceparent(f"00-{TRACE}-{SPAN}-01".encode()).trace_id == TRACE

    @pytest.mark.parametrize(
        ("value", "why"),
        [
            (f"01-{TRACE}-{SPAN}-01", "version-00"),
            (f"ff-{TRACE}-{SPAN}-01", "version-00"),
            (f"00-{TRACE.upper()}-{SPAN}-01", "version-00"),
            (f"00-{TRACE}-{SPAN.upper()}-01", "version-00"),
            (f"00-{TRACE}-{SPAN}-0A", "version-00"),
            (f"00-{TRACE[:-1]}-{SPAN}-01", "version-00"),
            (f"00-{TRACE}0-{SPAN}-01", "version-00"),
            (f"00-{TRACE}-{SPAN[:-1]}-01", "version-00"),
            (f"00-{TRACE}-{SPAN}-1", "version-00"),
            (f"00-{TRACE}-{SPAN}-01-extra", "version-00"),
            (f" 00-{TRACE}-{SPAN}-01", "version-00"),
            (f"00_{TRACE}_{SPAN}_01", "version-00"),
            (f"00-{'0' * 32}-{SPAN}-01", "all zeros"),
            (f"00-{TRACE}-{'0' * 16}-01", "all zeros"),
            ("", "version-00"),
        ],
    )
    def test_what_w3c_forbids_is_refused(self, value: str, why: str) -> None:
        with pytest.raises(BadHeader, match=why):
            parse_traceparent(value)

    @pytest.mark.parametrize(
        ("trace_id", "span_id"),
        [("0" * 32, SPAN), (TRACE, "0" * 16), (TRACE.upper(), SPAN), (TRACE, SPAN[:8])],
    )
    def test_building_from_bad_ids_is_refused(self, trace_id: str, span_id: str) -> None:
        with pytest.raises(ValueError, match="traceparent"):
            traceparent(trace_id, span_id)

    @given(
        trace=st.binary(min_size=16, max_size=16).filter(any),
        span=st.binary(min_size=8, max_size=8).filter(any),
        sampled=st.booleans(),
    )
    def test_any_valid_ids_round_trip(self, trace: bytes, span: bytes, sampled: bool) -> None:
        value = traceparent(trace.hex(), span.hex(), sampled=sampled)
        assert len(value) == 55
        assert parse_traceparent(value) == (trace.hex(), span.hex(), sampled)

    @given(st.text(max_size=80))
    def test_any_text_parses_or_is_a_bad_header(self, text: str) -> None:
        try:
            parsed = parse_traceparent(text)
        except BadHeader:
            return
        assert traceparent(*parsed[:2], sampled=parsed.sampled)[:-2] == text[:-2]


def dead_letter(**overrides: object) -> list[tuple[str, bytes]]:
    values: dict[str, object] = {
        "reason": "stale",
        "detail": "created 2026-11-23T11:50:00Z, 600 s before intake",
        "topic": "i247.inbound",
        "partition": 2,
        "offset": 41,
        "timestamp_ms": 1_795_000_000_000,
        "processor": "hub:lyon/intake",
    }
    values.update(overrides)
    return dead_letter_headers(**values)  # type: ignore[arg-type]


class TestDeadLetters:
    def test_the_headers_are_named_under_i247_dlq(self) -> None:
        assert [name for name, _ in dead_letter()] == [
            "i247.dlq.reason",
            "i247.dlq.detail",
            "i247.dlq.topic",
            "i247.dlq.partition",
            "i247.dlq.offset",
            "i247.dlq.timestamp",
            "i247.dlq.processor",
        ]

    def test_they_read_back_as_written(self) -> None:
        assert read_dead_letter(dead_letter()) == DeadLetterInfo(
            reason="stale",
            detail="created 2026-11-23T11:50:00Z, 600 s before intake",
            topic="i247.inbound",
            partition=2,
            offset=41,
            timestamp_ms=1_795_000_000_000,
            processor="hub:lyon/intake",
        )

    def test_the_record_s_own_headers_are_left_alone(self) -> None:
        original = [("ce_id", b"m-1"), ("traceparent", f"00-{TRACE}-{SPAN}-01".encode())]
        info = read_dead_letter([*original, *dead_letter()])
        assert info.reason == "stale"

    def test_a_record_refused_again_reports_its_latest_refusal(self) -> None:
        again = dead_letter(reason="replayed", processor="hub:singapore/intake")
        info = read_dead_letter([*dead_letter(), *again])
        assert (info.reason, info.processor) == ("replayed", "hub:singapore/intake")

    @pytest.mark.parametrize("detail", ["x" * 5000, "é" * 3000, "😀" * 1500])
    def test_a_long_detail_is_cut_to_4_kib_on_a_character_boundary(self, detail: str) -> None:
        written = header_value(dead_letter(detail=detail), "i247.dlq.detail") or b""
        assert 4093 <= len(written) <= 4096
        assert detail.startswith(written.decode("utf-8"))

    @pytest.mark.parametrize(
        ("name", "value", "message"),
        [
            ("i247.dlq.reason", None, "missing i247.dlq.reason"),
            ("i247.dlq.offset", None, "missing i247.dlq.offset"),
            ("i247.dlq.offset", b"forty-one", "integers"),
            ("i247.dlq.partition", b" 2", "integers"),
            ("i247.dlq.partition", b"-1", "out of range"),
            ("i247.dlq.topic", b"\xc3", "not UTF-8"),
        ],
    )
    def test_malformed_dead_letter_headers_are_bad_headers(
        self, name: str, value: bytes | None, message: str
    ) -> None:
        headers = [(k, v) for k, v in dead_letter() if k != name]
        if value is not None:
            headers.append((name, value))
        with pytest.raises(BadHeader, match=message):
            read_dead_letter(headers)

    def test_a_record_without_them_is_not_a_dead_letter(self) -> None:
        with pytest.raises(BadHeader, match="not a dead letter"):
            read_dead_letter([("ce_id", b"m-1")])

    def test_the_info_is_frozen(self) -> None:
        info = read_dead_letter(dead_letter())
        with pytest.raises(ValueError, match="frozen"):
            info.reason = "other"  # type: ignore[misc]


def test_a_bad_header_is_a_value_error() -> None:
    assert issubclass(BadHeader, ValueError)
