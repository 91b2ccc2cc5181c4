"""Traces: W3C context in Kafka headers, messaging semantic conventions, the hub's spans."""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id

from agents.ncb.adapter import NcbAdapter
from brokers.record_headers import (
    TraceParent,
    dead_letter_headers,
    header_value,
    parse_traceparent,
    receipt_batch_headers,
    traceparent,
)
from brokers.records import OutboundRecord, ReceivedRecord
from brokers.settings import Settings, SettingsError
from brokers.tracing import (
    Tracing,
    destination_template,
    extract_context,
    inject_context,
    messaging_attributes,
    sampler_for,
    span_name,
    start_tracing,
)
from schemas.bodies import MessageBody
from schemas.topics import TopicCatalog
from streams.hub.tracing import traced_intake, traced_lane
from tests.unit.factories import T0, small_keyring

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
TOPICS = TopicCatalog("i247")
LANE = "i247.hub.lyon.routine"
INBOX = "i247.ncb.DEU.inbox"


@pytest.fixture
def spans() -> Iterator[tuple[Tracing, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    tracing = start_tracing(Settings(), "i247-test", exporter=exporter)
    yield tracing, exporter
    tracing.shutdown()


def received(topic: str, headers: tuple[tuple[str, bytes], ...], offset: int = 7) -> ReceivedRecord:
    return ReceivedRecord(topic, 1, offset, 0, b"m-1", b"sealed bytes", headers)


def sender_headers() -> tuple[tuple[str, bytes], ...]:
    return (("ce_id", b"m-1"), ("traceparent", traceparent(TRACE, SPAN).encode()))


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


def ids(span: ReadableSpan) -> tuple[str, str]:
    context = span.get_span_context()
    assert context is not None
    return format_trace_id(context.trace_id), format_span_id(context.span_id)


def parent_id(span: ReadableSpan) -> str | None:
    return format_span_id(span.parent.span_id) if span.parent is not None else None


class TestTraceContextInHeaders:
    def test_extract_then_inject_round_trips_the_traceparent(self) -> None:
        context = extract_context(sender_headers())
        assert context is not None
        headers = inject_context([("ce_id", b"m-1")], context)
        assert parse_traceparent(header_value(headers, "traceparent") or b"") == (
            TRACE,
            SPAN,
            True,
        )

    def test_inject_replaces_the_traceparent_where_it_stood(self) -> None:
        other = extract_context([("traceparent", traceparent("1" * 32, "2" * 16).encode())])
        assert other is not None
        headers = (*sender_headers(), ("i247-hub", b"hub:lyon"))
        out = inject_context(headers, other)
        assert [name for name, _ in out] == ["ce_id", "traceparent", "i247-hub"]
        assert header_value(out, "traceparent") == f"00-{'1' * 32}-{'2' * 16}-01".encode()

    def test_inject_appends_a_traceparent_to_a_record_without_one(self) -> None:
        context = extract_context(sender_headers())
        assert context is not None
        out = inject_context([("ce_id", b"m-1")], context)
        assert [name for name, _ in out] == ["ce_id", "traceparent"]

    @pytest.mark.parametrize(
        "value", [b"", b"garbage", f"00-{'0' * 32}-{SPAN}-01".encode(), b"01-x-y-z"]
    )
    def test_a_missing_or_malformed_traceparent_names_no_parent(self, value: bytes) -> None:
        assert extract_context([("traceparent", value)]) is None
        assert extract_context([]) is None

    def test_the_last_traceparent_wins_as_kafka_s_last_header(self) -> None:
        headers = [("traceparent", b"garbage"), *sender_headers()]
        assert extract_context(headers) is not None

    def test_an_unsampled_sender_stays_unsampled(self) -> None:
        headers = [("traceparent", traceparent(TRACE, SPAN, sampled=False).encode())]
        context = extract_context(headers)
        assert context is not None
        assert header_value(
            inject_context([], context),
            "traceparent",
        ) == (f"00-{TRACE}-{SPAN}-00".encode())


class TestSemanticConventions:
    def test_attributes_of_a_process_on_kafka(self) -> None:
        attributes = messaging_attributes(
            "process", LANE, partition=2, offset=41, key=b"m-1", message_id="m-1", body_size=9
        )
        assert attributes == {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": LANE,
            "messaging.destination.partition.id": "2",
            "messaging.kafka.offset": 41,
            "messaging.kafka.message.key": "m-1",
            "messaging.message.id": "m-1",
            "messaging.message.body.size": 9,
        }

    @pytest.mark.parametrize(
        ("topic", "template"),
        [
            ("i247.ncb.DEU.inbox", "i247.ncb.{participant}.inbox"),
            ("t1.team.imest-summer-games.inbox", "t1.team.{team}.inbox"),
            ("i247.inbound", None),
            ("i247.hub.lyon.flash", None),
        ],
    )
    def test_per_participant_topics_are_named_by_their_template(
        self, topic: str, template: str | None
    ) -> None:
        assert destination_template(topic) == template
        assert span_name("create", topic) == f"create {template or topic}"

    def test_inbox_attributes_carry_the_template_beside_the_name(self) -> None:
        attributes = messaging_attributes("create", INBOX)
        assert attributes["messaging.destination.name"] == INBOX
        assert attributes["messaging.destination.template"] == "i247.ncb.{participant}.inbox"


async def admit_to_lane(record: ReceivedRecord, epoch: int) -> list[OutboundRecord]:
    headers = (*record.headers, ("i247-hub", b"hub:lyon"))
    return [OutboundRecord(LANE, b"m-1", record.value, headers)]


async def refuse(record: ReceivedRecord, epoch: int) -> list[OutboundRecord]:
    reasons = dead_letter_headers(
        reason="bad-signature",
        detail="forged",
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp_ms=0,
        processor="hub:lyon/intake",
    )
    return [
        OutboundRecord(TOPICS.deadletter, record.key, record.value, record.headers + tuple(reasons))
    ]


async def deliver(record: ReceivedRecord, epoch: int) -> list[OutboundRecord]:
    receipt = receipt_batch_headers("b-1", "hub:lyon", T0, TRACE, "a" * 16)
    return [
        OutboundRecord(INBOX, b"m-1", record.value, record.headers),
        OutboundRecord("i247.ncb.FRA.inbox", b"b-1", b"{}", receipt),
    ]


class TestHubSpans:
    def test_tracing_off_leaves_the_handlers_as_they_are(self) -> None:
        off = start_tracing(Settings(), "i247-hub-lyon")
        assert off.tracer is None
        assert traced_intake(admit_to_lane, off.tracer, hub="hub:lyon", topics=TOPICS) is (
            admit_to_lane
        )
        lane = traced_lane(deliver, None, hub="hub:lyon", unit=LANE, topics=TOPICS)
        assert lane is deliver

    async def test_intake_processes_under_the_sender_and_creates_the_lane_record(
        self, spans: tuple[Tracing, InMemorySpanExporter]
    ) -> None:
        tracing, exporter = spans
        handler = traced_intake(admit_to_lane, tracing.tracer, hub="hub:lyon", topics=TOPICS)
        [lane] = await handler(received(TOPICS.inbound, sender_headers()), 3)
        found = by_name(exporter)
        process, create = found["process i247.inbound"], found[f"create {LANE}"]
        assert ids(process)[0] == ids(create)[0] == TRACE
        assert parent_id(process) == SPAN
        assert parent_id(create) == ids(process)[1]
        assert process.kind is SpanKind.CONSUMER
        assert create.kind is SpanKind.PRODUCER
        assert parse_traceparent(lane.header("traceparent") or b"")[:2] == ids(create)
        assert (
            dict(process.attributes or {}).items()
            >= {
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": TOPICS.inbound,
                "messaging.destination.partition.id": "1",
                "messaging.kafka.offset": 7,
                "messaging.message.id": "m-1",
                "i247.hub": "hub:lyon",
                "i247.lease.epoch": 3,
            }.items()
        )
        assert (
            dict(create.attributes or {}).items()
            >= {
                "messaging.operation.type": "create",
                "messaging.destination.name": LANE,
                "messaging.kafka.message.key": "m-1",
            }.items()
        )

    async def test_a_refused_record_marks_the_span_and_goes_out_untouched(
        self, spans: tuple[Tracing, InMemorySpanExporter]
    ) -> None:
        tracing, exporter = spans
        handler = traced_intake(refuse, tracing.tracer, hub="hub:lyon", topics=TOPICS)
        record = received(TOPICS.inbound, sender_headers())
        [letter] = await handler(record, 3)
        assert letter.headers[: len(record.headers)] == record.headers
        [process] = exporter.get_finished_spans()
        assert process.status.status_code is StatusCode.ERROR
        assert (process.attributes or {})["error.type"] == "bad-signature"

    async def test_a_lane_delivers_under_intake_s_create_span(
        self, spans: tuple[Tracing, InMemorySpanExporter]
    ) -> None:
        tracing, exporter = spans
        handler = traced_lane(deliver, tracing.tracer, hub="hub:lyon", unit=LANE, topics=TOPICS)
        copy, receipts = await handler(received(LANE, sender_headers()), 5)
        found = by_name(exporter)
        process = found[f"process {LANE}"]
        create = found["create i247.ncb.{participant}.inbox"]
        assert parent_id(process) == SPAN
        assert parent_id(create) == ids(process)[1]
        assert (create.attributes or {})["messaging.destination.name"] == INBOX
        assert parse_traceparent(copy.header("traceparent") or b"")[:2] == ids(create)
        assert receipts.header("traceparent") == traceparent(TRACE, "a" * 16).encode()
        assert len(exporter.get_finished_spans()) == 2

    async def test_a_desk_s_reply_keeps_its_own_trace_and_a_circulation_joins_this_one(
        self, spans: tuple[Tracing, InMemorySpanExporter]
    ) -> None:
        other = traceparent("5" * 32, "6" * 16).encode()
        same_trace = traceparent(TRACE, "7" * 16).encode()

        async def desk(record: ReceivedRecord, epoch: int) -> list[OutboundRecord]:
            return [
                OutboundRecord(
                    INBOX, b"r-1", b"reply", (("ce_id", b"r-1"), ("traceparent", other))
                ),
                OutboundRecord(
                    INBOX, b"c-1", b"sv", (("ce_id", b"c-1"), ("traceparent", same_trace))
                ),
            ]

        tracing, exporter = spans
        handler = traced_lane(desk, tracing.tracer, hub="hub:lyon", unit=LANE, topics=TOPICS)
        reply, circulated = await handler(received(LANE, sender_headers()), 5)
        assert reply.header("traceparent") == other
        [create] = [s for s in exporter.get_finished_spans() if s.name.startswith("create")]
        assert parse_traceparent(circulated.header("traceparent") or b"")[:2] == ids(create)
        assert ids(create)[0] == TRACE

    async def test_a_failing_handler_ends_its_span_with_the_error(
        self, spans: tuple[Tracing, InMemorySpanExporter]
    ) -> None:
        async def crash(record: ReceivedRecord, epoch: int) -> list[OutboundRecord]:
            raise RuntimeError("boom")

        tracing, exporter = spans
        handler = traced_intake(crash, tracing.tracer, hub="hub:lyon", topics=TOPICS)
        with pytest.raises(RuntimeError, match="boom"):
            await handler(received(TOPICS.inbound, sender_headers()), 1)
        [process] = exporter.get_finished_spans()
        assert process.status.status_code is StatusCode.ERROR

    async def test_a_record_without_context_starts_a_trace_of_its_own(
        self, spans: tuple[Tracing, InMemorySpanExporter]
    ) -> None:
        tracing, exporter = spans
        handler = traced_intake(admit_to_lane, tracing.tracer, hub="hub:lyon", topics=TOPICS)
        await handler(received(TOPICS.inbound, (("ce_id", b"m-1"),)), 1)
        process = by_name(exporter)["process i247.inbound"]
        assert process.parent is None


class TestSetUp:
    def test_traces_are_off_by_default(self) -> None:
        assert Settings.from_env({}).traces == "off"
        assert start_tracing(Settings.from_env({}), "x") == Tracing()

    @pytest.mark.parametrize("value", ["off", "console", "otlp", " Console "])
    def test_the_exporter_is_chosen_by_i247_traces(self, value: str) -> None:
        assert Settings.from_env({"I247_TRACES": value}).traces == value.strip().lower()

    @pytest.mark.parametrize(
        ("variable", "value"),
        [("I247_TRACES", "jaeger"), ("I247_TRACE_SAMPLE", "1.5"), ("I247_TRACE_SAMPLE", "nan")],
    )
    def test_bad_trace_settings_are_refused_by_name(self, variable: str, value: str) -> None:
        with pytest.raises(SettingsError, match=variable):
            Settings.from_env({variable: value})

    def test_a_misspelt_trace_variable_is_refused(self) -> None:
        with pytest.raises(SettingsError, match="did you mean I247_TRACES"):
            Settings.from_env({"I247_TRACE": "console"})

    def test_console_writes_one_json_span_per_line(self) -> None:
        out = io.StringIO()
        tracing = start_tracing(Settings(traces="console"), "i247-hub-lyon", out=out)
        assert tracing.tracer is not None
        tracing.tracer.start_span("process i247.inbound").end()
        tracing.shutdown()
        [line] = out.getvalue().splitlines()
        span = json.loads(line)
        assert span["name"] == "process i247.inbound"
        assert span["resource"]["attributes"]["service.name"] == "i247-hub-lyon"

    def test_otlp_sends_the_spans_to_the_collector_the_standard_variable_names(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        received: list[bytes] = []

        class Collector(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        server = HTTPServer(("127.0.0.1", 0), Collector)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            endpoint = f"http://127.0.0.1:{server.server_address[1]}"
            monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            tracing = start_tracing(Settings(traces="otlp"), "i247-hub-lyon")
            assert tracing.tracer is not None
            tracing.tracer.start_span("process i247.inbound").end()
            tracing.shutdown()  # flushes the batch
        finally:
            server.shutdown()
            server.server_close()
        request = ExportTraceServiceRequest.FromString(received[0])
        [resource] = request.resource_spans
        [span] = resource.scope_spans[0].spans
        assert span.name == "process i247.inbound"

    def test_sampling_is_by_trace_id_for_roots_and_remote_parents(self) -> None:
        sampler = sampler_for(0.0, environ={})
        assert sampler is not None
        parent = extract_context(sender_headers())
        dropped = sampler.should_sample(parent, int(TRACE, 16), "process i247.inbound")
        assert dropped.decision is Decision.DROP
        everything = sampler_for(1.0, environ={})
        assert everything is not None
        kept = everything.should_sample(parent, int(TRACE, 16), "process i247.inbound")
        assert kept.decision is Decision.RECORD_AND_SAMPLE

    def test_the_standard_sampler_variable_takes_over(self) -> None:
        assert sampler_for(0.5, environ={"OTEL_TRACES_SAMPLER": "always_on"}) is None

    def test_an_unsampled_trace_records_nothing(self) -> None:
        exporter = InMemorySpanExporter()
        tracing = start_tracing(Settings(trace_sample=0.0), "x", exporter=exporter)
        assert tracing.tracer is not None
        tracing.tracer.start_span("send i247.inbound").end()
        assert exporter.get_finished_spans() == ()


class TestSenderTrace:
    def test_a_tracing_sender_s_message_carries_its_span(self) -> None:
        directory, identities = small_keyring()
        adapter = NcbAdapter(identities["FRA"], directory, TOPICS)
        header, record = adapter.compose(
            ["DEU"],
            MessageBody(subject="s", text="t"),
            now=T0,
            random_bytes=os.urandom,
            trace=TraceParent(TRACE, SPAN, True),
        )
        assert header.trace_id == TRACE
        assert record.header("traceparent") == traceparent(TRACE, SPAN).encode()

    def test_an_untraced_sender_draws_its_trace(self) -> None:
        directory, identities = small_keyring()
        adapter = NcbAdapter(identities["FRA"], directory, TOPICS)
        header, record = adapter.compose(
            ["DEU"], MessageBody(subject="s", text="t"), now=T0, random_bytes=os.urandom
        )
        assert parse_traceparent(record.header("traceparent") or b"").trace_id == header.trace_id
