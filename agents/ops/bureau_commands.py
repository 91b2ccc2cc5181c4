"""``i247 send`` and ``i247 inbox``: one bureau's traffic by hand, through ``NcbClient``.

    i247 send --as FRA --to DEU --text "Vehicle seized at the border"     # prints the id
    i247 send --as FRA --to DEU --to ITA --type diffusion --body-file alert.json
    i247 inbox --as DEU                  # what DEU opened since its last run, as a table
    i247 inbox --as DEU --follow --ack --json    # keep reading, acknowledge, JSON Lines

Both need a running backbone (``I247_BOOTSTRAP``) and the keyring (``I247_KEYS_DIR``).
``inbox`` remembers its place like any ``NcbClient`` (docs/ncb-client.md): run it twice and
the second run shows only what arrived in between. ``agents.cli`` registers both with one
call to ``register_bureau_commands``; each sets its ``handler``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import signal
import sys
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaError
from pydantic import BaseModel, TypeAdapter, ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from agents.ncb.client import InboxItem, InboxMessage, InboxReceipt, NcbClient, acknowledgeable
from agents.ncb.client_state import state_path
from brokers.logs import configure_logging
from brokers.settings import Settings
from schemas.bodies import Body, MessageBody
from schemas.header import MessageType, Precedence
from schemas.keys import KeyFileError

__all__ = ["BureauCommandError", "body_from_args", "item_json", "register_bureau_commands"]

_BODY: TypeAdapter[Body] = TypeAdapter(Body)
_ENVIRONMENT = (
    "reads I247_BOOTSTRAP (required), I247_TOPIC_PREFIX, I247_KEYS_DIR, I247_DATA_DIR, "
    "I247_LOG_LEVEL"
)


class BureauCommandError(ValueError):
    """A send or inbox that cannot go ahead as asked; the message says what to change."""


def register_bureau_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``send`` and ``inbox`` to the ``i247`` subcommands."""
    send = commands.add_parser(
        "send",
        help="seal one message as a bureau and publish it; prints its message id",
        description="Seal one message as --as for each --to and publish it to the inbound "
        f"topic; prints the message id. {_ENVIRONMENT}.",
    )
    send.add_argument(
        "--as", dest="participant", required=True, help="the sender: FRA, team:<slug> (required)"
    )
    send.add_argument(
        "--to", action="append", required=True, help="a recipient (required, repeatable)"
    )
    send.add_argument(
        "--type",
        default=MessageType.MESSAGE.value,
        choices=[t.value for t in MessageType],
        metavar="TYPE",
        help="message type (message): " + ", ".join(t.value for t in MessageType),
    )
    send.add_argument(
        "--precedence",
        default=Precedence.ROUTINE.value,
        choices=[p.value for p in Precedence],
        metavar="P",
        help="declared precedence (ROUTINE): FLASH, IMMEDIATE, PRIORITY or ROUTINE; the CCC "
        "assesses its own",
    )
    what = send.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--text", help="the text of a plain message (--type message); this or --body-file"
    )
    what.add_argument(
        "--body-file",
        type=Path,
        metavar="PATH",
        help="the body as JSON ('type' may be left out); this or --text",
    )
    send.add_argument("--subject", help="subject of a --text message (its first line)")
    send.add_argument("--case-id", help="the case this message belongs to (none)")
    send.add_argument("--correlation-id", help="the message this one answers (none)")
    send.set_defaults(handler=send_command)

    inbox = commands.add_parser(
        "inbox",
        help="what a bureau opened since its last run (fenced, deduplicated, position kept)",
        description="Read --as's inbox from where its last run stopped: open, judge fence "
        f"tags, deduplicate, print, remember the position. {_ENVIRONMENT}.",
    )
    inbox.add_argument(
        "--as", dest="participant", required=True, help="the reader: DEU, team:<slug> (required)"
    )
    inbox.add_argument(
        "--follow",
        action="store_true",
        help="keep reading until interrupted (off: stop at the end)",
    )
    inbox.add_argument(
        "--ack", action="store_true", help="acknowledge each message from a bureau or team (off)"
    )
    inbox.add_argument("--json", action="store_true", help="JSON Lines instead of a table (off)")
    inbox.add_argument(
        "--count", type=int, default=0, help="stop after this many items (0: no limit)"
    )
    inbox.set_defaults(handler=inbox_command)


def send_command(args: argparse.Namespace, settings: Settings) -> int:
    return _guarded("send", args, settings, _send)


def inbox_command(args: argparse.Namespace, settings: Settings) -> int:
    return _guarded("inbox", args, settings, _inbox)


def _guarded(name: str, args: argparse.Namespace, settings: Settings, run: Any) -> int:
    """Run ``run`` with logs in the client's folder; one line and an exit code on failure."""
    if not settings.bootstrap:
        print(f"i247 {name}: needs a running backbone: set I247_BOOTSTRAP", file=sys.stderr)
        return 2
    log_path = state_path(Path(settings.data_dir), args.participant).with_name("client.log")
    try:
        configure_logging(settings.log_level, log_path)
        return int(asyncio.run(run(args, settings)))
    except asyncio.CancelledError:  # interrupted while starting: nothing was handed over
        return 0
    except (BureauCommandError, KeyFileError, ValueError) as error:
        print(f"i247 {name}: {error}", file=sys.stderr)
        return 2
    except KafkaError as error:
        print(
            f"i247 {name}: cannot reach the broker at {settings.bootstrap} ({error}): is it up, "
            "and is I247_BOOTSTRAP right?",
            file=sys.stderr,
        )
        return 3
    except (LookupError, OSError) as error:
        print(f"i247 {name}: {error}", file=sys.stderr)
        return 3


async def _send(args: argparse.Namespace, settings: Settings) -> int:
    body = body_from_args(args)
    async with NcbClient(args.participant, None, settings, fence=False) as client:
        message_id = await client.send(
            args.to,
            body,
            precedence=Precedence(args.precedence),
            case_id=args.case_id,
            correlation_id=args.correlation_id,
        )
    print(message_id)
    return 0


def body_from_args(args: argparse.Namespace) -> Body:
    if args.text is not None:
        if args.type != MessageType.MESSAGE.value:
            raise BureauCommandError(
                f"--text makes a 'message' body; give a {args.type} body as JSON with --body-file"
            )
        lines = args.text.strip().splitlines()
        subject = args.subject or (lines[0][:256] if lines else "(no subject)")
        return MessageBody(subject=subject, text=args.text)
    try:
        text = Path(args.body_file).read_text(encoding="utf-8")
    except OSError as error:
        raise OSError(f"cannot read --body-file {args.body_file}: {error.strerror}") from error
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise BureauCommandError(f"{args.body_file} is not JSON: {error}") from error
    if not isinstance(raw, dict):
        raise BureauCommandError(f"{args.body_file} must hold a JSON object")
    raw.setdefault("type", args.type)
    if raw["type"] != args.type:
        raise BureauCommandError(
            f"{args.body_file} holds a {raw['type']!r} body, not --type {args.type}"
        )
    try:
        return _BODY.validate_json(json.dumps(raw))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}"
            for e in error.errors()
        )
        raise BureauCommandError(
            f"{args.body_file} is not a valid {args.type} body: {problems}"
        ) from error


async def _inbox(args: argparse.Namespace, settings: Settings) -> int:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    table = _table(args.ack)
    shown = 0
    async with NcbClient(args.participant, None, settings) as client:
        try:
            async for item in client.inbox(follow=args.follow):
                ack_id = None
                if args.ack and isinstance(item, InboxMessage) and acknowledgeable(item):
                    ack_id = await client.ack(item)
                if args.json:
                    print(json.dumps(item_json(item, ack_id)), flush=True)
                elif args.follow:
                    print(" ".join(_row(item, ack_id, args.ack)), flush=True)
                else:
                    table.add_row(*(Text(cell) for cell in _row(item, ack_id, args.ack)))
                shown += 1
                if args.count and shown >= args.count:
                    break
        except asyncio.CancelledError:  # interrupted (SIGINT, SIGTERM): keep the position
            task.uncancel()
        counts = dict(client.counts)
    if not args.json and not args.follow:
        Console().print(table)
    print(f"{shown} new item(s) for {args.participant}; {counts}", file=sys.stderr)
    return 0


def _table(acks: bool) -> Table:
    table = Table("offset", "from", "type", "precedence", "created")
    table.add_column("message id", no_wrap=True, min_width=36)
    table.add_column("summary")
    if acks:
        table.add_column("ack id")
    return table


def _row(item: InboxItem, ack_id: str | None, acks: bool) -> list[str]:
    if isinstance(item, InboxMessage):
        header = item.header
        summary = getattr(item.body, "subject", None) or item.body.model_dump_json()[:60]
        row = [
            str(item.offset),
            header.sender,
            header.message_type.value,
            item.precedence.value,
            header.created_at.strftime("%H:%M:%S"),
            header.message_id,
            str(summary),
        ]
    else:
        row = [
            str(item.offset),
            "ccc",
            "receipt",
            "",
            "",
            "",
            json.dumps(_jsonable(item.item))[:80],
        ]
    return [*row, ack_id or ""] if acks else row


def item_json(item: InboxItem, ack_id: str | None = None) -> dict[str, Any]:
    """One inbox item as the JSON object ``i247 inbox --json`` prints on a line."""
    if isinstance(item, InboxReceipt):
        return {
            "kind": "receipt",
            "partition": item.partition,
            "offset": item.offset,
            "receipt": _jsonable(item.item),
        }
    header = item.header
    return {
        "kind": "message",
        "partition": item.partition,
        "offset": item.offset,
        "message_id": header.message_id,
        "sender": header.sender,
        "recipients": header.recipients,
        "type": header.message_type.value,
        "precedence": item.precedence.value,
        "declared_precedence": header.precedence.value,
        "created_at": header.created_at.isoformat(),
        "case_id": header.case_id,
        "correlation_id": header.correlation_id,
        "trace_id": header.trace_id,
        "hub": item.hub,
        "body": item.body.model_dump(mode="json"),
        "ack_id": ack_id,
    }


def _jsonable(value: object) -> Any:
    """A receipt (whatever form the adapter gives it) as plain JSON values."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)
