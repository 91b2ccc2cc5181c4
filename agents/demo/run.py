"""``i247 demo``: the whole backbone on one machine, live, with its books at the end.

It starts the embedded broker (unless ``I247_BOOTSTRAP`` is set), provisions the topics,
starts the three CCC hubs (Lyon, Buenos Aires, Singapore) and the audit archiver as
processes of their own, runs the 196 simulated NCBs at the given rate, kills and restores
hubs when asked (``--fail-hub lyon@20s --restore-hub lyon@40s``), shows a live table,
drains, and prints the accounting with every duty change, failover and failback. Exit
status 1 if anything the CCC accepted was not delivered (lost), 2 if a spoiled record was
not refused as expected.

Every child process (``_start``: hubs, archiver, dashboard, the databases' build) is
remembered until stopped; SIGTERM cancels the demo as SIGINT does, and either way every
child still running is stopped before the demo exits (exit 143 after SIGTERM, 130 after
SIGINT), so an interrupted demo leaves no process behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import random
import signal
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

from agents.cli_errors import Terminated
from agents.demo.report import accounting_tables, failover_table, live_table
from agents.ncb.adapter import NcbAdapter
from agents.ncb.lease_reader import LeaseReader
from agents.ops.hub_events import Disturbance, duty_changes, parse_schedule, takeovers
from agents.ops.keyring import init_all, load_all
from agents.ops.operations import provision_all
from agents.sim.accounting import Accounting
from agents.sim.check_traffic import check_traffic, enrol_team, provision_team_inbox
from agents.sim.desk_books import DeskBooks
from agents.sim.desk_traffic import DeskTraffic
from agents.sim.notice_traffic import NoticeTraffic
from agents.sim.screening_sources import ScreeningWorld
from agents.sim.simulator import Observer, Simulator
from agents.sim.team_traffic import TeamTraffic
from agents.sim.traffic import TrafficMix
from brokers.archive_store import ArchiveStore
from brokers.clients import (
    BACKGROUND_FETCH_WAIT_MS,
    make_consumer,
    make_producer,
    terminate,
)
from brokers.embedded import broker_for
from brokers.logs import configure_logging
from brokers.records import ReceivedRecord
from brokers.settings import Settings, SettingsError
from brokers.tail import TopicTail
from schemas.header import Suite
from schemas.journal import HubReady, JournalEventModel
from schemas.keys import load_identity
from schemas.participants import HUB_SITES, hub_id
from schemas.registry import default_registry

SUITES = {"x25519": Suite.X25519, "mlkem768-x25519": Suite.MLKEM768_X25519}

__all__ = [
    "IMEST",
    "demo",
    "demo_plan",
    "metrics_ports",
    "simulate",
    "start_archiver",
    "start_dashboard",
    "start_gateway",
    "start_hub",
]

IMEST = "team:imest-summer-games"
"""The standing IMEST at the demo's major event, screening arriving travellers."""

GATEWAY_BATCH_BYTES = 1_048_576
"""Batch size of the bureaus' one producer. aiokafka holds ``send`` while a partition's
batch is full and keeps one request in flight per broker, so at aiokafka's 16 KB (about
eight sealed messages) the whole gateway (the send schedule and the inbox reader, whose
acknowledgements it sends) waits on every produce round trip once the broker slows."""

GATEWAY_IDLE_FETCH_WAIT_MS = 1_000
"""The longest fetch wait of the gateway's inbox reader (all 196 inboxes: Tansu's CPU per
fetch grows with the partitions named) and its observer (the books) when idle; Tansu ends
a waiting fetch early when a record arrives (docs/performance.md), and the wait drops
back to the short one while records flow."""
TEAM_INBOX_PACE_MS = 250
"""A team's inbox reader (the IMEST's from the start, each deployed team's) rests this long
after an empty fetch: teams get a few records a minute."""

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


def start_gateway(
    settings: Settings, bootstrap: str, log_dir: Path, rate: float = 0.0001
) -> subprocess.Popen[bytes]:
    """Start the bureaus' gateway (``i247 simulate``) as a child process; at the default
    rate it sends one message at start and then stays idle (the bench's idle measure)."""
    command = ["simulate", "--rate", str(rate), "--duration", "86400", "--fault-share", "0"]
    return _start(settings, bootstrap, log_dir, "gateway", command)


def start_dashboard(
    settings: Settings, bootstrap: str, log_dir: Path, port: int
) -> subprocess.Popen[bytes]:
    """Start ``i247 dashboard --port`` as a child process (its output in ``dashboard.out``)."""
    command = ["dashboard", "--port", str(port), "--host", "127.0.0.1"]
    return _start(settings, bootstrap, log_dir, "dashboard", command)


def build_databases(settings: Settings, bootstrap: str, log_dir: Path) -> int:
    """Build the simulated databases once, before the hubs (which would race to build them)."""
    return _start(settings, bootstrap, log_dir, "databases", ["-"]).wait()


def metrics_ports(base: int) -> dict[str, int]:
    """Each child's ``I247_METRICS_PORT``: the archiver on ``base``, the hubs on the next
    ports (all on one machine, so one shared port would collide); all 0 when ``base`` is."""
    names = ["archiver", *(f"hub-{site}" for site in HUB_SITES)]
    return {name: base + i if base else 0 for i, name in enumerate(names)}


_CHILDREN: set[subprocess.Popen[bytes]] = set()
"""The child processes ``_start`` started that ``stop_children`` has not stopped yet."""


def stop_children(grace: float = 10.0) -> None:
    """SIGTERM every child still running, all at once; SIGKILL those not gone in ``grace``."""
    running = [p for p in _CHILDREN if p.poll() is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in running:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    _CHILDREN.clear()


def _start(
    settings: Settings, bootstrap: str, log_dir: Path, name: str, command: list[str]
) -> subprocess.Popen[bytes]:
    child = settings.replace(
        bootstrap=bootstrap, metrics_port=metrics_ports(settings.metrics_port).get(name, 0)
    )
    env = os.environ | child.to_env(log_file=log_dir / f"{name}.log")
    program = ["-m", "streams.databases"] if command == ["-"] else ["-m", "agents.cli", *command]
    with (log_dir / f"{name}.out").open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, *program],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _CHILDREN.add(process)
    return process


@contextlib.asynccontextmanager
async def kafka_clients(
    settings: Settings, bootstrap: str, group: str
) -> AsyncIterator[tuple[AIOKafkaProducer, AIOKafkaConsumer, AIOKafkaConsumer]]:
    producer = make_producer(bootstrap, settings, max_batch_size=GATEWAY_BATCH_BYTES)
    inbox = make_consumer(
        bootstrap,
        settings,
        group_id=group,
        enable_auto_commit=True,
        idle_fetch_wait_ms=max(settings.idle_fetch_wait_ms, GATEWAY_IDLE_FETCH_WAIT_MS),
    )
    observer = make_consumer(
        bootstrap,
        settings,
        fetch_max_wait_ms=BACKGROUND_FETCH_WAIT_MS,
        idle_fetch_wait_ms=max(settings.idle_fetch_wait_ms, GATEWAY_IDLE_FETCH_WAIT_MS),
    )
    async with contextlib.AsyncExitStack() as stack:  # a failed start closes those started
        for client in (producer, inbox, observer):
            await stack.enter_async_context(client)
        yield producer, inbox, observer


async def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)


@dataclasses.dataclass
class TrafficRun:
    """What a run of simulated traffic leaves: the books, the hubs' journal, what was done."""

    books: Accounting
    done: list[tuple[Disturbance, float]]
    journal: list[JournalEventModel] = dataclasses.field(default_factory=list)
    duties: DeskBooks | None = None


def desk_traffic(settings: Settings, args: argparse.Namespace, simulator: Simulator) -> DeskTraffic:
    """Notices, teams and checks for the simulated side (the IMEST must be enrolled)."""
    world = ScreeningWorld.open(settings)
    keys_dir = Path(settings.keys_dir)
    adapters = simulator.adapters
    directory = next(iter(adapters.values())).directory
    imest = NcbAdapter(load_identity(keys_dir, IMEST), directory, settings.topics)
    checks = (
        check_traffic(
            random.Random(args.seed + 2),
            world,
            ncbs=sorted(adapters),
            team=IMEST,
            rate=args.check_rate,
            hit_share=args.hit_share,
        )
        if args.check_rate > 0
        else None
    )
    return DeskTraffic(
        ncbs=adapters,
        notices=NoticeTraffic(random.Random(args.seed + 3)),
        teams=TeamTraffic(adapters, keys_dir, settings.topics, random.Random(args.seed + 1)),
        books=DeskBooks(),
        rng=random.Random(args.seed + 4),
        world=world,
        checks=checks,
        imest=imest,
        notice_every=args.notice_every,
    )


async def follow_teams(
    bootstrap: str, simulator: Simulator, desks: DeskTraffic, stop: asyncio.Event
) -> None:
    """Read the IMEST's inbox, and each team's from its approval on, as the simulator's."""
    tails: dict[str, TopicTail] = {}
    arrived: list[ReceivedRecord] = []
    try:
        while not stop.is_set():
            teams = [desks.imest] if desks.imest is not None else []
            for adapter in [*teams, *desks.teams.team_adapters()]:
                if adapter.inbox not in tails:
                    simulator.adopt(adapter)
                    tail = TopicTail(
                        bootstrap,
                        [adapter.inbox],
                        arrived.append,
                        fetch_max_wait_ms=BACKGROUND_FETCH_WAIT_MS,
                        pace_ms=TEAM_INBOX_PACE_MS,
                    )
                    await tail.start()
                    tails[adapter.inbox] = tail
            while arrived:
                await simulator.send_all(simulator.on_inbox_record(arrived.pop(0)))
            await asyncio.sleep(0.05)
    finally:
        for tail in tails.values():
            await tail.stop()


async def run_traffic(
    settings: Settings,
    bootstrap: str,
    args: argparse.Namespace,
    *,
    live: bool,
    hubs: dict[str, subprocess.Popen[bytes]] | None = None,
    disturbances: list[Disturbance] | None = None,
    restart: Any = None,
    duties: bool = False,
) -> TrafficRun:
    """Run the simulated NCBs against ``bootstrap`` (and, with ``duties``, the notice, team
    and check traffic); return the books after draining, the hubs' journal events, and
    the disturbances carried out (with their wall times)."""
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
        desks = desk_traffic(settings, args, simulator) if duties else None
        simulator.desks = desks
        observer = Observer(
            topics,
            books,
            settings.max_message_bytes,
            on_control=desks.teams.on_control if desks is not None else None,
        )
        leases = LeaseReader(bootstrap, topics.leases, {topics.keys: simulator.fold_key_entry})
        await leases.start()
        inbox.subscribe(simulator.inboxes)
        observer_consumer.assign(observer.partitions())
        tasks = [
            asyncio.create_task(simulator.read_inboxes(inbox, stop, leases)),
            asyncio.create_task(observer.run(observer_consumer, stop)),
        ]
        if desks is not None:
            tasks.append(asyncio.create_task(follow_teams(bootstrap, simulator, desks, stop)))
        hubs = hubs or {}
        for site, process in hubs.items():
            await _wait_for(
                lambda site=site, process=process: (
                    any(isinstance(e, HubReady) and e.hub == hub_id(site) for e in observer.journal)
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
                    duties_now = (
                        desks.books.summary(observer.journal) if desks is not None else None
                    )
                    view.update(live_table(books, phase, time.monotonic() - started, duties_now))

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
                settled = (
                    not books.outstanding()
                    and not books.undecided()
                    and sum(books.refused.values()) >= expected_dead
                    and (desks is None or desks.books.settled())
                )
                if settled and time.monotonic() - started > args.duration + 1:
                    break
                await asyncio.sleep(0.25)
            refresh("done")
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await leases.stop()
        if desks is not None and desks.world is not None:
            desks.world.close()
    desk_books = desks.books if desks else None
    return TrafficRun(books, done, observer.journal, desk_books)


def demo_plan(settings: Settings, args: argparse.Namespace) -> tuple[Settings, list[Disturbance]]:
    """The demo's settings and hub disturbances from its options, validated as settings are
    (``SettingsError``, ``InvalidSchedule`` naming the option) before anything starts."""
    disturbances = parse_schedule("fail", args.fail_hub, HUB_SITES) + parse_schedule(
        "restore", args.restore_hub, HUB_SITES
    )
    options = {
        "shift_seconds": ("--shift-seconds", args.shift_seconds),
        "clock_scale": ("--clock-scale", args.clock_scale),
        "calendar_scale": ("--calendar-scale", args.calendar_scale),
    }
    return settings.with_options(options), disturbances


async def demo(settings: Settings, args: argparse.Namespace) -> int:
    """The demo until done, SIGINT or SIGTERM; no child process outlives it."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    signalled: list[int] = []

    def on_sigterm() -> None:
        signalled.append(signal.SIGTERM)
        task.cancel()

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    try:
        return await _demo(settings, args)
    except asyncio.CancelledError:
        if signalled:
            raise Terminated("terminated (SIGTERM); every process it started is stopped") from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        stop_children()


async def _demo(settings: Settings, args: argparse.Namespace) -> int:
    settings, disturbances = demo_plan(settings, args)
    run_dir = Path(settings.data_dir) / "demo"
    run_dir.mkdir(parents=True, exist_ok=True)
    configure_logging(settings.log_level, run_dir / "demo.log")
    console = Console()
    console.print(f"[bold]I-24/7 backbone demo[/] — logs and keys under {run_dir.parent}")
    duties = not args.no_duties
    if duties:  # the IMEST's keys must be in the directory the hubs load at start
        keys_dir = Path(settings.keys_dir)
        if not (keys_dir / "directory.json").exists():
            init_all(keys_dir)
        enrol_team(keys_dir, IMEST)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    archive = args.archive or run_dir / f"archive-{stamp}.sqlite3"
    async with broker_for(settings) as bootstrap:
        settings = settings.model_copy(update={"bootstrap": bootstrap})
        report = await provision_all(settings)
        if duties:
            await provision_team_inbox(settings, IMEST)
        console.print(f"broker {bootstrap}; topics: {report}")
        dashboard = None
        if not args.no_dashboard:
            dashboard = start_dashboard(settings, bootstrap, run_dir, args.dashboard_port)
            console.print(
                f"[bold]dashboard[/]: http://127.0.0.1:{args.dashboard_port}/ "
                f"(its log: {run_dir / 'dashboard.out'})"
            )
        try:
            with console.status("building the simulated databases (once per data directory)"):
                if await asyncio.to_thread(build_databases, settings, bootstrap, run_dir):
                    raise RuntimeError(
                        f"building the databases failed; see {run_dir}/databases.out"
                    )
        except BaseException:
            if dashboard is not None:
                terminate(dashboard)
            raise
        archiver = (
            None if args.no_archive else start_archiver(settings, bootstrap, run_dir, archive)
        )
        hubs = {site: start_hub(settings, site, bootstrap, run_dir) for site in HUB_SITES}
        if settings.metrics_port:
            ports = metrics_ports(settings.metrics_port)
            console.print(
                "metrics and probes: "
                + ", ".join(
                    f"{name} http://localhost:{port}/metrics"
                    for name, port in ports.items()
                    if archiver is not None or name != "archiver"
                )
            )
        try:
            run = await run_traffic(
                settings,
                bootstrap,
                args,
                live=not args.no_live,
                hubs=hubs,
                disturbances=disturbances,
                restart=lambda site: start_hub(settings, site, bootstrap, run_dir),
                duties=duties,
            )
        finally:
            for process in hubs.values():
                terminate(process)
            if archiver is not None:
                terminate(archiver)
            if dashboard is not None:
                terminate(dashboard)
    summary = run.books.summary()
    rows = takeovers(run.journal, run.done)
    summary["failovers"] = [dataclasses.asdict(row) for row in rows]
    summary["duty"] = [
        {"at": at, "hub": hub, "reason": reason} for at, hub, reason in duty_changes(run.journal)
    ]
    if run.duties is not None:
        summary.update(run.duties.summary(run.journal))
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
    if summary["undecided"]["total"]:
        console.print(
            f"[red bold]{summary['undecided']['total']} messages neither accepted nor refused[/]"
        )
        return 1
    if summary["rejected"]["misjudged"]:
        console.print("[red bold]spoiled records not refused as expected[/]")
        return 1  # a finding, as a loss is (agents.cli_errors: exit codes)
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
        raise SettingsError("i247 simulate needs a running backbone: set I247_BOOTSTRAP")
    args.drain_timeout = getattr(args, "drain_timeout", 30.0)
    books = (await run_traffic(settings, settings.bootstrap, args, live=False)).books
    summary = books.summary()
    print(json.dumps(summary, indent=2))
    return 1 if summary["lost"]["total"] or summary["undecided"]["total"] else 0
