"""Operators' replay: which records a filter selects, who may open what, the pacing
schedule, the JSON Lines encoding, the replay marks and the time merge (no broker)."""

from __future__ import annotations

import argparse
import io
import json
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.ops.replay import (
    JsonLinesOutput,
    Opener,
    ReplayedRecord,
    TableOutput,
    record_from_json_line,
    replay,
    sealed_for,
    to_json_line,
)
from agents.ops.replay_command import build_filter, register_replay, topic_selector
from agents.ops.replay_filter import (
    ReplayFilter,
    ReplayFilterError,
    envelope_of,
    matches,
    matches_header,
    matches_position,
    parse_moment,
)
from agents.ops.replay_pacing import Pace, Pacer, parse_pace, schedule
from brokers.record_headers import (
    BadHeader,
    ReplayMark,
    dead_letter_headers,
    envelope_headers,
    read_replay_mark,
    replay_headers,
)
from brokers.records import ReceivedRecord
from brokers.replay_source import TimeMerge
from schemas.bodies import Body, MessageBody, UrgentRequestBody
from schemas.header import MessageType, Precedence
from schemas.sealing import seal
from schemas.topics import TopicCatalog
from tests.unit.factories import make_header
from tests.unit.keyring import small_keyring

INBOUND = "i247.inbound"
CATALOG = TopicCatalog("i247")


def sealed_record(
    offset: int,
    timestamp_ms: int,
    *,
    sender: str,
    recipients: list[str],
    body: Body | None = None,
    precedence: Precedence = Precedence.ROUTINE,
    correlation_id: str | None = None,
    topic: str = INBOUND,
) -> ReceivedRecord:
    """A real sealed envelope as it lies on the inbound topic."""
    directory, identities = small_keyring()
    body = body or MessageBody(subject=f"subject {offset}", text="text")
    header = make_header(
        sender=sender,
        recipients=recipients,
        message_type=MessageType(body.type),
        precedence=precedence,
        correlation_id=correlation_id,
    )
    sealed = seal(
        header,
        body,
        sender=identities[sender],
        directory=directory,
        topic=INBOUND,
        key=sender.encode(),
    )
    return ReceivedRecord(
        topic,
        0,
        offset,
        timestamp_ms,
        sender.encode(),
        sealed.to_bytes(),
        envelope_headers(header, os.urandom(8).hex()),
    )


URGENT = UrgentRequestBody(subject="help", situation="hostage", text="now")
RECORDS: dict[str, ReceivedRecord] = {
    "fra-deu": sealed_record(0, 1_000, sender="FRA", recipients=["DEU"], correlation_id="case-1"),
    "deu-fra-ita": sealed_record(
        1, 2_000, sender="DEU", recipients=["FRA", "ITA"], body=URGENT, precedence=Precedence.FLASH
    ),
    "ita-ccc": sealed_record(2, 3_000, sender="ITA", recipients=["ccc"]),
    "journal": ReceivedRecord("i247.control", 0, 0, 1_500, None, b'{"event":"hub-ready"}'),
    "heartbeat": ReceivedRecord("i247.hub.heartbeat", 0, 0, 2_500, b"hub:lyon", b"{}"),
    "dead-garbage": ReceivedRecord(
        "i247.deadletter",
        0,
        0,
        2_600,
        b"FRA",
        b"\x00not json",
        tuple(
            dead_letter_headers(
                reason="malformed",
                detail="not JSON",
                topic=INBOUND,
                partition=0,
                offset=9,
                timestamp_ms=2_590,
                processor="intake",
            )
        ),
    ),
}
RECORDS["dead-envelope"] = replace(
    RECORDS["fra-deu"],
    topic="i247.deadletter",
    offset=1,
    timestamp_ms=2_700,
    headers=RECORDS["fra-deu"].headers
    + tuple(
        dead_letter_headers(
            reason="stale",
            detail="too old",
            topic=INBOUND,
            partition=0,
            offset=0,
            timestamp_ms=1_000,
            processor="intake",
        )
    ),
)
ALL = set(RECORDS)
SEALED = {"fra-deu", "deu-fra-ita", "ita-ccc", "dead-envelope"}


def selected(flt: ReplayFilter) -> set[str]:
    return {name for name, record in RECORDS.items() if matches(record, flt)}


class TestFilter:
    @pytest.mark.parametrize(
        ("criteria", "expected"),
        [
            ({}, ALL),
            ({"since_ms": 2_000}, ALL - {"fra-deu", "journal"}),
            ({"until_ms": 2_000}, {"fra-deu", "journal"}),
            ({"since_ms": 1_500, "until_ms": 2_600}, {"journal", "deu-fra-ita", "heartbeat"}),
            ({"topics": {"i247.control"}}, {"journal"}),
            ({"topics": {"i247.dead*"}}, {"dead-garbage", "dead-envelope"}),
            ({"senders": {"FRA"}}, {"fra-deu", "dead-envelope"}),
            ({"senders": {"FRA", "ITA"}}, {"fra-deu", "dead-envelope", "ita-ccc"}),
            ({"recipients": {"FRA"}}, {"deu-fra-ita"}),
            ({"recipients": {"ITA", "DEU"}}, {"deu-fra-ita", "fra-deu", "dead-envelope"}),
            ({"recipients": {"ccc"}}, {"ita-ccc"}),
            ({"message_types": {MessageType.URGENT_REQUEST}}, {"deu-fra-ita"}),
            ({"precedences": {Precedence.ROUTINE}}, SEALED - {"deu-fra-ita"}),
            ({"correlation_ids": {"case-1"}}, {"fra-deu", "dead-envelope"}),
            ({"senders": {"FRA"}, "topics": {INBOUND}}, {"fra-deu"}),
            ({"senders": {"FRA"}, "since_ms": 2_000}, {"dead-envelope"}),
            ({"senders": {"USA"}}, set()),
        ],
    )
    def test_selects_exactly(self, criteria: dict[str, Any], expected: set[str]) -> None:
        assert selected(ReplayFilter(**criteria)) == expected

    def test_header_criteria_never_match_records_without_a_routing_header(self) -> None:
        for name in ALL - SEALED:
            assert envelope_of(RECORDS[name]) is None
            assert not matches(RECORDS[name], ReplayFilter(precedences=set(Precedence)))

    def test_an_empty_window_is_refused(self) -> None:
        with pytest.raises(ValueError, match="must be after"):
            ReplayFilter(since_ms=5, until_ms=5)

    @given(
        name=st.sampled_from(sorted(ALL)),
        since=st.none() | st.integers(0, 4_000),
        senders=st.sets(st.sampled_from(["FRA", "DEU", "ITA"]), max_size=2),
    )
    def test_matches_is_position_and_header(
        self, name: str, since: int | None, senders: set[str]
    ) -> None:
        record, flt = RECORDS[name], ReplayFilter(since_ms=since, senders=frozenset(senders))
        sealed = envelope_of(record)
        expected = matches_position(record, flt) and matches_header(
            sealed.header if sealed else None, flt
        )
        assert matches(record, flt) is expected


class TestMoments:
    NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("15m", NOW - timedelta(minutes=15)),
            ("90s", NOW - timedelta(seconds=90)),
            ("2h", NOW - timedelta(hours=2)),
            ("1d", NOW - timedelta(days=1)),
            ("2026-11-23T10:00:00Z", datetime(2026, 11, 23, 10, tzinfo=UTC)),
            ("2026-11-23T11:00:00+01:00", datetime(2026, 11, 23, 10, tzinfo=UTC)),
            ("2026-11-23T10:00", datetime(2026, 11, 23, 10, tzinfo=UTC)),
        ],
    )
    def test_parses(self, text: str, expected: datetime) -> None:
        assert parse_moment(text, now=self.NOW) == expected

    @pytest.mark.parametrize("text", ["yesterday", "15", "-5m", "2026-13-01"])
    def test_refuses_with_the_accepted_forms(self, text: str) -> None:
        with pytest.raises(ReplayFilterError, match="ISO-8601"):
            parse_moment(text, now=self.NOW)


class TestCommandLine:
    def parse(self, *argv: str) -> argparse.Namespace:
        parser = argparse.ArgumentParser()
        register_replay(parser.add_subparsers(dest="command"))
        return parser.parse_args(["replay", "--from-kafka", *argv])

    def test_builds_the_filter_the_flags_describe(self) -> None:
        args = self.parse(
            *("--since", "1h", "--until", "2026-11-23T12:00:00Z", "--topic", "inbound"),
            *("--topic", "i247.ncb.*.inbox", "--sender", "FRA", "--priority", "flash"),
        )
        flt = build_filter(args, now=TestMoments.NOW, catalog=CATALOG)
        assert flt.since_ms == int((TestMoments.NOW - timedelta(hours=1)).timestamp() * 1000)
        assert flt.until_ms == int(TestMoments.NOW.timestamp() * 1000)
        assert flt.topics == {"i247.inbound", "i247.ncb.*.inbox"}
        assert flt.senders == {"FRA"}
        assert flt.precedences == {Precedence.FLASH}

    def test_an_inverted_window_is_a_usage_error(self) -> None:
        args = self.parse("--since", "5m", "--until", "1h")
        with pytest.raises(ReplayFilterError, match="must be after"):
            build_filter(args, now=TestMoments.NOW, catalog=CATALOG)

    def test_replay_topics_are_read_only_when_named(self) -> None:
        everything = topic_selector(ReplayFilter(), CATALOG)
        assert everything("i247.inbound")
        assert not everything(CATALOG.replay("drill"))
        named = topic_selector(ReplayFilter(topics=frozenset({"i247.replay.*"})), CATALOG)
        assert named(CATALOG.replay("drill"))
        assert not named("i247.inbound")


class TestOpening:
    def opener(self, participant: str) -> Opener:
        directory, identities = small_keyring()
        return Opener(identities[participant], directory)

    @pytest.mark.parametrize(
        ("reader", "opens"),
        [
            ("FRA", {"fra-deu", "deu-fra-ita", "dead-envelope"}),  # sent, received
            ("DEU", {"fra-deu", "deu-fra-ita", "dead-envelope"}),
            ("ITA", {"deu-fra-ita", "ita-ccc"}),
            ("ESP", set()),
            ("auditor", {"ita-ccc"}),  # the auditor reads only what the CCC reads
            ("hub:lyon", {"ita-ccc"}),
        ],
    )
    def test_opens_only_what_the_reader_holds_a_key_for(self, reader: str, opens: set[str]) -> None:
        opener = self.opener(reader)
        opened = set()
        for name in SEALED:
            sealed = envelope_of(RECORDS[name])
            assert sealed is not None
            body, note = opener.open(RECORDS[name], sealed)
            assert (body is not None) == (note == "opened")
            if body is not None:
                opened.add(name)
            else:
                assert note == "headers only"
        assert opened == opens

    def test_a_delivered_record_is_opened_for_the_topic_it_was_sealed_for(self) -> None:
        original = RECORDS["fra-deu"]
        delivered = replace(
            original,
            topic="i247.ncb.DEU.inbox",
            key=b"some-message-id",
            headers=(("i247-sealed-topic", INBOUND.encode()), ("i247-sealed-key", b"FRA")),
        )
        assert sealed_for(delivered) == (INBOUND, b"FRA")
        sealed = envelope_of(delivered)
        assert sealed is not None
        assert self.opener("DEU").open(delivered, sealed)[1] == "opened"

    def test_a_replayed_record_is_opened_for_its_original_topic(self) -> None:
        original = RECORDS["fra-deu"]
        mark = ReplayMark(name="r", topic=INBOUND, partition=0, offset=0, timestamp_ms=1_000)
        replayed = replace(original, topic="i247.replay.r", headers=tuple(replay_headers(mark)))
        assert sealed_for(replayed) == (INBOUND, b"FRA")

    def test_a_moved_record_is_refused_not_opened(self) -> None:
        moved = replace(RECORDS["fra-deu"], key=b"DEU")  # the key is bound into the seal
        sealed = envelope_of(moved)
        assert sealed is not None
        body, note = self.opener("FRA").open(moved, sealed)
        assert body is None
        assert note.startswith("refused:")


class TestPacing:
    @pytest.mark.parametrize(
        ("text", "speed"),
        [("original", 1.0), ("max", None), ("10x", 10.0), ("0.5x", 0.5), ("3", 3.0), ("MAX", None)],
    )
    def test_parses_paces(self, text: str, speed: float | None) -> None:
        assert parse_pace(text).speed == speed

    @pytest.mark.parametrize("text", ["0x", "fast", "-2x", ""])
    def test_refuses_other_paces(self, text: str) -> None:
        with pytest.raises(ValueError, match="original, max"):
            parse_pace(text)

    @pytest.mark.parametrize(
        ("timestamps", "pace", "expected"),
        [
            ([], Pace(1.0), []),
            ([5_000, 6_000, 8_000], Pace(1.0), [0.0, 1.0, 3.0]),
            ([5_000, 6_000, 8_000], Pace(10.0), [0.0, 0.1, 0.3]),
            ([5_000, 6_000, 8_000], Pace(None), [0.0, 0.0, 0.0]),
            ([0, 2_000, 1_000, 3_000], Pace(1.0), [0.0, 2.0, 2.0, 3.0]),  # never earlier
            ([1_000, 0], Pace(2.0), [0.0, 0.0]),
        ],
    )
    def test_schedule(self, timestamps: list[int], pace: Pace, expected: list[float]) -> None:
        assert schedule(timestamps, pace) == pytest.approx(expected)

    @given(
        timestamps=st.lists(st.integers(0, 10**12), max_size=50),
        speed=st.floats(0.01, 1_000),
    )
    def test_schedule_is_ordered_and_scales_with_speed(
        self, timestamps: list[int], speed: float
    ) -> None:
        due = schedule(timestamps, Pace(speed))
        original = schedule(timestamps, Pace(1.0))
        assert due == sorted(due)
        assert all(d >= 0 for d in due)
        assert due == pytest.approx([o / speed for o in original])
        if timestamps:
            assert due[0] == 0.0
            assert due[-1] == pytest.approx((max(timestamps) - timestamps[0]) / 1000 / speed)
            pacer = Pacer(Pace(speed))
            assert [pacer.due(t) for t in timestamps] == due


def line(record: ReceivedRecord) -> dict[str, Any]:
    return json.loads(json.dumps(to_json_line(ReplayedRecord(record, None))))  # type: ignore[no-any-return]


class TestJsonLines:
    @given(
        key=st.none() | st.binary(max_size=40) | st.text(max_size=20).map(str.encode),
        value=st.binary(max_size=200),
        headers=st.lists(
            st.tuples(st.text(min_size=1, max_size=20), st.binary(max_size=30)), max_size=5
        ),
        timestamp_ms=st.integers(0, 2**41),
    )
    def test_round_trip(
        self, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]], timestamp_ms: int
    ) -> None:
        record = ReceivedRecord("i247.inbound", 3, 42, timestamp_ms, key, value, tuple(headers))
        assert record_from_json_line(line(record)) == record

    def test_printable_values_are_text_others_base64(self) -> None:
        record = ReceivedRecord(
            "t", 0, 0, 0, b"FRA", b"v", (("i247-hub", b"hub:lyon"), ("bin", b"\x00\xff"))
        )
        encoded = line(record)
        assert encoded["key"] == {"text": "FRA"}
        assert encoded["headers"] == [
            {"name": "i247-hub", "text": "hub:lyon"},
            {"name": "bin", "base64": "AP8="},
        ]
        assert encoded["value_base64"] == "dg=="
        assert encoded["timestamp"] == "1970-01-01T00:00:00.000000Z"

    def test_carries_the_routing_header_and_the_opened_body(self) -> None:
        record = RECORDS["deu-fra-ita"]
        sealed = envelope_of(record)
        assert sealed is not None
        directory, identities = small_keyring()
        body, opening = Opener(identities["FRA"], directory).open(record, sealed)
        encoded = to_json_line(ReplayedRecord(record, sealed.header, body, opening))
        assert encoded["routing"]["sender"] == "DEU"
        assert encoded["routing"]["precedence"] == "FLASH"
        assert encoded["opening"] == "opened"
        assert encoded["body"]["situation"] == "hostage"

    @pytest.mark.parametrize(
        "bad",
        [{}, {"topic": "t"}, {**line(RECORDS["journal"]), "key": {"hex": "00"}}],
    )
    def test_refuses_what_is_not_a_replay_line(self, bad: dict[str, Any]) -> None:
        with pytest.raises(ValueError, match=r"replay JSON line|expected"):
            record_from_json_line(bad)


class TestReplayMarks:
    def test_round_trip(self) -> None:
        mark = ReplayMark(name="drill-1", topic=INBOUND, partition=2, offset=9, timestamp_ms=7)
        headers = [("traceparent", b"x"), *replay_headers(mark)]
        assert read_replay_mark(headers) == mark

    def test_live_traffic_has_no_mark(self) -> None:
        assert read_replay_mark(RECORDS["fra-deu"].headers) is None

    def test_an_incomplete_or_bad_mark_is_a_bad_header(self) -> None:
        mark = ReplayMark(name="d", topic=INBOUND, partition=0, offset=0, timestamp_ms=0)
        headers = replay_headers(mark)
        with pytest.raises(BadHeader, match=r"missing i247\.replay\.offset"):
            read_replay_mark([h for h in headers if h[0] != "i247.replay.offset"])
        with pytest.raises(BadHeader, match="integers"):
            read_replay_mark([*headers, ("i247.replay.partition", b"two")])

    @pytest.mark.parametrize("name", ["drill-1", "a", "X_9"])
    def test_replay_topic_names(self, name: str) -> None:
        assert CATALOG.replay(name) == f"i247.replay.{name}"

    @pytest.mark.parametrize("name", ["", "a.b", "-x", "a b", "x" * 65])
    def test_refuses_bad_replay_names(self, name: str) -> None:
        with pytest.raises(ValueError, match="replay name"):
            CATALOG.replay(name)


class TestTimeMerge:
    @given(
        streams=st.lists(st.lists(st.integers(0, 100), max_size=8), min_size=1, max_size=4),
        chunk=st.integers(1, 3),
    )
    def test_keeps_each_partition_in_order_and_loses_nothing(
        self, streams: list[list[int]], chunk: int
    ) -> None:
        keys = [("t", p) for p in range(len(streams))]
        records = {
            key: [ReceivedRecord("t", key[1], o, ts, None, b"") for o, ts in enumerate(stream)]
            for key, stream in zip(keys, streams, strict=True)
        }
        merge, out = TimeMerge(keys), []
        for start in range(0, max(map(len, streams)) + 1, chunk):
            for key in keys:
                merge.push(key, records[key][start : start + chunk])
                if start + chunk >= len(records[key]):
                    merge.finish(key)
            out += merge.pop_ready()
        assert merge.done
        for key in keys:
            assert [r for r in out if r.partition == key[1]] == records[key]

    def test_monotone_partitions_come_out_in_time_order(self) -> None:
        keys = [("a", 0), ("b", 0)]
        merge = TimeMerge(keys)
        merge.push(
            keys[0], [ReceivedRecord("a", 0, i, ts, None, b"") for i, ts in enumerate([1, 4, 6])]
        )
        merge.push(
            keys[1], [ReceivedRecord("b", 0, i, ts, None, b"") for i, ts in enumerate([2, 3, 7])]
        )
        merge.finish(keys[0])
        merge.finish(keys[1])
        assert [r.timestamp_ms for r in merge.pop_ready()] == [1, 2, 3, 4, 6, 7]


class TestReplayLoop:
    async def test_paces_selects_opens_and_stops_at_the_limit(self) -> None:
        now = [100.0]
        waits: list[float] = []

        async def sleep(seconds: float) -> None:
            waits.append(seconds)
            now[0] += seconds

        directory, identities = small_keyring()
        out = io.StringIO()
        records = [RECORDS[n] for n in ("fra-deu", "journal", "deu-fra-ita", "ita-ccc")]
        summary = await replay(
            records,
            ReplayFilter(senders=frozenset({"FRA", "DEU", "ITA"})),
            JsonLinesOutput(out),
            opener=Opener(identities["FRA"], directory),
            pace=Pace(10.0),
            limit=2,
            clock=lambda: now[0],
            sleep=sleep,
        )
        lines = [json.loads(x) for x in out.getvalue().splitlines()]
        assert [x["offset"] for x in lines] == [0, 1]
        assert [x["opening"] for x in lines] == ["opened", "opened"]
        assert waits == pytest.approx([0.1])  # 1 000 ms apart at 10x
        assert (summary.read, summary.selected, summary.opened) == (3, 2, 2)

    async def test_takes_an_async_source_and_closes_it_when_stopping_early(self) -> None:
        closed = []

        async def source() -> Any:
            try:
                for record in RECORDS.values():
                    yield record
            finally:
                closed.append(True)

        out = io.StringIO()
        summary = await replay(source(), ReplayFilter(), JsonLinesOutput(out), limit=1)
        assert summary.selected == 1
        assert closed == [True]

    async def test_the_table_shows_headers_and_what_non_envelopes_are(self) -> None:
        console_file = io.StringIO()
        from rich.console import Console

        output = TableOutput(Console(file=console_file, width=200))
        await replay(list(RECORDS.values()), ReplayFilter(), output)
        text = console_file.getvalue()
        assert "urgent-request" in text
        assert "FLASH" in text
        assert "DEU → FRA, ITA" in text
        assert "dead letter: malformed" in text
        assert '{"event":"hub-ready"}' in text
