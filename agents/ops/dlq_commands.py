"""``i247 dlq list|show|redrive``: the dead-letter topic for an operator.

    i247 dlq list --reason stale --limit 20     # newest 20 stale dead letters
    i247 dlq show 41                            # headers and a hex preview of offset 41
    i247 dlq redrive 41 --yes                   # send it back to intake, marked, journaled

Offsets are the dead-letter topic's (one partition). A redrive re-sends the refused
record's bytes, key and own headers to the inbound topic with ``i247.redriven-from``, and
writes ``dlq-redriven`` on the control topic (docs/wire-format.md §13-§14). Pure parts:
``agents.ops.dlq``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import uuid
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from agents.ops.dlq import DeadLetterRow, preview, redriven_event, redriven_record, rows
from agents.ops.topic_reader import read_to_end
from brokers.clients import make_producer
from brokers.records import OutboundRecord, ReceivedRecord
from brokers.settings import Settings
from schemas.errors import RejectReason

__all__ = ["DeadLetterNotFound", "register_dlq_commands"]

_ENVIRONMENT = "reads I247_BOOTSTRAP (required), I247_TOPIC_PREFIX"


class DeadLetterNotFound(LookupError):
    """No dead letter at the offset asked for; the message says which offsets exist."""


def register_dlq_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``dlq list|show|redrive`` to the ``i247`` subcommands."""
    dlq = commands.add_parser(
        "dlq",
        help="list, inspect and re-drive dead letters",
        description=f"The dead-letter topic: list, show, redrive. {_ENVIRONMENT}.",
    )
    actions = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list", help="one row per dead letter: offset, time, reason, detail, origin, message id"
    )
    listing.add_argument(
        "--reason",
        choices=[r.value for r in RejectReason],
        metavar="R",
        help="only this reason (all): " + ", ".join(r.value for r in RejectReason),
    )
    listing.add_argument("--limit", type=_count, default=0, help="only the newest N (0: all)")
    listing.add_argument("--json", action="store_true", help="JSON Lines instead of a table (off)")
    listing.set_defaults(handler=list_command)
    show = actions.add_parser("show", help="a dead letter's headers and a preview of its value")
    show.add_argument("offset", type=int, help="its offset in the dead-letter topic")
    show.set_defaults(handler=show_command)
    redrive = actions.add_parser(
        "redrive", help="re-send a dead letter to intake, marked i247.redriven-from; journaled"
    )
    redrive.add_argument("offset", type=int, help="its offset in the dead-letter topic")
    redrive.add_argument(
        "--yes", action="store_true", help="do it (off: say what would be sent, send nothing)"
    )
    redrive.set_defaults(handler=redrive_command)


def _count(text: str) -> int:
    """An argparse type: a whole number, 0 or more."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (0 or more)")
    return int(text)


def _dead_letters(settings: Settings) -> list[ReceivedRecord]:
    records, _ = asyncio.run(read_to_end(settings, [settings.topics.deadletter]))
    return records


def _find(settings: Settings, offset: int) -> ReceivedRecord:
    records = _dead_letters(settings)
    for record in records:
        if record.offset == offset:
            return record
    held = f"offsets {records[0].offset}-{records[-1].offset}" if records else "none"
    raise DeadLetterNotFound(
        f"no dead letter at offset {offset} of {settings.topics.deadletter} ({held}); "
        "see `i247 dlq list`"
    )


def list_command(args: argparse.Namespace, settings: Settings) -> int:
    found = rows(_dead_letters(settings), reason=args.reason, limit=args.limit)
    if args.json:
        for row in found:
            print(json.dumps(row.as_json()))
        return 0
    table = Table(title=f"{settings.topics.deadletter}: {len(found)} dead letters")
    for column in ("offset", "time", "reason", "detail", "from", "message id", "redriven from"):
        table.add_column(column, overflow="fold")
    for row in found:
        table.add_row(*_cells(row))
    Console().print(table)
    return 0


def _cells(row: DeadLetterRow) -> list[str]:
    origin = f"{row.topic}/{row.partition}/{row.original_offset}" if row.topic else "?"
    redriven = "" if row.redriven_from is None else str(row.redriven_from)
    return [
        str(row.offset),
        row.time,
        row.reason,
        row.detail[:120],
        origin,
        row.message_id or "",
        redriven,
    ]


def show_command(args: argparse.Namespace, settings: Settings) -> int:
    record = _find(settings, args.offset)
    print(
        f"{record.topic}/{record.partition}/{record.offset}  time {DeadLetterRow.of(record).time}"
    )
    print(f"key: {record.key!r}")
    print("headers:")
    for name, value in record.headers:
        print(f"  {name}: {value.decode('utf-8', 'replace')}")
    print(f"value: {len(record.value)} bytes")
    for line in preview(record.value):
        print(f"  {line}")
    return 0


def redrive_command(args: argparse.Namespace, settings: Settings) -> int:
    record = _find(settings, args.offset)
    outbound = redriven_record(record, settings.topics.inbound)
    row = DeadLetterRow.of(record)
    if not args.yes:
        print(
            f"would re-send dead letter {record.offset} ({row.reason}, message "
            f"{row.message_id}) to {outbound.topic}; rerun with --yes to send it"
        )
        return 0
    partition, offset = asyncio.run(_redrive(settings, record, outbound))
    print(
        f"re-sent dead letter {record.offset} ({row.reason}) to "
        f"{outbound.topic}/{partition}/{offset}; journaled dlq-redriven"
    )
    return 0


async def _redrive(
    settings: Settings, record: ReceivedRecord, outbound: OutboundRecord
) -> tuple[int, int]:
    producer = make_producer(settings)
    await producer.start()
    try:
        sent = await producer.send_and_wait(
            outbound.topic, outbound.value, key=outbound.key, headers=list(outbound.headers)
        )
        event = redriven_event(
            record,
            (sent.partition, sent.offset),
            control=settings.topics.control,
            by=_operator(),
            now=datetime.now(UTC),
            event_id=str(uuid.uuid4()),
        )
        await producer.send_and_wait(
            event.topic, event.value, key=event.key, headers=list(event.headers)
        )
    finally:
        await producer.stop()
    return sent.partition, sent.offset


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
