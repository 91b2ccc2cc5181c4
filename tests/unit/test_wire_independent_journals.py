"""A second client of docs/wire-format.md §7 and §11-§15, written from the document alone:
fence tags, the lease journal and its fold and judgement, the control journal (its
events table is read from the document itself), dead-letter headers, acknowledgements and
the freshness window.

The first half never imports the project. The second half builds records with the
project's own functions and checks that the two agree, in both directions where the
document lets a client write. Where the document leaves a choice open, the reading
taken is marked READING.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

# ======================= the independent client (docs/wire-format.md) ==================

Json = dict[str, Any]
Headers = list[tuple[str, bytes]]
DOC = Path(__file__).resolve().parents[2] / "docs" / "wire-format.md"

FENCE = ("i247-lease-unit", "i247-lease-epoch", "i247-lease-partition", "i247-lease-offset")
DLQ = ("reason", "detail", "topic", "partition", "offset", "timestamp", "processor")
DLQ_REASONS = {"malformed", "oversized", "unknown-sender", "unknown-recipient"}
DLQ_REASONS |= {"bad-signature", "tampered", "not-a-recipient", "stale", "replayed"}
DLQ_REASONS |= {"recipient-revoked"}
DETAIL_BYTES = 4096
LEASE_FIELDS = ("kind", "unit", "site", "epoch", "at", "ttl_ms", "positions")
SITES = ("lyon", "buenos-aires", "singapore")
TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DECIMAL = re.compile(r"[0-9]+")
FRESH_PAST = timedelta(seconds=300)  # §6: I247_FRESHNESS_SECONDS default
FRESH_FUTURE = timedelta(seconds=60)  # §6


def last(headers: Iterable[tuple[str, bytes]], name: str) -> bytes | None:
    """§7: the last value of a repeated header name."""
    found = None
    for key, value in headers:
        if key == name:
            found = value
    return found


def read_fence(headers: Headers) -> tuple[str, int, int, int] | None:
    """§11.3: all four headers, numbers that parse, or no tag at all."""
    values = [last(headers, name) for name in FENCE]
    if any(v is None for v in values):
        return None
    unit, epoch, partition, offset = (v.decode() for v in values if v is not None)
    if not all(DECIMAL.fullmatch(n) for n in (epoch, partition, offset)):
        return None  # READING: "numbers that do not parse" = not plain decimal (§1)
    return unit, int(epoch), int(partition), int(offset)


def write_fence(headers: Headers, tag: tuple[str, int, int, int]) -> Headers:
    """§11.3: a copy replaces any earlier tag (READING: appended last, as on lanes)."""
    kept = [(k, v) for k, v in headers if k not in FENCE]
    return kept + [(name, str(value).encode()) for name, value in zip(FENCE, tag, strict=True)]


def parse_time(text: Any) -> datetime:
    assert isinstance(text, str)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert moment.tzinfo is not None
    return moment


def parse_lease(value: bytes) -> Json:
    """§11.1: exactly the seven fields, typed as the table says."""
    record = json.loads(value)
    assert isinstance(record, dict)
    assert set(record) == set(LEASE_FIELDS)
    assert record["kind"] in ("claim", "renew", "release")
    assert isinstance(record["unit"], str)
    assert 1 <= len(record["unit"]) <= 255
    assert record["site"] in SITES
    assert type(record["epoch"]) is int
    assert record["epoch"] >= 1
    record["at"] = parse_time(record["at"])
    if record["kind"] == "release":
        assert record["ttl_ms"] is None
    else:
        assert type(record["ttl_ms"]) is int
        assert record["ttl_ms"] >= 1
    positions = record["positions"]
    assert isinstance(positions, dict)
    assert all(DECIMAL.fullmatch(p) and type(o) is int for p, o in positions.items())
    record["positions"] = {int(p): o for p, o in positions.items()}
    return record


def write_lease(kind: str, unit: str, site: str, epoch: int, at: datetime, **more: Any) -> bytes:
    """§11.1, written from the table (compact JSON, every field present)."""
    ttl = more.get("ttl_ms")
    positions = {str(p): o for p, o in more.get("positions", {}).items()}
    stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    record = {"kind": kind, "unit": unit, "site": site, "epoch": epoch, "at": stamp}
    record |= {"ttl_ms": ttl, "positions": positions}
    return json.dumps(record, separators=(",", ":")).encode()


@dataclass
class Term:
    epoch: int
    owner: str
    start: dict[int, int]
    end: dict[int, int] | None = None


@dataclass
class Unit:
    owner: str | None = None
    epoch: int = 0
    expires_at: datetime | None = None
    positions: dict[int, int] = field(default_factory=dict)
    terms: list[Term] = field(default_factory=list)


def merge(old: dict[int, int], new: dict[int, int]) -> dict[int, int]:
    """§11.2: forward only, per partition."""
    out = dict(old)
    for partition, offset in new.items():
        out[partition] = max(offset, out.get(partition, 0))
    return out


def fold(units: dict[str, Unit], record: Json) -> None:
    """§11.2; a record that breaks a rule changes nothing."""
    u = units.setdefault(record["unit"], Unit())
    at, site, epoch = record["at"], record["site"], record["epoch"]
    if record["kind"] == "claim":
        expired = u.expires_at is not None and at >= u.expires_at
        if epoch != u.epoch + 1 or not (u.owner is None or expired or u.owner == site):
            return
        start = merge(u.positions, record["positions"])
        for term in u.terms:
            if term.end is None:
                term.end = start
        u.terms.append(Term(epoch, site, start))
        u.owner, u.epoch, u.positions = site, epoch, start
        u.expires_at = at + timedelta(milliseconds=record["ttl_ms"])
        return
    if (u.owner, u.epoch) != (site, epoch):
        return
    u.positions = merge(u.positions, record["positions"])
    if record["kind"] == "renew":
        u.expires_at = at + timedelta(milliseconds=record["ttl_ms"])
        return
    for term in u.terms:
        if term.end is None:
            term.end = u.positions
    u.owner, u.expires_at = None, None


def judge(units: dict[str, Unit], unit: str, epoch: int, partition: int, offset: int) -> str:
    """§11.3's four steps."""
    u = units.get(unit, Unit())
    if epoch > u.epoch:
        return "unknown"
    term = next((t for t in u.terms if t.epoch == epoch), None)
    if term is None:
        return "fenced"
    if term.end is None:
        return "accept"
    return "accept" if offset < term.end.get(partition, 0) else "fenced"


def documented_events() -> dict[str, tuple[set[str], set[str]]]:
    """§13's table, read from the document: event -> (fields, fields marked ``?``)."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(". The control journal\n")  # found by title, whatever its number
    section = text[start : text.index("\n## ", start)]
    events: dict[str, tuple[set[str], set[str]]] = {}
    body = section[section.index("|---|---|---|") :]  # the rows under the table's head
    for line in body.splitlines():
        row = re.fullmatch(r"\| `([a-z-]+)` \| [^|]+ \| (.+) \|", line)
        if row:
            names = re.findall(r"`([a-z_]+)`(\?)?", row.group(2))
            events[row.group(1)] = ({n for n, _ in names}, {n for n, q in names if q})
    return events


def read_control(key: bytes, value: bytes, headers: Headers) -> Json:
    """§13: headers, then the value's common fields and the documented fields."""
    event = json.loads(value)
    assert isinstance(event, dict)
    assert {"event", "hub", "time"} <= set(event)
    assert last(headers, "ce_specversion") == b"1.0"
    assert UUID.fullmatch((last(headers, "ce_id") or b"").decode())
    assert last(headers, "ce_source") == f"/i247/{event['hub']}".encode()
    assert last(headers, "ce_type") == f"int.interpol.i247.control.{event['event']}.v1".encode()
    assert last(headers, "ce_time") == event["time"].encode()
    assert last(headers, "content-type") == b"application/json"
    assert last(headers, "traceparent") is None
    assert TIME.fullmatch(event["time"])
    fields, optional = documented_events()[event["event"]]
    extra = set(event) - {"event", "hub", "time"}
    assert extra <= fields
    assert fields - optional <= extra
    assert key  # every event has a key (the table's second column)
    return event


def hub_ready(records: Iterable[tuple[int, bytes, Headers]], hub: str, since: int) -> Json | None:
    """§13: the first ``hub-ready`` of ``hub`` at or after offset ``since``."""
    for offset, value, _ in records:
        event = json.loads(value)
        if offset >= since and event.get("event") == "hub-ready" and event.get("hub") == hub:
            return dict(event)
    return None


def write_dead_letter_headers(
    reason: str, detail: str, where: tuple[str, int, int, int]
) -> Headers:
    """§14, from the table; the processor is a hub's intake."""
    clipped = detail.encode()[:DETAIL_BYTES].decode("utf-8", errors="ignore")
    topic, partition, offset, timestamp = where
    values = [
        reason,
        clipped,
        topic,
        str(partition),
        str(offset),
        str(timestamp),
        "hub:lyon/intake",
    ]
    return [(f"i247.dlq.{n}", v.encode()) for n, v in zip(DLQ, values, strict=True)]


def read_dead_letter(headers: Headers) -> Json:
    """§14: the last value of each name; numbers decimal, the timestamp may be negative."""
    found = {n: (last(headers, f"i247.dlq.{n}") or b"").decode() for n in DLQ}
    assert found["reason"] in DLQ_REASONS
    assert len(found["detail"].encode()) <= DETAIL_BYTES
    assert DECIMAL.fullmatch(found["partition"])
    assert DECIMAL.fullmatch(found["offset"])
    assert re.fullmatch(r"-?[0-9]+", found["timestamp"])
    assert re.fullmatch(r"hub:(lyon|buenos-aires|singapore)/intake", found["processor"])
    return found


def fresh(created: datetime, now: datetime) -> bool:
    """§6: within the window, both bounds inclusive."""
    return -FRESH_FUTURE <= now - created <= FRESH_PAST


def ack_body(acknowledged: str, note: str | None = None) -> bytes:
    """§15's body."""
    return json.dumps({"type": "ack", "acknowledged": acknowledged, "note": note}).encode()


# ======================= checked against the project =====================================
# ruff: noqa: E402  (the project's imports start here, below the independent client)


from agents.ncb.adapter import NcbAdapter, Opened
from brokers.record_headers import dead_letter_headers
from brokers.record_headers import read_dead_letter as project_read_dead_letter
from brokers.records import OutboundRecord, ReceivedRecord
from brokers.settings import Settings
from schemas.bodies import BODY_ADAPTER, AcknowledgementBody, MessageBody
from schemas.control_events import CONTROL_EVENTS
from schemas.errors import RejectReason
from schemas.header import MessageType, Precedence
from schemas.journal import journal_models
from schemas.leases import (
    Claim,
    FenceTag,
    LeaseBook,
    LeaseEvent,
    LeaseRecord,
    LeaseRefused,
    Release,
    Renew,
    fence_headers,
    fence_tag,
)
from schemas.leases import judge as project_judge
from schemas.topics import TopicCatalog
from streams.core.delivery import DeliveryLedger, plan_delivery
from streams.core.intake import IntakePolicy, Refused, _check_fresh, forwarding_headers
from streams.core.roster import DutyRoster
from streams.desks.hub_state import HubState, dead_letter, journal_event, journal_record
from tests.unit.factories import T0, make_header, small_keyring

TOPICS = TopicCatalog()


def hub_state(prefix: str = "i247") -> HubState:
    directory, identities = small_keyring()
    return HubState(
        settings=Settings(topic_prefix=prefix),
        site="lyon",
        bootstrap="localhost:9092",
        directory=directory,
        identity=identities["hub:lyon"],
        roster=DutyRoster(),
        clock=lambda: T0,
        random_bytes=os.urandom,
    )


def project_writes(state: HubState, event: str, key: str, fields: Json) -> OutboundRecord:
    """The project's writer of ``event``: its typed model (``schemas.journal``) where it
    has one, else ``journal_record`` (a desk's event not typed yet)."""
    model = journal_models().get(event)
    if model is None:
        return journal_record(state, event, key, fields)
    typed = model.model_validate({"hub": state.hub, "time": state.clock(), **fields})
    return journal_event(state, typed, key)


def received(out: OutboundRecord, offset: int = 0) -> ReceivedRecord:
    return ReceivedRecord(out.topic, 0, offset, 0, out.key, out.value, out.headers)


# --- fence tags --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tag", [("intake", 1, 0, 0), ("i247.hub.lyon.flash", 7, 3, 123_456), ("u", 99, 0, 40)]
)
def test_fence_tags_are_written_and_read_alike(tag: tuple[str, int, int, int]) -> None:
    base: Headers = [("ce_id", b"x"), ("i247-lease-epoch", b"1"), ("i247-hub", b"hub:lyon")]
    theirs = list(fence_headers(tuple(base), FenceTag(*tag)))
    mine = write_fence(base, tag)
    assert theirs == mine
    assert read_fence(theirs) == tag
    project = fence_tag(tuple(mine))
    assert project is not None
    assert (project.unit, project.epoch, project.partition, project.offset) == tag


@pytest.mark.parametrize("drop", FENCE)
def test_an_incomplete_or_garbled_tag_is_no_tag_alike(drop: str) -> None:
    whole = write_fence([], ("intake", 2, 0, 5))
    partial = [(k, v) for k, v in whole if k != drop]
    assert read_fence(partial) is None
    assert fence_tag(tuple(partial)) is None
    garbled = [(k, b"x" if k == drop and k != FENCE[0] else v) for k, v in whole]
    assert (read_fence(garbled) is None) == (fence_tag(tuple(garbled)) is None)


def test_forwarded_and_dead_lettered_records_carry_the_documented_headers() -> None:
    raw = ReceivedRecord("i247.inbound", 2, 40, 17, b"FRA", b"{}", (("ce_id", b"m"),))
    forwarded = fence_headers(
        forwarding_headers(raw, make_header(), "FLASH", "hub:lyon"), FenceTag("intake", 3, 2, 40)
    )
    assert [k for k, _ in forwarded][1:6] == [
        "i247-sealed-topic",
        "i247-sealed-key",
        "i247-precedence",
        "i247-hub",
        "i247-origin",
    ]
    assert last(forwarded, "i247-origin") == b"i247.inbound/2/40"
    assert read_fence(list(forwarded)) == ("intake", 3, 2, 40)


# --- the lease journal -------------------------------------------------------------------


def test_a_lease_record_written_from_the_document_is_the_projects() -> None:
    at = T0 + timedelta(microseconds=7)
    mine = write_lease("claim", "intake", "lyon", 3, at, ttl_ms=3000, positions={0: 40, 2: 9})
    theirs = LeaseRecord.of(Claim("intake", "lyon", 3, at, timedelta(seconds=3), {0: 40, 2: 9}))
    assert theirs.model_dump_json().encode() == mine
    assert LeaseRecord.model_validate_json(mine) == theirs
    release = LeaseRecord.of(Release("intake", "lyon", 3, at, {0: 41}))
    assert parse_lease(release.model_dump_json().encode())["ttl_ms"] is None


def _random_event(rng: random.Random, now: datetime, units: dict[str, Unit]) -> LeaseEvent:
    """A claim, renewal or release near the unit's state: most follow the rules, many
    break one (wrong epoch, wrong site, lease not yet expired)."""
    unit = rng.choice(("intake", "L"))
    current = units.get(unit, Unit())
    owner = current.owner or rng.choice(SITES)
    site = owner if rng.random() < 0.6 else rng.choice(SITES)
    epoch = max(1, current.epoch + rng.choice((-1, 0, 0, 1, 1, 1, 2)))
    positions = {p: rng.randrange(0, 60) for p in rng.sample((0, 1, 2), rng.randrange(0, 3))}
    ttl = timedelta(milliseconds=rng.choice((1000, 3000)))
    kind = rng.choice(("claim", "claim", "renew", "renew", "release"))
    if kind == "claim":
        return Claim(unit, site, epoch, now, ttl, positions)
    if kind == "renew":
        return Renew(unit, site, epoch, now, ttl, positions)
    return Release(unit, site, epoch, now, positions)


@pytest.mark.parametrize("seed", range(8))
def test_folding_and_judging_the_journal_agree(seed: int) -> None:
    rng = random.Random(seed)
    book = LeaseBook.empty()
    units: dict[str, Unit] = {}
    now = T0
    for _ in range(150):
        now += timedelta(milliseconds=rng.choice((0, 200, 1000, 2500, 4000)))
        wire = LeaseRecord.of(_random_event(rng, now, units)).model_dump_json().encode()
        fold(units, parse_lease(wire))
        with contextlib.suppress(LeaseRefused):
            book = book.apply(LeaseRecord.model_validate_json(wire).event())
        for name, mine in units.items():
            theirs = book.lease(name)
            assert (mine.owner, mine.epoch, mine.expires_at) == (
                theirs.owner,
                theirs.epoch,
                theirs.expires_at,
            )
            assert [(t.epoch, t.owner, t.start, t.end) for t in mine.terms] == [
                (t.epoch, t.owner, dict(t.start), None if t.end is None else dict(t.end))
                for t in theirs.terms
            ]
    verdicts = set()
    for name in units:
        for epoch in range(units[name].epoch + 2):
            for partition in (0, 1, 3):
                for offset in (0, 10, 30, 59, 60):
                    verdict = project_judge(book, name, epoch, partition, offset).value
                    said = judge(units, name, epoch, partition, offset)
                    assert said == verdict.removesuffix("-epoch")
                    verdicts.add(said)
    assert verdicts == {"accept", "fenced", "unknown"}
    assert sum(len(u.terms) for u in units.values()) >= 4  # the scenario did claim and hand over


@pytest.mark.parametrize("after_ms", [2999, 3000])
def test_a_claim_is_allowed_from_the_instant_the_lease_expires(after_ms: int) -> None:
    first = write_lease("claim", "intake", "lyon", 1, T0, ttl_ms=3000)
    at = T0 + timedelta(milliseconds=after_ms)
    second = write_lease("claim", "intake", "singapore", 2, at, ttl_ms=3000)
    units: dict[str, Unit] = {}
    book = LeaseBook.empty()
    for wire in (first, second):
        fold(units, parse_lease(wire))
        with contextlib.suppress(LeaseRefused):
            book = book.apply(LeaseRecord.model_validate_json(wire).event())
    assert units["intake"].owner == book.lease("intake").owner
    assert units["intake"].owner == ("singapore" if after_ms >= 3000 else "lyon")


def test_the_documents_worked_example() -> None:
    units: dict[str, Unit] = {}
    fold(units, parse_lease(write_lease("claim", "L", "lyon", 1, T0, ttl_ms=3000)))
    fold(
        units, parse_lease(write_lease("renew", "L", "lyon", 1, T0, ttl_ms=3000, positions={0: 40}))
    )
    later = T0 + timedelta(seconds=5)
    fold(units, parse_lease(write_lease("claim", "L", "buenos-aires", 2, later, ttl_ms=3000)))
    assert judge(units, "L", 1, 0, 39) == "accept"
    assert judge(units, "L", 1, 0, 41) == "fenced"
    assert judge(units, "L", 2, 0, 41) == "accept"
    assert judge(units, "L", 3, 0, 0) == "unknown"


# --- the control journal -----------------------------------------------------------------


def test_the_documents_events_table_is_the_catalog() -> None:
    documented = documented_events()
    assert set(documented) == set(CONTROL_EVENTS)
    for name, (fields, optional) in documented.items():
        assert fields == set(CONTROL_EVENTS[name].fields), name
        assert optional == set(CONTROL_EVENTS[name].optional), name


SAMPLES: dict[str, Json] = {
    "hub-ready": {"units": ["intake", "i247.hub.lyon.flash"]},
    "lease-released": {"unit": "intake", "epoch": 2, "reason": "shutdown", "positions": {"0": 4}},
    "lease-lost": {"unit": "intake", "epoch": 2, "now_owner": "singapore", "now_epoch": 3},
    "clock-stopped": {"message_id": str(uuid.uuid4()), "recipient": "DEU"},
    "hub-dead": {
        "site": "singapore",
        "last_heard": None,
        "declared_at": "2026-11-23T12:00:00.000000Z",
    },
    "vehicle-report-refused": {"message_id": "m", "sender": "FRA", "reason": "no"},
}
CLAIM: Json = {
    "unit": "intake",
    "epoch": 1,
    "reason": "first-claim",
    "previous_owner": None,
    "previous_epoch": 0,
    "last_heard": None,
    "detected_at": None,
    "lease_expired_at": None,
    "claimed_at": "2026-11-23T12:00:00.000000Z",
    "confirmed_at": "2026-11-23T12:00:00.000000Z",
    "start": {},
}


@pytest.mark.parametrize("event", sorted(SAMPLES))
def test_journal_events_the_project_writes_read_as_documented(event: str) -> None:
    out = project_writes(hub_state(), event, "k", SAMPLES[event])
    read = read_control(out.key or b"", out.value, list(out.headers))
    assert read["event"] == event
    assert read["hub"] == "hub:lyon"
    assert out.topic == "i247.control"


def test_a_client_tells_a_hub_is_ready_as_documented() -> None:
    state = hub_state()
    written = [
        project_writes(state, "hub-ready", "hub:lyon", {"units": []}),  # an earlier run
        project_writes(state, "lease-claimed", "intake", CLAIM),
        project_writes(state, "hub-ready", "hub:lyon", {"units": ["intake"]}),
    ]
    records = [(offset, out.value, list(out.headers)) for offset, out in enumerate(written)]
    assert hub_ready(records, "hub:lyon", since=1) == json.loads(written[2].value)
    assert hub_ready(records, "hub:singapore", since=0) is None


# --- dead letters ------------------------------------------------------------------------


def test_a_dead_letter_reads_as_documented() -> None:
    original = ReceivedRecord(
        "i247.inbound", 1, 7, -1, b"FRA", b"not json", (("ce_id", b"m"), ("x", b"y"))
    )
    detail = "é" * 3000  # 6000 bytes: cut to 4096 at a character boundary
    refusal = Refused(RejectReason.MALFORMED, detail)
    out = dead_letter(original, refusal, "i247.deadletter", "hub:lyon/intake")
    headers = list(fence_headers(out.headers, FenceTag("intake", 4, 1, 7)))
    assert (out.key, out.value) == (original.key, original.value)
    assert headers[:2] == list(original.headers)
    assert [k for k, _ in headers[2:9]] == [f"i247.dlq.{n}" for n in DLQ]
    assert read_fence(headers) == ("intake", 4, 1, 7)
    found = read_dead_letter(headers)
    assert found["detail"] == "é" * 2048
    assert (found["timestamp"], found["offset"]) == ("-1", "7")
    assert headers[2:9] == write_dead_letter_headers(
        "malformed", detail, ("i247.inbound", 1, 7, -1)
    )


def test_a_dead_letter_written_from_the_document_reads_in_the_project() -> None:
    mine = write_dead_letter_headers("stale", "old", ("i247.inbound", 0, 3, 1_700_000_000_000))
    again = write_dead_letter_headers("replayed", "again", ("i247.replay.r1", 0, 0, 5))
    info = project_read_dead_letter(mine + again)
    assert (info.reason, info.topic, info.timestamp_ms) == ("replayed", "i247.replay.r1", 5)
    assert mine == dead_letter_headers(
        reason="stale",
        detail="old",
        topic="i247.inbound",
        partition=0,
        offset=3,
        timestamp_ms=1_700_000_000_000,
        processor="hub:lyon/intake",
    )


# --- header names do not follow the topic prefix -------------------------------------------


def test_header_names_and_event_types_keep_i247_under_another_prefix() -> None:
    state = hub_state("acme")
    out = project_writes(state, "hub-ready", "hub:lyon", {"units": []})
    assert out.topic == "acme.control"
    read_control(out.key or b"", out.value, list(out.headers))  # ce_type int.interpol.i247.…
    raw = ReceivedRecord("acme.inbound", 0, 1, 0, b"FRA", b"{}", ())
    names = [k for k, _ in forwarding_headers(raw, make_header(), "ROUTINE", "hub:lyon")]
    assert all(n.startswith("i247-") for n in names)
    assert (
        last(list(forwarding_headers(raw, make_header(), "ROUTINE", "hub:lyon")), "i247-origin")
        == b"acme.inbound/0/1"
    )


# --- the freshness window ----------------------------------------------------------------


@pytest.mark.parametrize(
    "age",
    [
        FRESH_PAST,
        FRESH_PAST + timedelta(microseconds=1),
        timedelta(0),
        -FRESH_FUTURE,
        -FRESH_FUTURE - timedelta(microseconds=1),
    ],
)
def test_the_freshness_window_has_the_documented_bounds(age: timedelta) -> None:
    header = make_header(created_at=T0)
    try:
        _check_fresh(header, T0 + age, IntakePolicy())
        project = True
    except Exception:  # the project's StaleMessage
        project = False
    assert fresh(T0, T0 + age) == project


# --- acknowledgements --------------------------------------------------------------------


def _adapter(code: str) -> NcbAdapter:
    directory, identities = small_keyring()
    return NcbAdapter(identities[code], directory, TOPICS)


def _deliver(record: OutboundRecord, precedence: str = "PRIORITY") -> ReceivedRecord:
    """What an inbox reader gets: the record as intake would forward it."""
    raw = ReceivedRecord(TOPICS.inbound, 0, 5, 0, record.key, record.value, record.headers)
    header = make_header()
    return ReceivedRecord(
        TOPICS.inbox("DEU"), 0, 0, 0, record.key, record.value,
        forwarding_headers(raw, header, precedence, "hub:lyon"),
    )  # fmt: skip


def test_the_projects_acknowledgement_is_as_documented() -> None:
    fra, deu = _adapter("FRA"), _adapter("DEU")
    m_header, m = fra.compose(
        ["DEU"], MessageBody(subject="s", text="t"), now=T0, random_bytes=os.urandom,
        case_id="case-1",
    )  # fmt: skip
    opened = deu.receive(_deliver(m))
    assert isinstance(opened, Opened)
    ack = deu.acknowledgement(opened, now=T0, random_bytes=os.urandom)
    assert ack.topic == TOPICS.inbound
    assert ack.key == b"DEU"
    read = fra.receive(_deliver(ack))
    assert isinstance(read, Opened)
    header = read.header.model_dump(mode="json")
    assert header["message_type"] == "ack"
    assert header["recipients"] == ["FRA"]
    assert header["correlation_id"] == m_header.message_id
    assert header["case_id"] == "case-1"
    assert header["precedence"] == "PRIORITY"
    body = json.loads(BODY_ADAPTER.dump_json(read.body))
    assert body == json.loads(ack_body(m_header.message_id))


def test_an_acknowledgement_written_from_the_document_stops_the_clock() -> None:
    deu = _adapter("DEU")
    acknowledged = str(uuid.uuid4())
    body = BODY_ADAPTER.validate_json(ack_body(acknowledged, note="done"))
    assert isinstance(body, AcknowledgementBody)
    header, record = deu.compose(
        ["FRA"], body, now=T0, random_bytes=os.urandom, correlation_id=acknowledged
    )
    assert header.message_type is MessageType.ACKNOWLEDGEMENT
    lane = ReceivedRecord(
        TOPICS.lane("lyon", Precedence.ROUTINE), 0, 0, 0, record.key, record.value,
        forwarding_headers(ReceivedRecord(TOPICS.inbound, 0, 1, 0, record.key, record.value,
                                          record.headers), header, "ROUTINE", "hub:lyon"),
    )  # fmt: skip
    plan = plan_delivery(
        lane, hub="hub:lyon", topics=TOPICS, ledger=DeliveryLedger(), max_bytes=1 << 20
    )
    assert plan.acknowledge is not None
    assert (plan.acknowledge.message_id, plan.acknowledge.recipient) == (acknowledged, "DEU")
    assert plan.receipts == ()
