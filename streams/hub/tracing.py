"""Spans of a hub's work: intake and delivery, each record's hop as a child of the last.

Theory of operation: the hub's record handlers (``HubRuntime._intake``, ``LaneDelivery``)
stay untouched; ``traced_intake`` and ``traced_lane`` wrap them when the hub traces, and
return them unchanged when it does not (``I247_TRACES=off``), so tracing off costs nothing
per record. Around one input record a wrapper opens a ``process`` span (CONSUMER) whose
parent is the context in the record's ``traceparent``; for each record the handler makes
that continues the message (a lane record from intake, an inbox copy from a lane) it
opens and ends a ``create`` span (PRODUCER) under it and writes that span's context into
the output's ``traceparent``. The work loop produces the outputs afterwards, one
acknowledgement wait per batch, so ``create`` marks where the message was made, not a
send's round trip.

So a message sent by a tracing client is one trace: ``send i247.inbound`` → ``process
i247.inbound`` (intake) → ``create i247.hub.<site>.<lane>`` → ``process`` (the lane) →
``create i247.ncb.{participant}.inbox`` → the recipient's ``process`` span. Whatever hub
does a hop reads its parent from the record, so after a failover the successor's spans
join the same trace (the dead hub's last spans may be lost with it: they were buffered).

Sampling is decided once per trace: a record whose ``traceparent`` says "not sampled"
(flags ``00``) passes through untouched, with no span at all; a trace the hub's sampler
drops at its first hop leaves with flags ``00``, so later hops skip it as cheaply.

Dead letters keep the refused record untouched, traceparent and all: the intake span is
marked with the refusal (``error.type`` = the reason). Receipt batches, journal records
and the desks' replies (messages of their own, with traces of their own) keep the headers
their makers gave them: only an output of the same message (its ``ce_id``) or of the same
trace continues it, so a record's trace id stays its header's ``trace_id`` (a record
whose ``traceparent`` is missing or malformed starts a trace of its own here).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, Tracer

from brokers.record_headers import header_value, is_receipt_batch
from brokers.records import OutboundRecord, ReceivedRecord
from brokers.tracing import (
    Operation,
    extract_context,
    inject_context,
    messaging_attributes,
    record_refusal,
    span_kind,
    span_name,
)
from schemas.header_names import CE_ID, DLQ_PREFIX, TRACEPARENT
from schemas.topics import TopicCatalog
from streams.hub.unit_workers import RecordHandler

__all__ = ["traced_intake", "traced_lane"]

_REASON = DLQ_PREFIX + "reason"


def _process_span(
    tracer: Tracer, record: ReceivedRecord, parent: Context | None, hub: str, unit: str, epoch: int
) -> Span:
    span = tracer.start_span(
        span_name("process", record.topic), context=parent, kind=span_kind("process")
    )
    if span.is_recording():  # attributes cost; a sampled-out span takes none
        message_id = header_value(record.headers, CE_ID)
        attributes = messaging_attributes(
            "process",
            record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            message_id=message_id.decode("utf-8", errors="replace") if message_id else None,
            body_size=len(record.value),
        )
        attributes |= {"i247.hub": hub, "i247.lease.unit": unit, "i247.lease.epoch": epoch}
        span.set_attributes(attributes)
    return span


def _unsampled(parent: Context | None) -> bool:
    """Whether the record's sender (or an earlier hop) decided not to record its trace."""
    if parent is None:
        return False
    return not trace.get_current_span(parent).get_span_context().trace_flags.sampled


def _created(tracer: Tracer, parent: Span, out: OutboundRecord, hub: str) -> OutboundRecord:
    """``out`` with a ``create`` span of its own, a child of ``parent``, in its traceparent."""
    operation: Operation = "create"
    message_id = out.key.decode("utf-8", errors="replace") if out.key else None
    span = tracer.start_span(
        span_name(operation, out.topic),
        context=trace.set_span_in_context(parent),
        kind=span_kind(operation),
        attributes=messaging_attributes(
            operation,
            out.topic,
            key=out.key,
            message_id=message_id,
            body_size=len(out.value),
        )
        | {"i247.hub": hub},
    )
    span.end()
    return _with_context(out, trace.set_span_in_context(span))


def _with_context(out: OutboundRecord, context: Context) -> OutboundRecord:
    return OutboundRecord(out.topic, out.key, out.value, inject_context(out.headers, context))


def _identity(headers: Iterable[tuple[str, bytes]]) -> tuple[bytes | None, bytes | None]:
    """A record's message id (``ce_id``) and trace id (from its ``traceparent``)."""
    message_id = header_value(headers, CE_ID)
    parent = header_value(headers, TRACEPARENT)
    return message_id, parent[3:35] if parent is not None else None


def _same_message(out: OutboundRecord, message_id: bytes | None, trace_id: bytes | None) -> bool:
    """Whether ``out`` carries the input's message on: a copy (same ``ce_id``) or a record
    of the same trace (a vehicle desk's circulation); a desk's reply is a message of its
    own, with a trace of its own, and keeps it."""
    theirs = _identity(out.headers)
    return theirs[0] == message_id or (trace_id is not None and theirs[1] == trace_id)


def _traced(
    handler: RecordHandler,
    tracer: Tracer,
    *,
    hub: str,
    unit: str,
    next_hop: Callable[[str], bool],
    deadletter: str,
) -> RecordHandler:
    """``handler`` inside a process span; outputs that carry the message on to its next hop
    (``next_hop`` of their topic) get create spans; receipt batches never do."""

    def carries_on(out: OutboundRecord, ours: tuple[bytes | None, bytes | None]) -> bool:
        if not next_hop(out.topic) or is_receipt_batch(out.headers):
            return False
        return _same_message(out, *ours)

    async def traced(record: ReceivedRecord, epoch: int) -> list[OutboundRecord]:
        parent = extract_context(record.headers)
        if _unsampled(parent):  # nobody records this trace: its records go on as they are
            return await handler(record, epoch)
        span = _process_span(tracer, record, parent, hub, unit, epoch)
        with trace.use_span(span, end_on_exit=True):
            outputs = await handler(record, epoch)
            ours = _identity(record.headers)
            if not span.is_recording():  # sampled out here: tell the next hops (flags 00)
                context = trace.set_span_in_context(span)
                return [
                    _with_context(out, context) if carries_on(out, ours) else out for out in outputs
                ]
            made: list[OutboundRecord] = []
            for out in outputs:
                if carries_on(out, ours):
                    made.append(_created(tracer, span, out, hub))
                    continue
                reason = header_value(out.headers, _REASON) if out.topic == deadletter else None
                if reason is not None:
                    record_refusal(span, reason.decode("utf-8", errors="replace"))
                made.append(out)
            span.set_attribute("i247.outputs", len(made))
            return made

    return traced


def traced_intake(
    handler: RecordHandler, tracer: Tracer | None, *, hub: str, topics: TopicCatalog
) -> RecordHandler:
    """Intake's handler with spans (``tracer``), or itself when the hub does not trace."""
    if tracer is None:
        return handler
    lanes = frozenset(topics.lanes())
    return _traced(
        handler,
        tracer,
        hub=hub,
        unit="intake",
        next_hop=lanes.__contains__,
        deadletter=topics.deadletter,
    )


def traced_lane(
    handler: RecordHandler, tracer: Tracer | None, *, hub: str, unit: str, topics: TopicCatalog
) -> RecordHandler:
    """A lane's delivery handler with spans, or itself when the hub does not trace; the
    inbox copies of the message it delivers continue the trace."""
    if tracer is None:
        return handler
    inboxes = (f"{topics.prefix}.ncb.", f"{topics.prefix}.team.")
    return _traced(
        handler,
        tracer,
        hub=hub,
        unit=unit,
        next_hop=lambda topic: topic.startswith(inboxes),
        deadletter=topics.deadletter,
    )
