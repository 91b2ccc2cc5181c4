"""``i247 replay``: the operators' replay on the command line, and a replay benchmark.

Theory of operation: the arguments become a ``ReplayFilter``, a source (``--from-kafka``
reads recent traffic by time from the broker; ``--archive [PATH]`` reads the audit
archive, the default file when no path is given, with the time window and topics pushed
into its query, and needs no broker unless it re-publishes), an optional
``Opener`` (``--as FRA``, from the keys in ``I247_KEYS_DIR``) and one output (a table,
JSON Lines, or a replay topic); ``agents.ops.replay.replay`` does the rest. ``agents.cli``
registers the subcommand with one call to ``register_replay``.

Examples::

    i247 replay --from-kafka --since 15m --sender FRA
    i247 replay --from-kafka --since 2026-11-23T12:00:00Z --until 2026-11-23T13:00:00Z \\
        --type urgent-request --format jsonl --output urgent.jsonl
    i247 replay --from-kafka --since 1h --topic inbound --publish drill-1 --pace 10x
    i247 replay --from-kafka --since 1h --as FRA          # France's own traffic in clear
    i247 replay --archive --since 2d --until 1d --sender FRA   # the default archive file
    i247 replay --archive var/audit/a.sqlite3 --publish drill-2 --pace original
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from agents.ops.replay import (
    JsonLinesOutput,
    Opener,
    ReplayOutput,
    ReplaySummary,
    TableOutput,
    TopicOutput,
    replay,
)
from agents.ops.replay import Records as ReplayRecords
from agents.ops.replay_filter import ReplayFilter, ReplayFilterError, epoch_ms, parse_moment
from agents.ops.replay_pacing import Pace, parse_pace
from brokers.archive_source import ArchiveSource
from brokers.archive_store import default_archive_path
from brokers.clients import make_producer
from brokers.provisioning import provision
from brokers.records import ReceivedRecord
from brokers.replay_source import KafkaTimeSource
from brokers.settings import Settings
from schemas.header import MessageType, Precedence
from schemas.keys import load_directory, load_identity
from schemas.topics import TopicCatalog, TopicKind, TopicSpec

__all__ = [
    "DEFAULT_ARCHIVE",
    "bench_replay",
    "build_filter",
    "register_replay",
    "run_replay",
    "topic_selector",
]

DEFAULT_ARCHIVE = Path("<default archive>")  # ``--archive`` without a path: the settings' file


def register_replay(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``replay`` to the ``i247`` subcommands; ``args.run(settings, args)`` runs it."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "replay",
        help="replay recorded traffic: filter, open as an NCB, print or re-publish",
        description="Replay recorded traffic: filter it, open what --as may read, print it as a "
        "table or JSON Lines, or re-publish it to a replay topic no processor reads.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--from-kafka", action="store_true", help="read recent traffic from the broker by time"
    )
    source.add_argument(
        "--archive",
        nargs="?",
        const=DEFAULT_ARCHIVE,
        type=Path,
        metavar="PATH",
        help="read the audit archive (default <I247_DATA_DIR>/audit/<prefix>-archive.sqlite3)",
    )
    parser.add_argument("--since", help="ISO-8601 UTC instant or duration before now (15m)")
    parser.add_argument("--until", help="ISO-8601 UTC instant or duration before now (exclusive)")
    parser.add_argument(
        "--topic",
        action="append",
        default=[],
        help="topic name or pattern (inbound, ncb.*.inbox, or with the prefix); repeatable",
    )
    parser.add_argument("--sender", action="append", default=[], help="sender id; repeatable")
    parser.add_argument("--recipient", action="append", default=[], help="recipient; repeatable")
    parser.add_argument(
        "--type",
        action="append",
        default=[],
        choices=[t.value for t in MessageType],
        help="message type (body kind); repeatable",
    )
    parser.add_argument(
        "--priority",
        action="append",
        default=[],
        type=str.upper,
        choices=[p.value for p in Precedence],
        help="declared precedence; repeatable",
    )
    parser.add_argument("--correlation-id", action="append", default=[], help="repeatable")
    parser.add_argument("--as", dest="as_participant", help="open bodies with this NCB's keys")
    parser.add_argument("--limit", type=int, help="stop after this many selected records")
    parser.add_argument("--format", choices=("table", "jsonl"), default="table")
    parser.add_argument("--output", type=Path, help="JSON Lines file (default: stdout)")
    parser.add_argument("--publish", metavar="NAME", help="re-publish to <prefix>.replay.NAME")
    parser.add_argument(
        "--pace", default="max", help="original, max (default) or a speed such as 10x"
    )
    parser.add_argument("--progress", action="store_true", help="progress bar even off a tty")
    parser.set_defaults(run=run_replay)


def build_filter(args: argparse.Namespace, *, now: datetime, catalog: TopicCatalog) -> ReplayFilter:
    """The filter the arguments describe; ``ReplayFilterError`` naming a bad value."""
    since = parse_moment(args.since, now=now) if args.since else None
    until = parse_moment(args.until, now=now) if args.until else None
    prefix = f"{catalog.prefix}."
    try:
        return ReplayFilter(
            since_ms=epoch_ms(since) if since else None,
            until_ms=epoch_ms(until) if until else None,
            topics=frozenset(t if t.startswith(prefix) else prefix + t for t in args.topic),
            senders=frozenset(args.sender),
            recipients=frozenset(args.recipient),
            message_types=frozenset(MessageType(t) for t in args.type),
            precedences=frozenset(Precedence(p) for p in args.priority),
            correlation_ids=frozenset(args.correlation_id),
        )
    except ValidationError as exc:
        raise ReplayFilterError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None


def topic_selector(flt: ReplayFilter, catalog: TopicCatalog) -> Callable[[str], bool]:
    """Topics to read: those the filter names, else every topic but the replay topics."""
    if flt.topics:
        return flt.selects_topic
    return lambda topic: not topic.startswith(catalog.replay_prefix)


def _progress_callback(progress: Progress, total: int | None) -> Callable[[ReplaySummary], None]:
    task = progress.add_task("replay", total=total, selected=0)

    def update(summary: ReplaySummary) -> None:
        progress.update(task, completed=summary.read, selected=summary.selected)

    return update


async def run_replay(settings: Settings, args: argparse.Namespace) -> int:
    """Run ``i247 replay`` with parsed ``args``; 2 for a usage error, 0 otherwise."""
    err = Console(stderr=True)
    catalog = settings.topics
    try:
        flt = build_filter(args, now=datetime.now(UTC), catalog=catalog)
        pace = parse_pace(args.pace)
        replay_topic = catalog.replay(args.publish) if args.publish else None
    except ValueError as error:
        err.print(f"i247 replay: {error}")
        return 2
    from_archive = args.archive is not None
    if (args.publish or not from_archive) and not settings.bootstrap:
        needs = "--publish" if from_archive else "--from-kafka"
        err.print(f"i247 replay {needs} needs a broker: set I247_BOOTSTRAP=host:port")
        return 2
    opener = None
    if args.as_participant:
        keys = Path(settings.keys_dir)
        opener = Opener(load_identity(keys, args.as_participant), load_directory(keys))
    select = topic_selector(flt, catalog)
    async with AsyncExitStack() as stack:
        source: ReplayRecords
        if from_archive:
            path = (
                default_archive_path(settings) if args.archive == DEFAULT_ARCHIVE else args.archive
            )
            archive = stack.enter_context(  # a missing or foreign file: agents.cli says so
                ArchiveSource(path, select=select, since_ms=flt.since_ms, until_ms=flt.until_ms)
            )
            source, total = archive, archive.total
        else:
            kafka = await stack.enter_async_context(
                KafkaTimeSource(settings, select=select, since_ms=flt.since_ms)
            )
            source, total = kafka, kafka.total
        output: ReplayOutput
        if replay_topic is not None:
            assert settings.bootstrap is not None
            await provision(
                settings.bootstrap,
                [TopicSpec(replay_topic, TopicKind.REPLAY)],
                settings.replication_factor,
            )
            producer = await stack.enter_async_context(make_producer(settings))
            output = TopicOutput(producer, replay_topic, args.publish)
        elif args.format == "jsonl":
            stream = stack.enter_context(args.output.open("w")) if args.output else sys.stdout
            output = JsonLinesOutput(stream)
        else:
            output = TableOutput(Console())
        summary = await _run(source, flt, output, opener, pace, args, total)
    where = f" to {replay_topic}" if replay_topic else ""
    err.print(
        f"replayed {summary.selected} of {summary.read} records read{where}"
        + (f", {summary.opened} opened as {args.as_participant}" if opener else "")
    )
    return 0


async def _run(
    source: ReplayRecords,
    flt: ReplayFilter,
    output: ReplayOutput,
    opener: Opener | None,
    pace: Pace,
    args: argparse.Namespace,
    total: int,
) -> ReplaySummary:
    if not (args.progress or sys.stdout.isatty()):
        return await replay(source, flt, output, opener=opener, pace=pace, limit=args.limit)
    columns = (
        TextColumn("[bold]replay"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("read, {task.fields[selected]} selected"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        return await replay(
            source,
            flt,
            output,
            opener=opener,
            pace=pace,
            limit=args.limit,
            on_progress=_progress_callback(progress, total),
        )


async def bench_replay(
    records: list[ReceivedRecord], settings: Settings | None = None, *, name: str = "bench"
) -> dict[str, Any]:
    """Records per second replayed (as fast as possible) to JSON Lines and, with a broker,
    to a replay topic. Measures; asserts nothing."""
    figures: dict[str, Any] = {"records": len(records)}
    everything = ReplayFilter()
    started = time.perf_counter()
    await replay(records, everything, JsonLinesOutput(io.StringIO()))
    figures["jsonl_records_per_s"] = round(len(records) / (time.perf_counter() - started), 1)
    if settings is not None and settings.bootstrap:
        topic = settings.topics.replay(name)
        await provision(settings.bootstrap, [TopicSpec(topic, TopicKind.REPLAY)])
        async with make_producer(settings) as producer:
            started = time.perf_counter()
            await replay(records, everything, TopicOutput(producer, topic, name))
            elapsed = time.perf_counter() - started
        figures["topic_records_per_s"] = round(len(records) / elapsed, 1)
    return figures
