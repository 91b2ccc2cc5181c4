"""``i247 bench``: the backbone's throughput, CPU and idle cost beside a plain aiokafka
baseline (``docs/performance.md`` says how each figure is made).

One run, one broker:

1. **Per-step costs** in-process (no broker): CPU µs per call of parse, verify, intake,
   priority, plan_delivery, receipt, seal, open (``agents.bench.routing.step_costs``).
2. **Fixed load**: a plain aiokafka chain with the backbone's shape, two consume-and-forward
   hops (``in -> mid -> out``) on records of the size of sealed messages, then a real hub
   process, each offered ``--rate`` msgs/s of pre-sealed records: latency.
3. **Routing path at saturation**: the baseline drains a preloaded backlog; a hub drains a
   pre-sealed backlog (intake -> lane -> inbox + receipt): msgs/s and the ratio (goal
   ≥ 0.5), the hub's CPU per routed message and its per-step breakdown
   (``agents.bench.routing``).
4. **Idle** (``--idle-seconds``, default 30; 0 skips): CPU of the broker, the three hubs,
   the archiver and the bureaus' gateway with no traffic (``agents.bench.idle``);
   ``--idle-only`` runs this part alone.

Then, on the same broker, the measures the other issues ask for, each behind its flag:

5. **Failover** (``--failover-kills N``, default 3; 0 skips): three hubs, the hub on duty
   SIGKILLed N times under steady traffic (``agents.bench.failover``).
6. **Checks** (``--checks-rate R``, default 20; 0 skips): database checks per second and
   answer latency beside a plain request/answer echo (``agents.bench.checks``).
7. **Audit** (``--audit-records N``, default 0 = skip: a million-record build takes
   minutes, e.g. ``make bench BENCH_ARGS="--audit-records 1000000"``): archive, verify and
   replay rates (``agents.bench.audit``).
8. **Broadcast** (``--broadcast-notices N``, default 20; 0 skips; ``--broadcast-rate``,
   default 1/s): worldwide Red Notices through the notice desk, request sent -> the last
   of 196 NCBs opened its copy, beside a plain aiokafka fan-out (``agents.bench.broadcast``).

The idle part and parts 5-8 report a failure with its reason (and as ``{"error": ...}`` in
``--json``); the others still run. Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Console
from rich.table import Table

from agents.bench.audit import bench_audit, print_audit_bench
from agents.bench.broadcast import bench_broadcast, print_broadcast_bench
from agents.bench.checks import bench_checks
from agents.bench.failover import bench_failover, print_failover_bench
from agents.bench.idle import bench_idle, print_idle_bench
from agents.bench.probe import through_path
from agents.bench.routing import (
    ROUTE_CALLS,
    RoutingFigures,
    breakdown,
    client_costs,
    routing_saturation,
    sealed_batch,
    step_costs,
)
from agents.demo.run import build_databases, start_hub
from agents.ncb.adapter import NcbAdapter
from agents.ops.keyring import load_all
from agents.ops.operations import provision_all
from agents.stats import percentile
from brokers.access import process_security
from brokers.clients import make_producer, terminate
from brokers.embedded import broker_for
from brokers.logs import configure_logging
from brokers.records import OutboundRecord
from brokers.settings import Settings
from schemas.journal import HubReady, parse_control_event
from schemas.registry import default_registry

__all__ = ["GOAL_RATIO", "Figures", "baseline", "bench", "routing_json"]

GOAL_RATIO = 0.5  # issue 10: the routing path at half a plain aiokafka loop or better


@dataclass
class Figures:
    name: str
    messages: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float | None:
        return percentile(self.latencies_ms, q)

    def as_json(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "seconds": round(self.seconds, 3),
            "msgs_per_s": round(self.rate, 1),
            "p50_ms": self.pct(0.5),
            "p99_ms": self.pct(0.99),
        }


async def _producer(bootstrap: str, settings: Settings) -> AIOKafkaProducer:
    producer = make_producer(bootstrap, settings)
    await producer.start()
    return producer


async def _collect(
    bootstrap: str,
    settings: Settings,
    topics: list[str],
    expected: int,
    timeout: float,
    stamp: Callable[[Any], float | None],
    probe: tuple[bytes, asyncio.Event] | None = None,
) -> tuple[list[float], float]:
    """Read ``expected`` records from ``topics``: latencies, and seconds from first to last.

    ``probe``: the key of a record sent through the path before the timed load, and the
    event to set when it arrives; it is not counted (``agents.bench.probe.through_path``)."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        **process_security(),
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        max_partition_fetch_bytes=2 * settings.max_message_bytes,
    )
    await consumer.start()
    latencies: list[float] = []
    first = last = 0.0
    deadline = time.monotonic() + timeout
    try:
        while len(latencies) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=100, max_records=5000)
            now = time.time()
            for records in batch.values():
                for record in records:
                    if probe is not None and record.key == probe[0]:
                        probe[1].set()
                        continue
                    sent = stamp(record)
                    if sent is not None:
                        latencies.append((now - sent) * 1000)
                        first = first or now
                        last = now
    finally:
        await consumer.stop()
    return latencies, last - first


async def _forward(
    bootstrap: str, settings: Settings, source: str, target: str, stop: asyncio.Event
) -> None:
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        **process_security(),
        group_id=f"{source}-fwd",
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
    )
    producer = await _producer(bootstrap, settings)
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=50, max_records=2000)
            for records in batch.values():
                for r in records:
                    await producer.send(target, r.value, key=r.key, headers=list(r.headers))
    finally:
        await consumer.stop()
        await producer.stop()


async def _offer(
    producer: AIOKafkaProducer,
    records: list[OutboundRecord],
    rate: float | None,
    restamp: Callable[[OutboundRecord], OutboundRecord] | None = None,
) -> float:
    start = time.monotonic()
    for index, record in enumerate(records):
        if rate:
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        out = restamp(record) if restamp else record
        await producer.send(out.topic, out.value, key=out.key, headers=list(out.headers))
    await producer.flush()
    return time.monotonic() - start


def _stamp_header(record: Any) -> float | None:
    for key, value in record.headers or ():
        if key == "bench-sent":
            return float(value)
    return None


async def baseline(
    bootstrap: str, settings: Settings, count: int, rate: float | None, tag: str
) -> Figures:
    """Plain aiokafka, two forwarding hops, same record size as the backbone's."""
    prefix = f"bench-{tag}-{uuid.uuid4().hex[:6]}"
    a, b, c = f"{prefix}.in", f"{prefix}.mid", f"{prefix}.out"
    payload = os.urandom(1200).hex().encode()[:2400]
    records = [OutboundRecord(a, str(i).encode(), payload) for i in range(count)]
    producer = await _producer(bootstrap, settings)
    stop = asyncio.Event()
    for topic in (a, b, c):
        await producer.send_and_wait(topic, b"warm-up")
    forwarders = []
    if rate is None:  # saturation: preload, then start the forwarders
        stamped = [r.with_headers([("bench-sent", str(time.time()).encode())]) for r in records]
        await _offer(producer, stamped, None)
        collector = asyncio.create_task(
            _collect(bootstrap, settings, [c], count, 300, _stamp_header)
        )
        forwarders = [
            asyncio.create_task(_forward(bootstrap, settings, s, t, stop))
            for s, t in ((a, b), (b, c))
        ]
        latencies, seconds = await collector
    else:
        forwarders = [
            asyncio.create_task(_forward(bootstrap, settings, s, t, stop))
            for s, t in ((a, b), (b, c))
        ]
        await asyncio.sleep(3)
        arrived = asyncio.Event()
        collector = asyncio.create_task(
            _collect(bootstrap, settings, [c], count, 300, _stamp_header, (b"probe", arrived))
        )
        probe = OutboundRecord(a, b"probe", payload, (("bench-sent", b"0"),))
        await through_path(producer, probe, arrived, collector)
        seconds = await _offer(
            producer,
            records,
            rate,
            lambda r: r.with_headers([("bench-sent", str(time.time()).encode())]),
        )
        latencies, _ = await collector
    stop.set()
    await asyncio.gather(*forwarders, return_exceptions=True)
    await producer.stop()
    return Figures(
        f"aiokafka baseline, {'saturation' if rate is None else f'{rate:.0f}/s'}",
        len(latencies),
        seconds,
        latencies,
    )


async def backbone(
    bootstrap: str,
    settings: Settings,
    adapters: dict[str, NcbAdapter],
    count: int,
    rate: float,
    run_dir: Path,
) -> Figures:
    """Pre-sealed messages offered at ``rate`` through a real hub process, inbound to inbox."""
    prefix = f"benchf{uuid.uuid4().hex[:6]}"
    local = settings.model_copy(update={"topic_prefix": prefix, "bootstrap": bootstrap})
    await provision_all(local)
    topics = local.topics
    for adapter in adapters.values():
        adapter.topics = topics
    (probe_id, probe), *batch = sealed_batch(adapters, count + 1, datetime.now(UTC))
    records = [record for _, record in batch]
    inboxes = [topics.inbox(code) for code in adapters]
    producer = await _producer(bootstrap, local)

    def restamp(record: OutboundRecord) -> OutboundRecord:
        headers = tuple((k, v) for k, v in record.headers if k != "bench-sent")
        return OutboundRecord(
            record.topic,
            record.key,
            record.value,
            (*headers, ("bench-sent", str(time.time()).encode())),
        )

    hub = None
    try:
        hub = start_hub(local, "lyon", bootstrap, run_dir)
        await _wait_ready(bootstrap, local)
        arrived = asyncio.Event()
        collector = asyncio.create_task(
            _collect(
                bootstrap, local, inboxes, count, 600, _stamp_header, (probe_id.encode(), arrived)
            )
        )
        await through_path(producer, restamp(probe), arrived, collector)
        seconds = await _offer(producer, records, rate, restamp)
        latencies, _ = await collector
    finally:
        if hub is not None:
            terminate(hub)
        await producer.stop()
    return Figures(f"backbone (one hub), {rate:.0f}/s", len(latencies), seconds, latencies)


async def _wait_ready(bootstrap: str, settings: Settings, timeout: float = 120) -> None:
    consumer = AIOKafkaConsumer(
        settings.topics.control,
        bootstrap_servers=bootstrap,
        **process_security(),
        auto_offset_reset="earliest",
        fetch_max_wait_ms=10,
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                if any(isinstance(parse_control_event(r.value or b""), HubReady) for r in records):
                    return
        raise TimeoutError("the hub did not become ready")
    finally:
        await consumer.stop()


def _render(console: Console, costs: dict[str, float], fixed: tuple[Figures, Figures]) -> None:
    steps = Table(title="Per-step cost (CPU µs per call, in the bench's process)")
    steps.add_column("step")
    steps.add_column("µs", justify="right")
    for step, micros in costs.items():
        steps.add_row(step, f"{micros:.1f}")
    console.print(steps)
    table = Table(title="Backbone vs plain aiokafka at a fixed offered load (two hops each)")
    for column in ("path", "msgs", "msgs/s", "p50 ms", "p99 ms"):
        table.add_column(column, justify="right" if column != "path" else "left")
    for figures in fixed:
        table.add_row(
            figures.name,
            str(figures.messages),
            f"{figures.rate:,.0f}",
            _fmt(figures.pct(0.5)),
            _fmt(figures.pct(0.99)),
        )
    console.print(table)


def routing_json(
    base: Figures, routed: RoutingFigures, per_call_us: dict[str, float]
) -> dict[str, Any]:
    """The routing part's figures: saturation beside the baseline, CPU and its breakdown."""
    ratio = routed.rate / base.rate if base.rate else None
    steps = breakdown(per_call_us, routed.cpu_us_per_message)
    return {
        "baseline_msgs_per_s": round(base.rate, 1),
        "saturation": routed.as_json(),
        "ratio_to_baseline": None if ratio is None else round(ratio, 3),
        "goal_ratio": GOAL_RATIO,
        "hub_cpu_us_per_msg": routed.as_json()["hub_cpu_us_per_msg"],
        "breakdown_us_per_msg": {k: None if v is None else round(v, 1) for k, v in steps.items()},
        "calls_per_msg": ROUTE_CALLS,
    }


def _render_routing(console: Console, routing: dict[str, Any]) -> None:
    sat = routing["saturation"]
    table = Table(title="Routing path at saturation: intake -> lane -> inbox + receipt")
    for column in ("path", "msgs", "s", "msgs/s", "vs baseline"):
        table.add_column(column, justify="left" if column == "path" else "right")
    table.add_row(
        "plain aiokafka, two hops (baseline)", "", "", f"{routing['baseline_msgs_per_s']:,.0f}", ""
    )
    ratio = routing["ratio_to_baseline"]
    table.add_row(
        f"backbone, one hub (receipts by {sat['receipts_by']})",
        f"{sat['routed']}/{sat['messages']}",
        f"{sat['seconds']:.1f}",
        f"{sat['msgs_per_s']:,.0f}",
        "-" if ratio is None else f"{ratio:.2f}× (goal ≥ {GOAL_RATIO}×)",
    )
    console.print(table)
    cpu = Table(title="Hub CPU per routed message (µs), measured total and where it goes")
    for column in ("step", "calls/msg", "µs/msg"):
        cpu.add_column(column, justify="left" if column == "step" else "right")
    for step, micros in routing["breakdown_us_per_msg"].items():
        calls = ROUTE_CALLS.get(step)
        cpu.add_row(step, "" if calls is None else f"{calls:g}", _fmt(micros))
    cpu.add_row(
        "[bold]measured total (hub process CPU)[/]", "", _fmt(routing["hub_cpu_us_per_msg"])
    )
    console.print(cpu)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


async def bench(settings: Settings, args: argparse.Namespace) -> int:
    run_dir = Path(settings.data_dir) / "bench"
    run_dir.mkdir(parents=True, exist_ok=True)
    configure_logging("warning", run_dir / "bench.log")
    console = Console()
    if getattr(args, "idle_only", False):
        return await bench_idle_only(settings, args, console)
    codes = list(default_registry().codes())
    directory, identities = load_all(Path(settings.keys_dir), codes)
    adapters = {c: NcbAdapter(identities[c], directory, settings.topics) for c in codes}
    costs = step_costs(adapters, settings)
    count = int(args.rate * args.duration)
    saturation_count = max(args.saturation_messages, 1)
    results: dict[str, Any] = {"step_costs_us": costs, "machine": _machine()}
    clock = _PartClock(results)
    async with broker_for(settings) as bootstrap:
        console.print(
            f"broker {bootstrap}; offered load {args.rate:.0f}/s for {args.duration:.0f} s; "
            f"saturation backlog {saturation_count}; {_load_text()}"
        )
        shared = settings.model_copy(update={"bootstrap": bootstrap})
        with console.status("building the simulated databases (once per data directory)"):
            if await asyncio.to_thread(build_databases, shared, bootstrap, run_dir):
                raise RuntimeError(f"building the databases failed; see {run_dir}/databases.out")
        fixed = (
            await baseline(bootstrap, settings, count, args.rate, "fixed"),
            await backbone(bootstrap, settings, adapters, count, args.rate, run_dir),
        )
        _render(console, costs, fixed)
        clock.done("fixed load")
        results.update({f.name: f.as_json() for f in fixed})
        base_sat = await baseline(bootstrap, settings, saturation_count, None, "sat")
        results[base_sat.name] = base_sat.as_json()
        sample = sealed_batch(adapters, 1, datetime.now(UTC))[0][1].value
        costs.update(await client_costs(bootstrap, settings, sample))
        routed = await routing_saturation(
            bootstrap, settings, adapters, saturation_count, run_dir, profile=args.profile_hub
        )
        results["routing"] = routing_json(base_sat, routed, costs)
        _render_routing(console, results["routing"])
        clock.done("saturation")
        console.print(
            "Saturation: a pre-sealed backlog drained as fast as possible by one hub started "
            "after it was produced; msgs/s from the first routed message to the last (start-up "
            "excluded); routed = reached its inbox "
            "and its receipt reached the sender's inbox. Steps are timed in this process and "
            "multiplied by their calls per message; other/framework is the rest of the hub's "
            "measured CPU."
        )
        if args.idle_seconds > 0:
            console.print(
                f"[bold]idle[/]: the backbone with no traffic for {args.idle_seconds:g} s"
            )
            try:
                idle = await bench_idle(shared, seconds=args.idle_seconds, console=console)
            except Exception as error:  # one part failing must not lose the others' figures
                results["idle"] = _failed(console, "idle", error)
            else:
                print_idle_bench(idle, console)
                results["idle"] = idle.as_json()
            clock.done("idle")
        results.update(await _extra_parts(shared, args, console))
        clock.done("failover, checks, audit, broadcast")
    results["machine"]["load_average_end"] = _load()
    console.print(
        f"bench took {sum(results['part_seconds'].values()):.0f} s "
        f"({', '.join(f'{k} {v:.0f} s' for k, v in results['part_seconds'].items())}); "
        f"at the end: {_load_text()} (figures on a busy machine are indicative)"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


async def bench_idle_only(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    """``i247 bench --idle-only``: the idle part alone (a minute, not the whole bench), with
    the machine's load beside it: others' work on a shared machine moves the figure."""
    results: dict[str, Any] = {"machine": _machine()}
    seconds = args.idle_seconds or 30.0
    async with broker_for(settings) as bootstrap:
        console.print(f"broker {bootstrap}; idle only, {seconds:g} s; {_load_text()}")
        shared = settings.model_copy(update={"bootstrap": bootstrap})
        idle = await bench_idle(shared, seconds=seconds, console=console)
        print_idle_bench(idle, console)
        results["idle"] = idle.as_json()
    results["machine"]["load_average_end"] = _load()
    console.print(f"at the end: {_load_text()}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


class _PartClock:
    """Seconds each part took, in ``results["part_seconds"]``: keeps ``make bench``'s
    length in view."""

    def __init__(self, results: dict[str, Any]) -> None:
        self.parts: dict[str, float] = results.setdefault("part_seconds", {})
        self.start = time.monotonic()

    def done(self, part: str) -> None:
        now = time.monotonic()
        self.parts[part] = round(now - self.start, 1)
        self.start = now


def _load() -> list[float] | None:
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _load_text() -> str:
    load = _load()
    return f"{os.cpu_count()} cores, load average {load} (1, 5, 15 min)"


def _machine() -> dict[str, Any]:
    """The machine the figures were made on: others' load moves every figure."""
    return {"cpus": os.cpu_count(), "load_average_start": _load()}


async def _extra_parts(
    settings: Settings, args: argparse.Namespace, console: Console
) -> dict[str, Any]:
    """Failover, checks, audit and broadcast, each if asked for; a failure is reported."""
    results: dict[str, Any] = {}
    if args.failover_kills > 0:
        console.print(f"[bold]failover[/]: the hub on duty SIGKILLed ×{args.failover_kills}")
        try:
            failover = await bench_failover(
                settings,
                kills=args.failover_kills,
                rate=args.failover_rate,
                ttl_ms=args.failover_ttl_ms,
                console=console,
            )
        except Exception as error:  # one part failing must not lose the others' figures
            results["failover"] = _failed(console, "failover", error)
        else:
            print_failover_bench(failover, console)
            results["failover"] = failover.as_json()
    if args.checks_rate > 0:
        console.print(f"[bold]checks[/]: {args.checks_rate:g}/s for {args.duration:g} s")
        try:
            checks = await bench_checks(settings, args.checks_rate, args.duration)
        except Exception as error:
            results["checks"] = _failed(console, "checks", error)
        else:
            _render_checks(console, checks)
            results["checks"] = checks
    if args.audit_records > 0:
        console.print(f"[bold]audit[/]: a {args.audit_records:,}-record archive")
        try:
            audit = await bench_audit(settings, records=args.audit_records, console=console)
        except Exception as error:
            results["audit"] = _failed(console, "audit", error)
        else:
            print_audit_bench(audit, console)
            results["audit"] = audit.as_json()
    if args.broadcast_notices > 0:
        console.print(
            f"[bold]broadcast[/]: {args.broadcast_notices} worldwide Red Notices at "
            f"{args.broadcast_rate:g}/s"
        )
        try:
            broadcast = await bench_broadcast(
                settings, notices=args.broadcast_notices, rate=args.broadcast_rate
            )
        except Exception as error:
            results["broadcast"] = _failed(console, "broadcast", error)
        else:
            print_broadcast_bench(broadcast, console)
            results["broadcast"] = broadcast
    return results


def _failed(console: Console, part: str, error: Exception) -> dict[str, str]:
    reason = f"{type(error).__name__}: {error}"
    console.print(f"[red]{part} not measured[/]: {reason} (logs under <data dir>/bench)")
    return {"error": reason}


def _render_checks(console: Console, checks: dict[str, Any]) -> None:
    table = Table(title="Database checks vs a plain aiokafka request/answer echo")
    for column in ("path", "asked", "answered", "per s", "p50 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for label, key in (("aiokafka echo baseline", "baseline"), ("backbone checks", "checks")):
        run = checks[key]
        table.add_row(
            label,
            str(run["asked"]),
            str(run["answered"]),
            f"{run['checks_per_s']:,.0f}",
            _fmt(run["p50_ms"]),
            _fmt(run["p99_ms"]),
        )
    console.print(table)
