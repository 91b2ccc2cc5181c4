"""One message, one trace: a tracing client, real hub processes, the real broker.

The bureaus' clients run in this process and export to an in-memory exporter; the hubs
are their own processes with ``I247_TRACES=console``, so their spans are JSON lines in
their output files, read back here. The trace is followed by ids alone: each span's
parent must be the span before it, whichever process made it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import format_span_id, format_trace_id

from agents.ncb.client import InboxMessage, NcbClient
from brokers.settings import Settings
from brokers.tracing import Tracing, start_tracing
from schemas.bodies import MessageBody
from schemas.keys import Directory, PrivateIdentity
from schemas.participants import HUB_SITES
from streams.core.roster import DutyRoster
from tests.integration.harness import Backbone, now, running

pytestmark = pytest.mark.integration

GUARD = 90.0  # seconds: a hang fails the test instead of stalling the suite
TTL_MS = 2000
TRACED = {"I247_TRACES": "console", "OTEL_BSP_SCHEDULE_DELAY": "100"}
BODY = MessageBody(subject="Stolen passport", text="Document number X0000001")


@dataclass(frozen=True)
class SpanSeen:
    """One span, from whichever process: what a trace's order is checked on."""

    name: str
    trace_id: str
    span_id: str
    parent_id: str | None
    service: str
    attributes: dict[str, Any]


@pytest.fixture
def clients_tracing() -> Iterator[tuple[Tracing, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    tracing = start_tracing(Settings(), "i247-clients", exporter=exporter)
    yield tracing, exporter
    tracing.shutdown()


def in_memory(exporter: InMemorySpanExporter) -> list[SpanSeen]:
    seen = []
    for span in exporter.get_finished_spans():
        context = span.get_span_context()
        assert context is not None
        seen.append(
            SpanSeen(
                span.name,
                format_trace_id(context.trace_id),
                format_span_id(context.span_id),
                format_span_id(span.parent.span_id) if span.parent else None,
                str(span.resource.attributes["service.name"]),
                dict(span.attributes or {}),
            )
        )
    return seen


def console(path: Path) -> list[SpanSeen]:
    """The spans a hub wrote to its output (one JSON object a line; other lines skipped)."""
    seen: list[SpanSeen] = []
    if not path.exists():
        return seen
    for line in path.read_text(errors="replace").splitlines():
        try:
            span = json.loads(line)
        except ValueError:
            continue
        if not isinstance(span, dict) or "context" not in span:
            continue
        seen.append(
            SpanSeen(
                span["name"],
                span["context"]["trace_id"].removeprefix("0x"),
                span["context"]["span_id"].removeprefix("0x"),
                (span.get("parent_id") or "").removeprefix("0x") or None,
                span["resource"]["attributes"]["service.name"],
                span.get("attributes") or {},
            )
        )
    return seen


HUB_CHAIN = ("process {inbound}", "create {lane}", "process {lane}", "create {inbox}")


async def hub_spans(path: Path, trace_id: str, want: int = len(HUB_CHAIN)) -> list[SpanSeen]:
    """The hub's spans of ``trace_id`` once it has exported ``want`` of them (it batches)."""
    deadline = time.monotonic() + GUARD
    while time.monotonic() < deadline:
        spans = [s for s in console(path) if s.trace_id == trace_id]
        if len(spans) >= want:
            return spans
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the hub exported {len(spans)} of {want} spans of {trace_id}: see {path}")


def in_parent_order(spans: list[SpanSeen]) -> list[SpanSeen]:
    """The spans as one chain from its root, each the parent of the next (or fail)."""
    children = {s.parent_id: s for s in spans}
    assert len(children) == len(spans), f"not one chain: {[(s.name, s.parent_id) for s in spans]}"
    roots = [s for s in spans if s.parent_id not in {t.span_id for t in spans}]
    assert len(roots) == 1, f"not one root: {[s.name for s in roots]}"
    chain = [roots[0]]
    while chain[-1].span_id in children:
        chain.append(children[chain[-1].span_id])
    assert len(chain) == len(spans), "a span is not on the chain"
    return chain


async def send_and_open(settings: Settings, tracing: Tracing) -> tuple[str, InboxMessage]:
    """FRA sends DEU one message; DEU opens and acknowledges it; both clients trace with
    ``tracing``."""
    async with (
        NcbClient("FRA", None, settings, tracing=tracing) as fra,
        NcbClient("DEU", None, settings, tracing=tracing) as deu,
    ):
        message_id = await fra.send(["DEU"], BODY)
        async with asyncio.timeout(GUARD):
            async for item in deu.inbox(follow=True):
                if isinstance(item, InboxMessage) and item.message_id == message_id:
                    await deu.ack(item)
                    return message_id, item
    raise AssertionError("the inbox ended before the message came")


def expected_chain(bb: Backbone, site: str) -> list[str]:
    topics = bb.settings.topics
    names = {
        "inbound": topics.inbound,
        "lane": f"{topics.prefix}.hub.{site}.routine",
        "inbox": f"{topics.prefix}.ncb.{{participant}}.inbox",
    }
    return [
        f"send {topics.inbound}",
        *(step.format(**names) for step in HUB_CHAIN),
        f"process {topics.prefix}.ncb.{{participant}}.inbox",
    ]


@pytest.fixture
async def traced_hub(
    settings: Settings,
    keys_dir: Path,
    keyring: tuple[Directory, dict[str, PrivateIdentity]],
    tmp_path: Path,
) -> AsyncIterator[Backbone]:
    async with running(settings, keys_dir, keyring, tmp_path, start_hub=False) as bb:
        bb.start_hub("lyon", **TRACED)
        await bb.wait_ready("lyon")
        yield bb


async def test_a_message_is_one_trace_from_send_through_the_hub_to_open(
    traced_hub: Backbone, clients_tracing: tuple[Tracing, InMemorySpanExporter]
) -> None:
    bb = traced_hub
    tracing, exporter = clients_tracing
    message_id, opened = await send_and_open(bb.settings, tracing)
    trace_id = opened.header.trace_id  # signed into the message by its sender
    hub = await hub_spans(bb.log_dir / "hub-lyon.out", trace_id)
    clients = [s for s in in_memory(exporter) if s.trace_id == trace_id]
    chain = in_parent_order(hub + clients)
    assert [s.name for s in chain] == expected_chain(bb, "lyon")
    assert [s.service for s in chain] == ["i247-clients", *["i247-hub-lyon"] * 4, "i247-clients"]
    send, intake, lane, routed, delivered, read = chain
    assert send.attributes["messaging.message.id"] == message_id
    assert intake.attributes["messaging.message.id"] == message_id
    assert intake.attributes["messaging.system"] == "kafka"
    assert lane.attributes["messaging.operation.type"] == "create"
    assert intake.attributes["messaging.operation.type"] == "process"
    assert routed.attributes["messaging.operation.type"] == "process"
    assert delivered.attributes["messaging.destination.name"] == bb.settings.topics.inbox("DEU")
    assert read.attributes["messaging.kafka.offset"] == opened.offset
    assert read.attributes["i247.outcome"] == "message"
    [ack] = [
        s
        for s in in_memory(exporter)
        if s.attributes.get("messaging.message.conversation_id") == message_id
    ]
    assert ack.name == f"send {bb.settings.topics.inbound}"
    assert ack.trace_id != trace_id  # an acknowledgement is a message of its own
    assert ack.parent_id is None


async def test_after_a_sigkill_the_successor_routes_the_message_in_the_sender_s_trace(
    settings: Settings,
    keys_dir: Path,
    keyring: tuple[Directory, dict[str, PrivateIdentity]],
    tmp_path: Path,
    clients_tracing: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = clients_tracing
    async with running(
        settings,
        keys_dir,
        keyring,
        tmp_path,
        start_hub=False,
        lease_ttl_ms=TTL_MS,
        shift_seconds=3600.0,
    ) as bb:
        for site in HUB_SITES:
            bb.start_hub(site, **TRACED)
        for site in HUB_SITES:
            await bb.wait_ready(site)
        victim = DutyRoster(shift_seconds=3600.0).hub_on_duty(now())
        successor = DutyRoster.successor(victim)
        epoch = (await bb.lease_book()).lease("intake").epoch
        bb.kill_hub(victim)  # SIGKILL, holding intake: its lease runs out, nobody releases it
        message_id, opened = await send_and_open(bb.settings, tracing)
        trace_id = opened.header.trace_id
        hub = await hub_spans(bb.log_dir / f"hub-{successor}.out", trace_id)
    clients = [s for s in in_memory(exporter) if s.trace_id == trace_id]
    chain = in_parent_order(hub + clients)
    assert [s.name for s in chain] == expected_chain(bb, successor)
    intake = chain[1]
    assert intake.service == f"i247-hub-{successor}"
    assert intake.attributes["i247.lease.epoch"] > epoch  # a term the successor claimed
    assert opened.hub == f"hub:{successor}"
    assert chain[0].attributes["messaging.message.id"] == message_id
