"""OpenTelemetry traces of the backbone's records: set-up, W3C context in Kafka headers,
and the messaging semantic conventions' attributes.

Every sealed record carries a W3C ``traceparent`` header (docs/wire-format.md §7). A
process that traces reads it as the parent of the span in which it handles the record
and writes its own span's context into the records it makes, so one message's journey
(send → intake → lane → inbox → open) is one trace, whichever hub handles each hop: the
context travels in the records, so a successor after a failover continues it.

``I247_TRACES`` picks the exporter: ``off`` (the default: no tracer at all, so the cost
is a ``None`` check per record), ``console`` (one JSON span per line on stdout) or
``otlp`` (OTLP/HTTP to ``OTEL_EXPORTER_OTLP_ENDPOINT``, the ``otlp`` extra). Sampling is
``ParentBased`` on ``TraceIdRatioBased(I247_TRACE_SAMPLE)``, the ratio applied to remote
parents too: it decides by trace id, so every process with the same ratio keeps the same
traces whole, even behind senders that do not trace but mark every record sampled.
``OTEL_TRACES_SAMPLER``, when set, replaces it (the SDK reads it).

Tracers are passed explicitly (never the global provider), so tests give a process an
in-memory exporter and two tracing processes in one interpreter stay apart.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TextIO

from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from brokers.settings import Settings

__all__ = [
    "INSTRUMENTATION",
    "Operation",
    "Tracing",
    "TracingNotInstalled",
    "destination_template",
    "extract_context",
    "inject_context",
    "messaging_attributes",
    "record_refusal",
    "sampler_for",
    "span_kind",
    "span_name",
    "start_tracing",
]

INSTRUMENTATION = "i247"
Operation = Literal["send", "create", "receive", "process"]
"""``messaging.operation.type`` values the backbone uses (semantic conventions 1.27+)."""

_KINDS: dict[str, SpanKind] = {
    "send": SpanKind.PRODUCER,
    "create": SpanKind.PRODUCER,
    "receive": SpanKind.CONSUMER,
    "process": SpanKind.CONSUMER,
}
_PROPAGATOR = TraceContextTextMapPropagator()
_TRACE_HEADERS = frozenset(_PROPAGATOR.fields)  # traceparent, tracestate


class TracingNotInstalled(RuntimeError):
    """``I247_TRACES=otlp`` without the OTLP exporter: install the ``otlp`` extra."""


class _HeaderGetter(Getter[Sequence[tuple[str, bytes]]]):
    """Reads W3C fields from Kafka headers, the last value of a name winning (as Kafka's
    ``lastHeader``, and as ``brokers.record_headers`` reads)."""

    def get(self, carrier: Sequence[tuple[str, bytes]], key: str) -> list[str] | None:
        found = None
        for name, value in carrier:
            if name == key:
                found = value
        return None if found is None else [found.decode("ascii", errors="replace")]

    def keys(self, carrier: Sequence[tuple[str, bytes]]) -> list[str]:
        return [name for name, _ in carrier]


class _FieldCollector(Setter[dict[str, str]]):
    def set(self, carrier: dict[str, str], key: str, value: str) -> None:
        carrier[key] = value


_GETTER = _HeaderGetter()
_SETTER = _FieldCollector()


def extract_context(headers: Iterable[tuple[str, bytes]]) -> Context | None:
    """The remote parent a record's ``traceparent`` names, or None when it names none (or a
    malformed one: the span then starts a trace of its own, and intake judges the record)."""
    carrier = list(headers)
    context = _PROPAGATOR.extract(carrier, getter=_GETTER)
    return context if context else None


def inject_context(
    headers: Iterable[tuple[str, bytes]], context: Context
) -> tuple[tuple[str, bytes], ...]:
    """``headers`` with ``traceparent`` (and ``tracestate``) now naming ``context``'s span:
    replaced where they stood, so the other headers keep their order; appended if absent."""
    fields: dict[str, str] = {}
    _PROPAGATOR.inject(fields, context=context, setter=_SETTER)
    if not fields:  # an invalid span (not recording): leave the record as it was
        return tuple(headers)
    out: list[tuple[str, bytes]] = []
    for name, value in headers:
        if name in _TRACE_HEADERS:
            if name in fields:
                out.append((name, fields.pop(name).encode()))
            continue  # a stale tracestate, or a repeated name: the new context alone
        out.append((name, value))
    out.extend((name, value.encode()) for name, value in fields.items())
    return tuple(out)


_INBOX_TEMPLATES = ((".ncb.", ".inbox", "{participant}"), (".team.", ".inbox", "{team}"))


def destination_template(topic: str) -> str | None:
    """The low-cardinality name of a per-participant topic (``i247.ncb.{participant}.inbox``),
    or None for a topic whose own name is low-cardinality (inbound, lanes)."""
    for middle, end, placeholder in _INBOX_TEMPLATES:
        head, found, rest = topic.partition(middle)
        if found and rest.endswith(end) and "." not in rest.removesuffix(end):
            return f"{head}{middle}{placeholder}{end}"
    return None


def span_name(operation: Operation, topic: str) -> str:
    """``{operation} {destination}``, with the template for per-participant topics, as the
    semantic conventions ask (span names of bounded cardinality)."""
    return f"{operation} {destination_template(topic) or topic}"


def span_kind(operation: Operation) -> SpanKind:
    """PRODUCER for send and create, CONSUMER for receive and process."""
    return _KINDS[operation]


def messaging_attributes(
    operation: Operation,
    topic: str,
    *,
    partition: int | None = None,
    offset: int | None = None,
    key: bytes | None = None,
    message_id: str | None = None,
    body_size: int | None = None,
) -> dict[str, str | int]:
    """The messaging semantic conventions' attributes of one Kafka operation on ``topic``."""
    attributes: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
        "messaging.destination.name": topic,
    }
    template = destination_template(topic)
    if template is not None:
        attributes["messaging.destination.template"] = template
    if partition is not None:
        attributes["messaging.destination.partition.id"] = str(partition)
    if offset is not None:
        attributes["messaging.kafka.offset"] = offset
    if key is not None:
        attributes["messaging.kafka.message.key"] = key.decode("utf-8", errors="replace")
    if message_id:
        attributes["messaging.message.id"] = message_id
    if body_size is not None:
        attributes["messaging.message.body.size"] = body_size
    return attributes


def sampler_for(share: float, environ: Mapping[str, str] | None = None) -> Sampler | None:
    """``ParentBased`` on ``TraceIdRatioBased(share)`` for roots and remote parents alike;
    None when ``OTEL_TRACES_SAMPLER`` is set, so the SDK builds the one it names."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_TRACES_SAMPLER", "").strip():
        return None
    ratio = TraceIdRatioBased(share)
    return ParentBased(ratio, remote_parent_sampled=ratio)


def _one_line(span: ReadableSpan) -> str:
    return str(span.to_json(indent=None)) + "\n"


def _exporter(kind: str, out: TextIO) -> SpanExporter:
    if kind == "console":
        return ConsoleSpanExporter(out=out, formatter=_one_line)
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise TracingNotInstalled(
            "I247_TRACES=otlp needs the OTLP exporter: pip install 'i247-backbone[otlp]' "
            "(or set I247_TRACES=console)"
        ) from None
    return OTLPSpanExporter()  # endpoint, headers, timeout: OTEL_EXPORTER_OTLP_*


@dataclass(frozen=True, slots=True)
class Tracing:
    """A process's tracer (None when tracing is off) and the provider to flush at exit."""

    tracer: Tracer | None = None
    provider: TracerProvider | None = None

    @property
    def on(self) -> bool:
        return self.tracer is not None

    def shutdown(self) -> None:
        """Export what is buffered and stop (a process killed with SIGKILL loses that)."""
        if self.provider is not None:
            self.provider.shutdown()


def start_tracing(
    settings: Settings,
    service: str,
    *,
    exporter: SpanExporter | None = None,
    out: TextIO | None = None,
) -> Tracing:
    """Tracing for one process named ``service`` (``service.name``), from ``I247_TRACES``.

    ``exporter`` (tests: an ``InMemorySpanExporter``) overrides the setting and exports
    each span as it ends; the configured exporters batch (``OTEL_BSP_*`` tune it).
    """
    if exporter is None and settings.traces == "off":
        return Tracing()
    resource = Resource.create({"service.name": service, "service.namespace": "i247"})
    provider = TracerProvider(resource=resource, sampler=sampler_for(settings.trace_sample))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        provider.add_span_processor(
            BatchSpanProcessor(_exporter(settings.traces, out or sys.stdout))
        )
    return Tracing(provider.get_tracer(INSTRUMENTATION), provider)


def record_refusal(span: Span, reason: str) -> None:
    """Mark a process span whose record was refused (dead-lettered) with the reason."""
    span.set_attribute("error.type", reason)
    span.set_status(Status(StatusCode.ERROR, reason))
