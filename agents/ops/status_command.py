"""``i247 status``: the backbone's state now, read once from its journals, as a table.

The same fold as the dashboard (``agents.ops.dashboard_view.DashboardView``), fed once: the
lease journal, heartbeats, control journal and dead letters from their start to their
current end, and the end offsets of intake and the lanes (backlogs). A record is applied
at its broker timestamp, so a heartbeat's age is how long ago it was written.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from agents.ops.dashboard_view import DashboardView
from agents.ops.topic_reader import read_to_end
from brokers.records import ReceivedRecord
from brokers.settings import Settings

__all__ = ["read_status", "register_status", "status_command"]


def register_status(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``status`` to the ``i247`` subcommands."""
    status = commands.add_parser(
        "status",
        help="hub on duty, leases and epochs, heartbeats, backlogs, breaches, dead letters",
        description="Read the journals once, up to their current end, and print the "
        "backbone's state. Reads I247_BOOTSTRAP (required), I247_TOPIC_PREFIX, "
        "I247_LEASE_TTL_MS.",
    )
    status.add_argument("--json", action="store_true", help="the snapshot as JSON (off)")
    status.set_defaults(handler=status_command)


async def read_status(settings: Settings) -> dict[str, Any]:
    """The dashboard's snapshot of the journals as they are now."""
    topics = settings.topics
    view = DashboardView(topics, lease_ttl_s=settings.lease_ttl_ms / 1000)

    def apply(record: ReceivedRecord) -> None:
        view.apply(record, datetime.fromtimestamp(record.timestamp_ms / 1000, UTC))

    journals = [topics.leases, topics.heartbeat, topics.control, topics.deadletter]
    _, ends = await read_to_end(
        settings, journals, apply, ends_of=[topics.inbound, *topics.lanes()]
    )
    view.apply_watermarks(ends)
    return view.snapshot(datetime.now(UTC))


def status_command(args: argparse.Namespace, settings: Settings) -> int:
    snapshot = asyncio.run(read_status(settings))
    if args.json:
        print(json.dumps(snapshot, indent=2, default=str))
        return 0
    _print(snapshot)
    return 0


def _text(value: object) -> str:
    return "-" if value is None else str(value)


def _print(snapshot: dict[str, Any]) -> None:
    console = Console()
    duty = snapshot["on_duty"]
    console.print(
        f"[bold]hub on duty[/]: {_text(duty['hub'])} (intake epoch {duty['epoch']}, "
        f"since {_text(duty['since'])})"
    )
    hubs = Table(title="hubs")
    for column in ("site", "beating", "last beat s ago", "backlog", "declared", "units"):
        hubs.add_column(column)
    for hub in snapshot["hubs"]:
        hubs.add_row(
            hub["site"],
            "yes" if hub["beating"] else "no",
            *(_text(hub[k]) for k in ("last_beat_s", "backlog", "declared", "units")),
        )
    console.print(hubs)
    units = Table(title="units: leases and backlogs")
    for column in ("unit", "owner", "epoch", "lease left s", "backlog"):
        units.add_column(column)
    for unit in snapshot["units"]:
        units.add_row(
            *(_text(unit[k]) for k in ("unit", "owner", "epoch", "lease_left_s", "backlog"))
        )
    console.print(units)
    dead = snapshot["dead_letters"]
    reasons = ", ".join(f"{r} {n}" for r, n in dead["by_reason"].items()) or "none"
    console.print(f"[bold]dead letters[/]: {dead['total']} ({reasons})")
    breaches = snapshot["breaches"]
    kinds = ", ".join(f"{k} {n}" for k, n in breaches["by_kind"].items()) or "none"
    console.print(f"[bold]breaches[/]: {breaches['total']} ({kinds})")
