"""Process CPU for the bench, and the backbone's idle cost.

The hub's internals are being rewritten, so the bench measures through processes: the CPU
time (user + system) of a process and all its descendants, read with psutil.

The idle part (``bench_idle``) starts what the demo starts, the three hubs, the archiver and
the bureaus' gateway (``i247 simulate`` at a negligible rate: its pump sends one message at
start, then nothing), waits until every hub is ready and a settling time has passed, then
reads each process's CPU, and the broker's (found by its listening port), over ``seconds``
with no traffic. The figure is a share of one core: 100% is one core busy throughout.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

from agents.demo.run import build_databases, start_archiver, start_gateway, start_hub
from agents.ops.keyring import init_all
from agents.ops.operations import provision_all
from brokers.clients import terminate
from brokers.settings import Settings
from brokers.tail import TopicTail
from schemas.journal import HubReady, parse_control_event
from schemas.participants import HUB_SITES

__all__ = [
    "IDLE_TARGET_PERCENT",
    "IdleFigures",
    "ProcessIdle",
    "bench_idle",
    "broker_pid",
    "cpu_percent",
    "print_idle_bench",
    "tree_cpu_seconds",
]

IDLE_TARGET_PERCENT = 10.0  # issue 10: the broker and every backbone process, together
GATEWAY = "bureaus' gateway"


def tree_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` and its living descendants; None if it is gone."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total += times.user + times.system
    return total


def cpu_percent(cpu_before: float | None, cpu_after: float | None, wall_s: float) -> float | None:
    """CPU seconds spent over ``wall_s`` as a share of one core, in percent."""
    if cpu_before is None or cpu_after is None or wall_s <= 0:
        return None
    return max(0.0, cpu_after - cpu_before) / wall_s * 100


def broker_pid(bootstrap: str) -> int | None:
    """The local process listening on the bootstrap's port (the embedded Tansu, or a broker
    run by hand on this machine); None for a remote or containerised broker."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    if host not in ("127.0.0.1", "localhost", "0.0.0.0", "::1", "[::1]", ""):  # noqa: S104
        return None
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return None
    for connection in connections:
        if (
            connection.status == psutil.CONN_LISTEN
            and connection.laddr
            and str(connection.laddr.port) == port
            and connection.pid is not None
        ):
            return connection.pid
    return None


@dataclass(frozen=True)
class ProcessIdle:
    """One process's CPU over the idle window."""

    name: str
    pid: int | None
    cpu_percent: float | None
    backbone: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pid": self.pid,
            "cpu_percent": None if self.cpu_percent is None else round(self.cpu_percent, 2),
            "backbone": self.backbone,
        }


@dataclass(frozen=True)
class IdleFigures:
    """Every measured process over ``seconds`` of no traffic."""

    seconds: float
    processes: tuple[ProcessIdle, ...]

    def total(self, *, backbone_only: bool) -> float:
        """Sum of the measured shares (unmeasured processes count as 0, and are listed)."""
        return sum(p.cpu_percent or 0.0 for p in self.processes if p.backbone or not backbone_only)

    def as_json(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 2),
            "processes": [p.as_json() for p in self.processes],
            "backbone_total_percent": round(self.total(backbone_only=True), 2),
            "total_percent": round(self.total(backbone_only=False), 2),
            "target_percent": IDLE_TARGET_PERCENT,
            "unmeasured": [p.name for p in self.processes if p.cpu_percent is None],
        }


def measure_idle(
    pids: Mapping[str, int | None], seconds: float, gateway: str = GATEWAY
) -> IdleFigures:
    """Sample each process tree's CPU now and ``seconds`` later (blocking; no traffic)."""
    before = {name: tree_cpu_seconds(pid) if pid else None for name, pid in pids.items()}
    start = time.monotonic()
    time.sleep(seconds)
    after = {name: tree_cpu_seconds(pid) if pid else None for name, pid in pids.items()}
    wall = time.monotonic() - start
    return IdleFigures(
        wall,
        tuple(
            ProcessIdle(name, pid, cpu_percent(before[name], after[name], wall), name != gateway)
            for name, pid in pids.items()
        ),
    )


async def bench_idle(
    settings: Settings,
    *,
    seconds: float = 30.0,
    settle: float = 5.0,
    gateway: bool = True,
    console: Console | None = None,
) -> IdleFigures:
    """Start the backbone on ``settings.bootstrap``, let it settle, measure it idle."""
    bootstrap = settings.bootstrap
    if not bootstrap:
        raise ValueError("bench_idle needs settings.bootstrap (the broker to measure)")
    log_dir = Path(settings.data_dir) / "bench" / "idle"
    log_dir.mkdir(parents=True, exist_ok=True)
    if not (Path(settings.keys_dir) / "directory.json").exists():
        init_all(Path(settings.keys_dir))
    local = settings.model_copy(update={"topic_prefix": f"idle{uuid.uuid4().hex[:8]}"})
    await provision_all(local)
    if await asyncio.to_thread(build_databases, local, bootstrap, log_dir):
        raise RuntimeError(f"building the databases failed; see {log_dir}/databases.out")
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        processes["archiver"] = start_archiver(
            local, bootstrap, log_dir, log_dir / f"archive-{local.topic_prefix}.sqlite3"
        )
        for site in HUB_SITES:
            processes[f"hub {site}"] = start_hub(local, site, bootstrap, log_dir)
        if gateway:
            processes[GATEWAY] = start_gateway(local, bootstrap, log_dir)
        await _wait_ready(local, processes, log_dir)
        if console is not None:
            console.print(f"idle: backbone ready; settling {settle:g} s, measuring {seconds:g} s")
        await asyncio.sleep(settle)
        pids: dict[str, int | None] = {"broker": broker_pid(bootstrap)}
        pids.update({name: process.pid for name, process in processes.items()})
        figures = await asyncio.to_thread(measure_idle, pids, seconds)
        gone = [name for name, process in processes.items() if process.poll() is not None]
        if gone:
            raise RuntimeError(f"{', '.join(gone)} exited during the idle window; see {log_dir}")
        return figures
    finally:
        for process in processes.values():
            terminate(process)


async def _wait_ready(
    local: Settings, processes: Mapping[str, subprocess.Popen[bytes]], log_dir: Path
) -> None:
    """Until each hub has journalled ``hub-ready``; the tail is stopped before measuring."""
    ready: set[str] = set()

    def note(record: Any) -> None:
        event = parse_control_event(record.value or b"")
        if isinstance(event, HubReady):
            ready.add(event.hub)

    tail = TopicTail(local.bootstrap or "", [local.topics.control], note)
    await tail.start()
    try:
        deadline = time.monotonic() + 180
        wanted = {f"hub:{site}" for site in HUB_SITES}
        while not wanted <= ready:
            dead = [name for name, process in processes.items() if process.poll() is not None]
            if dead:
                raise RuntimeError(f"{dead[0]} exited during start-up; see {log_dir}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"hubs not ready in 180 s: {sorted(wanted - ready)}")
            await asyncio.sleep(0.1)
    finally:
        await tail.stop()


def print_idle_bench(figures: IdleFigures, console: Console) -> None:
    table = Table(title=f"Idle cost: CPU over {figures.seconds:.0f} s with no traffic")
    table.add_column("process")
    table.add_column("pid", justify="right")
    table.add_column("% of one core", justify="right")
    for process in figures.processes:
        share = "-" if process.cpu_percent is None else f"{process.cpu_percent:.1f}"
        label = process.name if process.backbone else f"{process.name} (not backbone)"
        table.add_row(label, str(process.pid or "-"), share)
    backbone = figures.total(backbone_only=True)
    table.add_row(
        "backbone total (broker, hubs, archiver)",
        "",
        f"{backbone:.1f} (target ≤ {IDLE_TARGET_PERCENT:g})",
    )
    table.add_row("total", "", f"{figures.total(backbone_only=False):.1f}")
    console.print(table)
