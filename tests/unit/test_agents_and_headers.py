"""Pure parts of the agents and brokers layers: traffic mix, books, headers, settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.sim.accounting import Accepted, Accounting
from agents.sim.traffic import EXPECTED_REASON, Fault, TrafficMix
from brokers.record_headers import (
    dead_letter_headers,
    envelope_headers,
    envelope_message_type,
    header_value,
    parse_traceparent,
    read_dead_letter,
    traceparent,
)
from brokers.settings import ENV_NAMES, Settings, SettingsError
from schemas.errors import RejectReason
from schemas.header import Language, Precedence
from schemas.registry import default_registry
from tests.unit.factories import make_header


def mix(seed: int, fault_share: float = 0.0) -> TrafficMix:
    registry = default_registry()
    regions: dict[str, list[str]] = {}
    for member in registry.members:
        regions.setdefault(member.region.value, []).append(member.iso3)
    return TrafficMix(
        regions, {m.iso3: m.language for m in registry.members}, seed=seed, fault_share=fault_share
    )


def test_the_same_seed_gives_the_same_traffic() -> None:
    first, second = mix(7), mix(7)
    assert [first.next() for _ in range(200)] == [second.next() for _ in range(200)]


def test_the_mix_is_mostly_routine_with_rare_flash() -> None:
    traffic = mix(11)
    drawn = [traffic.next() for _ in range(5000)]
    routine = sum(1 for p in drawn if p.precedence is Precedence.ROUTINE)
    flash = sum(1 for p in drawn if p.precedence is Precedence.FLASH)
    assert routine > len(drawn) / 2
    assert 0 < flash < len(drawn) / 20
    assert all(p.sender not in p.recipients for p in drawn)


def test_every_fault_has_an_expected_reason_and_appears_at_its_share() -> None:
    assert set(EXPECTED_REASON) == set(Fault)
    traffic = mix(3, fault_share=0.1)
    drawn = [p for p in (traffic.next() for _ in range(5000)) if p.fault]
    assert 350 < len(drawn) < 650
    assert {p.fault for p in drawn} == set(Fault)


def test_lost_is_what_was_accepted_and_never_delivered() -> None:
    books = Accounting()
    books.on_accepted("m1", Accepted("hub:lyon", Precedence.ROUTINE, ("DEU", "ITA")))
    books.on_delivered("m1", "DEU", 12.0)
    assert books.outstanding() == [("m1", "ITA")]
    books.on_delivered("m1", "ITA", 15.0)
    books.on_delivered("m1", "ITA", 15.0)
    summary = books.summary()
    assert summary["lost"]["total"] == 0
    assert summary["duplicates_suppressed"]["total"] == 1
    assert summary["delivered"]["by_hub"] == {"hub:lyon": {"ROUTINE": 2}}


def test_a_message_sent_and_never_accepted_nor_refused_is_undecided() -> None:
    books = Accounting()
    books.on_sent("m1", "message", None)
    books.on_sent("m2", "message", None)
    books.on_sent("m3", "malformed", RejectReason.MALFORMED.value)  # refused without its id
    books.on_sent("m4", "message", None)
    books.on_accepted("m1", Accepted("hub:lyon", Precedence.ROUTINE, ("DEU",)))
    books.on_refused("m4", RejectReason.BAD_SIGNATURE.value)
    assert books.undecided() == ["m2"]
    assert books.summary()["undecided"] == {"total": 1, "ids": ["m2"]}
    books.on_accepted("m2", Accepted("hub:lyon", Precedence.ROUTINE, ("DEU",)))
    assert books.undecided() == []


def test_the_books_keep_up_whatever_order_the_observations_come_in() -> None:
    """A recipient can open a message before the Observer reads its lane, and a replay
    reuses a message id: outstanding and undecided must come out as the full scan did."""
    books = Accounting()
    books.on_sent("m1", "message", None)
    books.on_delivered("m1", "DEU", None)  # opened before the lane was read
    books.on_accepted("m1", Accepted("hub:lyon", Precedence.ROUTINE, ("DEU", "ITA", "ESP")))
    books.on_accepted("m1", Accepted("hub:lima", Precedence.FLASH, ("FRA",)))  # seen twice
    assert books.outstanding() == [("m1", "ITA"), ("m1", "ESP")]
    books.on_delivered("m1", "ESP", 20.0, reader_lag_ms=4.0, simulator_lag_ms=1.0)
    assert books.outstanding() == [("m1", "ITA")]
    books.on_sent("m1", "replayed", RejectReason.REPLAYED.value)
    books.on_sent("m1", "message", None)  # an id with an expected refusal is decided
    books.on_refused("m5", RejectReason.MALFORMED.value)
    books.on_sent("m5", "message", None)  # refused before its sending was booked
    assert books.undecided() == []
    delivered = books.summary()["delivered"]
    assert delivered["reader_lag"]["p50_ms"] == 4.0
    assert delivered["simulator_lag"]["p99_ms"] == 1.0
    assert delivered["latency"]["ROUTINE"]["count"] == 1


def test_a_spoiled_record_refused_for_another_reason_is_misjudged() -> None:
    books = Accounting()
    books.on_sent("m1", "tampered-body", RejectReason.TAMPERED.value)
    books.on_sent("m2", "stale", RejectReason.STALE.value)
    books.on_refused("m1", RejectReason.TAMPERED.value)
    books.on_refused("m2", RejectReason.MALFORMED.value)
    assert books.misjudged() == {"m2": {"expected": "stale", "actual": "malformed"}}


def test_summary_has_the_documented_keys() -> None:
    keys = set(Accounting().summary())
    assert {"sent", "accepted", "rejected", "delivered", "duplicates_suppressed", "lost"} <= keys


def test_envelope_headers_are_cloudevents_and_trace_context() -> None:
    header = make_header(language=Language.FR)
    headers = envelope_headers(header, "00f067aa0ba902b7")
    assert header_value(headers, "ce_specversion") == b"1.0"
    assert header_value(headers, "ce_id") == header.message_id.encode()
    assert header_value(headers, "ce_source") == b"/i247/FRA"
    assert header_value(headers, "ce_type") == b"int.interpol.i247.message.v1"
    assert envelope_message_type(headers) == "message"
    assert envelope_message_type([("ce_type", b"com.example.other")]) is None
    assert envelope_message_type([]) is None
    assert header_value(headers, "ce_time") == b"2026-11-23T12:00:00.000000Z"
    assert (
        header_value(headers, "traceparent") == f"00-{header.trace_id}-00f067aa0ba902b7-01".encode()
    )


@given(trace=st.binary(min_size=16, max_size=16), span=st.binary(min_size=8, max_size=8))
def test_traceparent_round_trips(trace: bytes, span: bytes) -> None:
    if not any(trace) or not any(span):
        with pytest.raises(ValueError, match="zeros"):
            traceparent(trace.hex(), span.hex())
        return
    assert parse_traceparent(traceparent(trace.hex(), span.hex())) == (
        trace.hex(),
        span.hex(),
        True,
    )


@pytest.mark.parametrize(
    "bad",
    [
        "01-" + "a" * 32 + "-" + "b" * 16 + "-01",
        "00-" + "A" * 32 + "-" + "b" * 16 + "-01",
        "00-abc-def-01",
    ],
)
def test_malformed_traceparents_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="traceparent"):
        parse_traceparent(bad)


def test_dead_letter_headers_round_trip() -> None:
    headers = dead_letter_headers(
        reason="stale",
        detail="too old",
        topic="i247.inbound",
        partition=2,
        offset=41,
        timestamp_ms=1700,
        processor="hub:lyon/intake",
    )
    info = read_dead_letter(headers)
    assert (info.reason, info.topic, info.partition, info.offset) == (
        "stale",
        "i247.inbound",
        2,
        41,
    )


def test_settings_defaults_and_environment() -> None:
    settings = Settings.from_env({"I247_TOPIC_PREFIX": "x", "I247_DATA_DIR": "/d"})
    assert settings.bootstrap is None
    assert settings.topics.inbound == "x.inbound"
    assert settings.keys_dir == Path("/d/keys")
    assert set(ENV_NAMES.values()) >= {
        "I247_BOOTSTRAP",
        "I247_FETCH_MAX_WAIT_MS",
        "I247_CLOCK_SCALE",
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("I247_FETCH_MAX_WAIT_MS", "0"),
        ("I247_SESSION_TIMEOUT_MS", "soon"),
        ("I247_TOPIC_PREFIX", "a b"),
        ("I247_LOG_LEVEL", "loud"),
    ],
)
def test_bad_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})
