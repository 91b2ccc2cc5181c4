"""Operators' replay: select recorded traffic, open what the operator may read, and show it,
write it as JSON Lines, or re-publish it to a replay topic.

Theory of operation: ``replay`` takes records from any source, in the source's order
(the Kafka-by-time reader in ``brokers.replay_source``, the audit archive, a list in a
test), keeps those the ``ReplayFilter`` selects, and hands each to an output at the
``Pace`` asked for. With an ``Opener`` (``--as FRA``) each sealed envelope for which that
participant holds a wrapped key (it sent it, or was among its recipients) is opened:
France sees its own traffic in clear and everyone else's headers only. The auditor holds
a key only for what was addressed to the CCC.

Outputs:

* ``TableOutput``: a rich table on the terminal;
* ``JsonLinesOutput``: one JSON object per record (``to_json_line``; the exact inverse for
  the record is ``record_from_json_line``). The value is always base64; the key and each
  header value are ``{"text": ...}`` when they are printable UTF-8, else
  ``{"base64": ...}``; headers are a list, in order, since Kafka lets a name repeat;
* ``TopicOutput``: re-publishes to ``<prefix>.replay.<name>`` (one partition, sequential, so
  every key keeps its order), appending ``i247.replay.*`` headers (original topic,
  partition, offset, timestamp, replay name). No processor consumes replay topics, so
  replayed traffic is never taken for live traffic.

Worked example (an in-memory source, JSON Lines to a string)::

    out = io.StringIO()
    summary = await replay(records, ReplayFilter(senders=frozenset({"FRA"})),
                           JsonLinesOutput(out))
    summary.selected  # how many lines were written
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO

import structlog
from aiokafka import AIOKafkaProducer
from rich.console import Console
from rich.table import Table

from agents.ops.replay_filter import (
    READ_LIMIT_BYTES,
    ReplayFilter,
    envelope_of,
    matches_header,
    matches_position,
)
from agents.ops.replay_pacing import Pace, Pacer
from brokers.record_headers import (
    DLQ_PREFIX,
    BadHeader,
    ReplayMark,
    is_receipt_batch,
    read_replay_mark,
    replay_headers,
)
from brokers.records import ReceivedRecord
from schemas import header_names as names
from schemas.bodies import BODY_ADAPTER, Body
from schemas.errors import RejectedMessage
from schemas.header import RoutingHeader, format_timestamp
from schemas.keys import Directory, PrivateIdentity
from schemas.receipts import listed_receipts
from schemas.sealing import SealedMessage, open_sealed

__all__ = [
    "AS_FAST_AS_POSSIBLE",
    "JsonLinesOutput",
    "Opener",
    "ReplayOutput",
    "ReplaySummary",
    "ReplayedRecord",
    "TableOutput",
    "TopicOutput",
    "record_from_json_line",
    "replay",
    "sealed_for",
    "to_json_line",
]

log = structlog.get_logger("i247.replay")

Records = Iterable[ReceivedRecord] | AsyncIterable[ReceivedRecord]
AS_FAST_AS_POSSIBLE = Pace(None)


@dataclass(frozen=True, slots=True)
class ReplayedRecord:
    """A selected record with what could be read of it.

    ``opening`` is None without an opener; else ``opened``, ``headers only`` (the reader
    holds no key) or ``refused: <why>`` (the envelope does not verify or decrypt).
    """

    record: ReceivedRecord
    header: RoutingHeader | None
    body: Body | None = None
    opening: str | None = None


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    read: int
    selected: int
    opened: int


def sealed_for(record: ReceivedRecord) -> tuple[str, bytes]:
    """The topic and key the sender sealed the record for, which opening must name.

    A hub's delivery says so in ``i247-sealed-topic``/``i247-sealed-key``; a dead letter
    names where it was refused in ``i247.dlq.topic``; a replayed record names its original
    topic in its replay mark; otherwise the record lies where it was sealed for.
    """
    sealed_topic = record.header(names.SEALED_TOPIC)
    if sealed_topic is not None:
        return sealed_topic.decode(errors="replace"), record.header(names.SEALED_KEY) or b""
    refused_on = record.header(DLQ_PREFIX + "topic")
    if refused_on is not None:
        return refused_on.decode(errors="replace"), record.key or b""
    try:
        mark = read_replay_mark(record.headers)
    except BadHeader:
        mark = None
    return (mark.topic if mark else record.topic), record.key or b""


@dataclass(frozen=True, slots=True)
class Opener:
    """Opens envelopes with one participant's keys (``--as FRA``)."""

    identity: PrivateIdentity
    directory: Directory

    def open(self, record: ReceivedRecord, sealed: SealedMessage) -> tuple[Body | None, str]:
        """The body and ``opened``, or None and why not."""
        if not any(holder == self.identity.participant for holder, _, _ in sealed.wraps):
            return None, "headers only"
        topic, key = sealed_for(record)
        try:
            opened = open_sealed(
                sealed, topic=topic, key=key, directory=self.directory, identity=self.identity
            )
        except RejectedMessage as refusal:
            return None, f"refused: {refusal}"
        return opened.body, "opened"


# --- JSON Lines ----------------------------------------------------------------------


def _bytes_json(data: bytes) -> dict[str, str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}
    if text.isprintable():
        return {"text": text}
    return {"base64": base64.b64encode(data).decode("ascii")}


def _json_bytes(value: Any, what: str) -> bytes:
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        return str(value["text"]).encode("utf-8")
    if isinstance(value, dict) and isinstance(value.get("base64"), str):
        try:
            return base64.b64decode(value["base64"], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{what}: base64 is not valid") from None
    raise ValueError(f"{what}: expected {{'text': ...}} or {{'base64': ...}}, not {value!r}")


def to_json_line(item: ReplayedRecord) -> dict[str, Any]:
    """One JSON Lines object: where the record was, its bytes, and what could be read."""
    record = item.record
    moment = datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp_ms": record.timestamp_ms,
        "timestamp": format_timestamp(moment),
        "key": None if record.key is None else _bytes_json(record.key),
        "headers": [{"name": name, **_bytes_json(value)} for name, value in record.headers],
        "value_base64": base64.b64encode(record.value).decode("ascii"),
        "routing": None if item.header is None else item.header.model_dump(mode="json"),
        "opening": item.opening,
        "body": None if item.body is None else BODY_ADAPTER.dump_python(item.body, mode="json"),
    }


def record_from_json_line(line: dict[str, Any]) -> ReceivedRecord:
    """The record a ``to_json_line`` object was made from; ``ValueError`` if it is not one."""
    try:
        return ReceivedRecord(
            topic=str(line["topic"]),
            partition=int(line["partition"]),
            offset=int(line["offset"]),
            timestamp_ms=int(line["timestamp_ms"]),
            key=None if line["key"] is None else _json_bytes(line["key"], "key"),
            value=base64.b64decode(line["value_base64"], validate=True),
            headers=tuple(
                (str(h["name"]), _json_bytes(h, f"header {h.get('name')!r}"))
                for h in line["headers"]
            ),
        )
    except (KeyError, TypeError, binascii.Error) as exc:
        raise ValueError(f"not a replay JSON line: {exc!r}") from None


# --- outputs -------------------------------------------------------------------------


class ReplayOutput(Protocol):
    """Where selected records go, one at a time, then ``close`` once."""

    async def write(self, item: ReplayedRecord) -> None: ...

    async def close(self) -> None: ...


@dataclass
class JsonLinesOutput:
    stream: TextIO

    async def write(self, item: ReplayedRecord) -> None:
        self.stream.write(json.dumps(to_json_line(item), separators=(",", ":")) + "\n")

    async def close(self) -> None:
        self.stream.flush()


def _summary(item: ReplayedRecord) -> str:
    """A short description of what is inside, or of what a non-envelope record is."""
    if item.body is not None:
        fields = BODY_ADAPTER.dump_python(item.body, mode="json")
        text = fields.get("subject") or fields.get("text") or json.dumps(fields)[:80]
        return str(text)[:80]
    if item.header is not None:
        return item.opening or "sealed"
    reason = item.record.header(names.DLQ_PREFIX + "reason")
    if reason is not None:
        return f"dead letter: {reason.decode(errors='replace')}"
    if is_receipt_batch(item.record.headers):  # clear, signed by a hub (wire format §10)
        return f"receipt batch: {listed_receipts(item.record.value)} delivery receipt(s)"
    preview = _bytes_json(item.record.value[:80])
    return preview.get("text", f"{len(item.record.value)} bytes")


class TableOutput:
    """A rich table, printed when the replay ends."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.table = Table(title="replay", expand=False)
        for column in ("time (UTC)", "topic/part/offset", "type", "prec", "from → to", "content"):
            self.table.add_column(column, overflow="fold")

    async def write(self, item: ReplayedRecord) -> None:
        record, header = item.record, item.header
        moment = datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
        self.table.add_row(
            moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            record.origin,
            header.message_type.value if header else "-",
            header.precedence.value if header else "-",
            f"{header.sender} → {', '.join(header.recipients)}" if header else "-",
            _summary(item),
        )

    async def close(self) -> None:
        self.console.print(self.table)


class TopicOutput:
    """Re-publishes to one replay topic, partition 0, marking every record as a replay."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, name: str, window: int = 500):
        self.producer = producer
        self.topic = topic
        self.name = name
        self.window = window
        self._pending: list[Awaitable[Any]] = []

    async def write(self, item: ReplayedRecord) -> None:
        record = item.record
        mark = ReplayMark(
            name=self.name,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp_ms,
        )
        self._pending.append(
            await self.producer.send(
                self.topic,
                record.value,
                key=record.key,
                partition=0,
                headers=[*record.headers, *replay_headers(mark)],
            )
        )
        if len(self._pending) >= self.window:
            await self._drain()

    async def _drain(self) -> None:
        pending, self._pending = self._pending, []
        await asyncio.gather(*pending)

    async def close(self) -> None:
        await self._drain()


# --- the replay loop -----------------------------------------------------------------


async def _each(records: Records) -> AsyncGenerator[ReceivedRecord, None]:
    """Records from either kind of source; an async source is closed when replay stops."""
    if isinstance(records, AsyncIterable):
        try:
            async for record in records:
                yield record
        finally:
            close = getattr(records, "aclose", None)
            if close is not None:
                await close()
    else:
        for record in records:
            yield record


def _select(
    record: ReceivedRecord, flt: ReplayFilter, opener: Opener | None, max_bytes: int
) -> ReplayedRecord | None:
    if not matches_position(record, flt):
        return None
    sealed = envelope_of(record, max_bytes=max_bytes)
    header = sealed.header if sealed else None
    if not matches_header(header, flt):
        return None
    if opener is None or sealed is None:
        return ReplayedRecord(record, header)
    body, opening = opener.open(record, sealed)
    return ReplayedRecord(record, header, body, opening)


async def replay(
    records: Records,
    flt: ReplayFilter,
    output: ReplayOutput,
    *,
    opener: Opener | None = None,
    pace: Pace = AS_FAST_AS_POSSIBLE,
    limit: int | None = None,
    on_progress: Callable[[ReplaySummary], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    max_bytes: int = READ_LIMIT_BYTES,
) -> ReplaySummary:
    """Send every record ``flt`` selects to ``output`` at ``pace``; stop after ``limit``.

    The output is closed (flushed, printed) even when the source fails midway.
    """
    pacer = Pacer(pace)
    started: float | None = None
    read = selected = opened = 0
    stream = _each(records)
    try:
        async with contextlib.aclosing(stream):
            async for record in stream:
                read += 1
                item = _select(record, flt, opener, max_bytes)
                if item is not None:
                    due = pacer.due(record.timestamp_ms)
                    started = clock() if started is None else started
                    wait = started + due - clock()
                    if wait > 0:
                        await sleep(wait)
                    await output.write(item)
                    selected += 1
                    opened += item.body is not None
                if on_progress is not None:
                    on_progress(ReplaySummary(read, selected, opened))
                if limit is not None and selected >= limit:
                    break
    finally:
        await output.close()
    log.info("replay-finished", read=read, selected=selected, opened=opened, pace=str(pace))
    return ReplaySummary(read, selected, opened)
