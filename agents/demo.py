"""``i247 demo``: the whole backbone on one machine, live, with its books at the end.

It starts the embedded broker (unless ``I247_BOOTSTRAP`` is set), provisions the topics,
starts the three CCC hubs (Lyon, Buenos Aires, Singapore) and the audit archiver as
processes of their own, runs the 196 simulated NCBs at the given rate, kills and restores
hubs when asked (``--fail-hub lyon@20s --restore-hub lyon@40s``), shows a live table,
drains, and prints the accounting with every duty change, failover and failback. Exit
status 1 if anything the CCC accepted was not delivered (lost), 2 if a spoiled record was
not refused as expected.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Console
from rich.live import Live

from agents.accounting import Accounting
from agents.hub_events import Disturbance, duty_changes, parse_schedule, takeovers
from agents.keyring import load_all
from agents.lease_reader import LeaseReader
from agents.operations import provision_all
from agents.report import accounting_tables, failover_table, live_table
from agents.simulator import Observer, Simulator
from agents.traffic import TrafficMix
from brokers.archive_store import ArchiveStore
from brokers.clients import make_consumer, make_producer, terminate
from brokers.embedded import broker_for
from brokers.logs import configure_logging
from brokers.settings import Settings
from schemas.header import Suite
from schemas.participants import HUB_SITES
from schemas.registry import default_registry

SUITES = {"x25519": Suite.X25519, "mlkem768-x25519": Suite.MLKEM768_X25519}

__all__ = ["demo", "simulate", "start_archiver", "start_hub"]

log = structlog.get_logger("i247.demo")


def start_hub(
    settings: Settings, site: str, bootstrap: str, log_dir: Path
) -> subprocess.Popen[bytes]:
    """Start ``i247 hub --site`` as a child process pointed at ``bootstrap``."""
    return _start(settings, bootstrap, log_dir, f"hub-{site}", ["hub", "--site", site])


def start_archiver(
    settings: Settings, bootstrap: str, log_dir: Path, archive: Path
) -> subprocess.Popen[bytes]:
    """Start ``i247 archive`` as a child process writing to ``archive``."""
    return _start(settings, bootstrap, log_dir, "archiver", ["archive", "--archive", str(archive)])


def _start(
    settings: Settings, bootstrap: str, log_dir: Path, name: str, command: list[str]
) -> subprocess.Popen[bytes]:
    env = dict(os.environ, I247_BOOTSTRAP=bootstrap, I247_LOG_FILE=str(log_dir / f"{name}.log"))
    env["I247_TOPIC_PREFIX"] = settings.topic_prefix
    env["I247_KEYS_DIR"] = str(settings.keys_dir)
    env["I247_DATA_DIR"] = str(settings.data_dir)
    env["I247_LEASE_TTL_MS"] = str(settings.lease_ttl_ms)
    env["I247_DB_SCALE"] = str(settings.db_scale)
    if settings.shift_seconds is not None:
        env["I247_SHIFT_SECONDS"] = str(settings.shift_seconds)
    program = ["-m", "streams.databases"] if command == ["-"] else ["-m", "agents.cli", *command]
    with (log_dir / f"{name}.out").open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *program],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@contextlib.asynccontextmanager
async def kafka_clients(
    settings: Settings, bootstrap: str, group: str
) -> AsyncIterator[tuple[AIOKafkaProducer, AIOKafkaConsumer, AIOKafkaConsumer]]:
    producer = make_producer(bootstrap, settings)
    inbox = make_consumer(bootstrap, settings, group_id=group, enable_auto_commit=True)
    observer = make_consumer(bootstrap, settings)
    await producer.start()
    await inbox.start()
    await observer.start()
    try:
        yield producer, inbox, observer
    finally:
        await producer.stop()
        await inbox.stop()
        await observer.stop()


async def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)


async def run_traffic(
    settings: Settings,
    bootstrap: str,
    args: argparse.Namespace,
    *,
    live: bool,
    hubs: dict[str, subprocess.Popen[bytes]] | None = None,
    disturbances: list[Disturbance] | None = None,
    restart: Any = None,
) -> tuple[Accounting, list[dict[str, object]], list[tuple[Disturbance, float]]]:
    """Run the simulated NCBs against ``bootstrap``; return the books after draining, the
    hubs' journal events, and the disturbances carried out (with their wall times)."""
    registry = default_registry()
    topics = settings.topics
    ncbs = list(registry.codes())
    directory, identities = load_all(Path(settings.keys_dir), ncbs)
    regions: dict[str, list[str]] = {}
    for member in registry.members:
        regions.setdefault(member.region.value, []).append(member.iso3)
    mix = TrafficMix(
        regions,
        {m.iso3: m.language for m in registry.members},
        seed=args.seed,
        fault_share=args.fault_share,
    )
    books = Accounting()
    stop = asyncio.Event()
    async with kafka_clients(settings, bootstrap, f"{topics.prefix}-ncb-gateway") as (
        producer,
        inbox,
        observer_consumer,
    ):
        simulator = Simulator(
            topics=topics,
            directory=directory,
            identities=identities,
            mix=mix,
            producer=producer,
            books=books,
            max_bytes=settings.max_message_bytes,
            freshness=timedelta(seconds=settings.freshness_seconds),
            suite=SUITES[args.suite],
        )
        observer = Observer(topics, books, settings.max_message_bytes)
        leases = LeaseReader(bootstrap, topics.leases)
        await leases.start()
        inbox.subscribe(simulator.inboxes)
        observer_consumer.assign(observer.partitions())
        tasks = [
            asyncio.create_task(simulator.read_inboxes(inbox, stop, leases)),
            asyncio.create_task(observer.run(observer_consumer, stop)),
        ]
        hubs = hubs or {}
        for site, process in hubs.items():
            await _wait_for(
                lambda site=site, process=process: (
                    any(
                        e.get("event") == "hub-ready" and e.get("hub") == f"hub:{site}"
                        for e in observer.hub_events
                    )
                    or process.poll() is not None
                ),
                120,
                f"hub {site} to start",
            )
            if process.poll() is not None:
                raise RuntimeError(f"hub {site} exited during start-up; see its log")
        await _wait_for(lambda: bool(inbox.assignment()), 60, "the inbox reader's assignment")
        started = time.monotonic()
        pump = asyncio.create_task(simulator.pump(args.rate, args.duration, stop))
        console = Console()
        with (
            Live(console=console, refresh_per_second=4, transient=False)
            if live
            else contextlib.nullcontext() as view
        ):

            def refresh(phase: str) -> None:
                if view is not None:
                    view.update(live_table(books, phase, time.monotonic() - started))

            plan = sorted(disturbances or [], key=lambda d: d.after)
            done: list[tuple[Disturbance, float]] = []
            while not pump.done():
                while plan and time.monotonic() - started >= plan[0].after:
                    disturbance = plan.pop(0)
                    if disturbance.kind == "fail" and disturbance.site in hubs:
                        hubs.pop(disturbance.site).kill()
                    elif disturbance.kind == "restore" and disturbance.site not in hubs:
                        hubs[disturbance.site] = restart(disturbance.site)
                    done.append((disturbance, time.time()))
                    log.info(f"hub-{disturbance.kind}", site=disturbance.site)
                refresh("sending")
                await asyncio.sleep(0.25)
            await pump
            drain_until = time.monotonic() + args.drain_timeout
            expected_dead = len(books.expected_refusals)
            while time.monotonic() < drain_until:
                refresh("draining")
                settled = not books.outstanding() and sum(books.refused.values()) >= expected_dead
                if settled and time.monotonic() - started > args.duration + 1:
                    break
                await asyncio.sleep(0.25)
            refresh("done")
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await leases.stop()
    return books, observer.hub_events, done


async def demo(settings: Settings, args: argparse.Namespace) -> int:
    run_dir = Path(settings.data_dir) / "demo"
    run_dir.mkdir(parents=True, exist_ok=True)
    configure_logging(settings.log_level, run_dir / "demo.log")
    console = Console()
    console.print(f"[bold]I-24/7 backbone demo[/] — logs and keys under {run_dir.parent}")
    disturbances = parse_schedule("fail", args.fail_hub, HUB_SITES) + parse_schedule(
        "restore", args.restore_hub, HUB_SITES
    )
    settings = settings.model_copy(update={"shift_seconds": args.shift_seconds})
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    archive = args.archive or run_dir / f"archive-{stamp}.sqlite3"
    async with broker_for(settings) as bootstrap:
        settings = settings.model_copy(update={"bootstrap": bootstrap})
        report = await provision_all(settings)
        console.print(f"broker {bootstrap}; topics: {report}")
        archiver = (
            None if args.no_archive else start_archiver(settings, bootstrap, run_dir, archive)
        )
        hubs = {site: start_hub(settings, site, bootstrap, run_dir) for site in HUB_SITES}
        try:
            books, events, done = await run_traffic(
                settings,
                bootstrap,
                args,
                live=not args.no_live,
                hubs=hubs,
                disturbances=disturbances,
                restart=lambda site: start_hub(settings, site, bootstrap, run_dir),
            )
        finally:
            for process in hubs.values():
                terminate(process)
            if archiver is not None:
                terminate(archiver)
    summary = books.summary()
    rows = takeovers(events, done)
    summary["failovers"] = [dataclasses.asdict(row) for row in rows]
    summary["duty"] = [
        {"at": at, "hub": hub, "reason": reason} for at, hub, reason in duty_changes(events)
    ]
    if archiver is not None:
        summary["archive"] = archive_summary(archive)
    for table in accounting_tables(summary):
        console.print(table)
    console.print(failover_table(rows, summary["duty"]))
    if archiver is not None:
        console.print(
            f"audit archive: {archive} ({summary['archive']['records']} records, "
            f"{summary['archive']['heads']} signed heads) — check it with "
            f"`i247 audit verify --archive {archive}`"
        )
    if args.summary_json:
        args.summary_json.parent.mkdir(parents=True, exist_ok=True)
        args.summary_json.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    if summary["lost"]["total"]:
        console.print(f"[red bold]LOST {summary['lost']['total']} deliveries[/]")
        return 1
    if summary["rejected"]["misjudged"]:
        console.print("[red bold]spoiled records not refused as expected[/]")
        return 2
    console.print("[green bold]lost: 0[/] — every accepted message reached every recipient")
    return 0


def archive_summary(path: Path) -> dict[str, object]:
    """How much the archiver wrote this run (read back from the file)."""
    if not path.exists():
        return {"path": str(path), "records": 0, "heads": 0}
    store = ArchiveStore.open_reader(path)
    try:
        return {"path": str(path), "records": store.count(), "heads": len(store.heads())}
    finally:
        store.close()


async def simulate(settings: Settings, args: argparse.Namespace) -> int:
    """Traffic only, against an existing backbone (``I247_BOOTSTRAP``), e.g. in compose."""
    configure_logging(settings.log_level)
    if not settings.bootstrap:
        raise SystemExit("i247 simulate needs I247_BOOTSTRAP")
    args.drain_timeout = 30.0
    books, _, _ = await run_traffic(settings, settings.bootstrap, args, live=False)
    print(json.dumps(books.summary(), indent=2))
    return 1 if books.summary()["lost"]["total"] else 0
