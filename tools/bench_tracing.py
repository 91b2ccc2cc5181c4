"""CPU µs per message that a hub's tracing adds (docs/tracing.md, "What it costs").

Runs the two hops a routed message takes through a hub (intake, then its lane) with
trivial handlers, so what is measured is the tracing alone: off, on with every trace
recorded, on with none, and on at a 10% sample. Spans go to a batch processor with an
exporter that discards them (an OTLP exporter's work runs in that thread too).

    .venv/bin/python tools/bench_tracing.py [messages]
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Tracer

from brokers.record_headers import traceparent
from brokers.records import OutboundRecord, ReceivedRecord
from brokers.tracing import sampler_for
from schemas import header_names as names
from schemas.topics import TopicCatalog
from streams.hub.tracing import traced_intake, traced_lane

TOPICS = TopicCatalog("i247")
LANE = "i247.hub.lyon.routine"
INBOX = "i247.ncb.DEU.inbox"
CLOUDEVENT = (("ce_specversion", b"1.0"), ("ce_id", b"m-1"), ("ce_source", b"/i247/FRA"))


class Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


async def admit(record: ReceivedRecord, epoch: int) -> list[OutboundRecord]:
    headers = (*record.headers, (names.HUB, b"hub:lyon"))
    return [OutboundRecord(LANE, b"m-1", record.value, headers)]


async def deliver(record: ReceivedRecord, epoch: int) -> list[OutboundRecord]:
    return [OutboundRecord(INBOX, b"m-1", record.value, record.headers)]


async def per_message(tracer: Tracer | None, records: list[ReceivedRecord]) -> float:
    """CPU µs per message through both hops."""
    intake = traced_intake(admit, tracer, hub="hub:lyon", topics=TOPICS)
    lane = traced_lane(deliver, tracer, hub="hub:lyon", unit=LANE, topics=TOPICS)
    start = time.process_time()
    for offset, record in enumerate(records):
        [out] = await intake(record, 1)
        await lane(ReceivedRecord(LANE, 0, offset, 0, out.key, out.value, out.headers), 1)
    return (time.process_time() - start) / len(records) * 1e6


async def traced(share: float, records: list[ReceivedRecord]) -> float:
    provider = TracerProvider(
        resource=Resource.create({"service.name": "bench"}), sampler=sampler_for(share, {})
    )
    provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=1 << 18))
    try:
        return await per_message(provider.get_tracer("bench"), records)
    finally:
        provider.shutdown()


async def main(count: int) -> None:
    records = [
        ReceivedRecord(
            TOPICS.inbound,
            0,
            offset,
            0,
            b"FRA",
            b"x" * 1200,
            (*CLOUDEVENT, ("traceparent", traceparent(os.urandom(16).hex(), "1" * 16).encode())),
        )
        for offset in range(count)
    ]
    for _ in range(3):
        off = await per_message(None, records)
        every, none, tenth = [await traced(s, records) for s in (1.0, 0.0, 0.1)]
        print(
            f"{count} messages, CPU µs each: off {off:.1f} (the trivial handlers alone); "
            f"all sampled {every:.1f}; none sampled {none:.1f}; 10% sampled {tenth:.1f}"
        )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
