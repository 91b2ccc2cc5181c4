"""``i247 bench``: the backbone's throughput and latency beside a plain aiokafka baseline.

Three parts, one run, one broker:

1. **Per-step costs** in-process (no broker): parse, verify, intake, priority, seal, open.
2. **Baseline**: a plain aiokafka chain with the backbone's shape, two consume-and-forward
   hops (``in -> mid -> out``), on records of the same size as sealed messages.
3. **Backbone**: a real hub process (faust) taking sealed messages from the inbound topic
   through its lanes into NCB inboxes.

Each path runs at a fixed offered load (latency) and at saturation (a preloaded backlog
drained as fast as possible: throughput). Figures are printed and compared as ratios;
nothing here asserts a speed.

Then, on the same broker, the measures the issues ask for, each behind its flag:

4. **Failover** (``--failover-kills N``, default 3; 0 skips): three hubs, the hub on duty
   SIGKILLed N times under steady traffic (``agents.bench_failover``).
5. **Checks** (``--checks-rate R``, default 20; 0 skips): database checks per second and
   answer latency beside a plain request/answer echo (``agents.bench_checks``).
6. **Audit** (``--audit-records N``, default 0 = skip: a million-record build takes
   minutes, e.g. ``make bench BENCH_ARGS="--audit-records 1000000"``): archive, verify and
   replay rates (``agents.bench_audit``).
7. **Broadcast** (``--broadcast-notices N``, default 20; 0 skips; ``--broadcast-rate``,
   default 1/s): worldwide Red Notices through the notice desk, request sent -> the last
   of 196 NCBs opened its copy, beside a plain aiokafka fan-out (``agents.bench_broadcast``).

A part that fails is reported with its reason (and as ``{"error": ...}`` in ``--json``);
the others still run.
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

from agents.bench_audit import bench_audit, print_audit_bench
from agents.bench_broadcast import bench_broadcast, print_broadcast_bench
from agents.bench_checks import bench_checks
from agents.bench_failover import bench_failover, print_failover_bench
from agents.demo import start_hub
from agents.keyring import load_all
from agents.ncb import NcbAdapter
from agents.operations import provision_all
from brokers.access import process_security
from brokers.clients import make_producer, terminate
from brokers.embedded import broker_for
from brokers.logs import configure_logging
from brokers.records import OutboundRecord, ReceivedRecord
from brokers.settings import Settings
from schemas.bodies import MessageBody
from schemas.header import Precedence
from schemas.registry import default_registry
from schemas.sealing import open_sealed, parse_envelope, verify
from streams.dedup import SeenMessages
from streams.intake import IntakePolicy, admit
from streams.priority import assess_priority
from streams.roster import DutyRoster

__all__ = ["bench"]

TEXT = "Identification of suspect via fingerprints; request for criminal record check. " * 10


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
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def as_json(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "seconds": round(self.seconds, 3),
            "msgs_per_s": round(self.rate, 1),
            "p50_ms": self.pct(0.5),
            "p99_ms": self.pct(0.99),
        }


def _time_step(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def step_costs(adapters: dict[str, NcbAdapter], settings: Settings) -> dict[str, float]:
    """Microseconds per call of each step on the hot path."""
    now = datetime.now(UTC)
    fra, deu = adapters["FRA"], adapters["DEU"]
    body = MessageBody(subject="bench", text=TEXT)
    header, record = fra.compose(["DEU"], body, now=now, random_bytes=os.urandom)
    topics = settings.topics
    key = b"FRA"
    sealed = parse_envelope(record.value, max_bytes=settings.max_message_bytes)
    policy = IntakePolicy(max_bytes=settings.max_message_bytes)
    roster = DutyRoster()
    counter = iter(range(10**9))

    def intake_once() -> object:
        seen = SeenMessages(horizon=settings.freshness_seconds)
        received = ReceivedRecord(topics.inbound, 0, next(counter), 0, key, record.value)
        return admit(
            received,
            now=now,
            directory=fra.directory,
            seen=seen,
            roster=roster,
            topics=topics,
            policy=policy,
        )

    return {
        "seal (2 key holders)": _time_step(
            lambda: fra.compose(["DEU"], body, now=now, random_bytes=os.urandom), 300
        ),
        "parse envelope": _time_step(
            lambda: parse_envelope(record.value, max_bytes=settings.max_message_bytes), 2000
        ),
        "verify (digests + Ed25519)": _time_step(
            lambda: verify(sealed, topic=topics.inbound, key=key, directory=fra.directory), 2000
        ),
        "assess priority": _time_step(lambda: assess_priority(header), 5000),
        "intake admit (all checks)": _time_step(intake_once, 2000),
        "open (verify + HPKE + AES-GCM)": _time_step(
            lambda: open_sealed(
                sealed,
                topic=topics.inbound,
                key=key,
                directory=fra.directory,
                identity=deu.identity,
            ),
            1000,
        ),
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
) -> tuple[list[float], float]:
    """Read ``expected`` records from ``topics``: latencies, and seconds from first to last."""
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
        collector = asyncio.create_task(
            _collect(bootstrap, settings, [c], count, 300, _stamp_header)
        )
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


def _sealed_batch(
    adapters: dict[str, NcbAdapter], count: int, now: datetime
) -> list[OutboundRecord]:
    codes = sorted(adapters)
    body = MessageBody(subject="bench", text=TEXT)
    records = []
    for i in range(count):
        sender = adapters[codes[i % len(codes)]]
        recipient = codes[(i * 7 + 3) % len(codes)]
        if recipient == sender.participant:
            recipient = codes[(i * 7 + 4) % len(codes)]
        _, record = sender.compose(
            [recipient], body, now=now, random_bytes=os.urandom, precedence=Precedence.ROUTINE
        )
        records.append(record.with_headers([("bench-sent", b"0")]))
    return records


async def backbone(
    bootstrap: str,
    settings: Settings,
    adapters: dict[str, NcbAdapter],
    count: int,
    rate: float | None,
    run_dir: Path,
    tag: str,
) -> Figures:
    """Sealed messages through a real hub process, inbound to inbox."""
    prefix = f"bench{tag}{uuid.uuid4().hex[:6]}"
    local = settings.model_copy(update={"topic_prefix": prefix, "bootstrap": bootstrap})
    await provision_all(local)
    topics = local.topics
    for adapter in adapters.values():
        adapter.topics = topics
    records = _sealed_batch(adapters, count, datetime.now(UTC))
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
        if rate is None:
            await _offer(producer, records, None, restamp)
            collector = asyncio.create_task(
                _collect(bootstrap, local, inboxes, count, 600, _stamp_header)
            )
            hub = start_hub(local, "lyon", bootstrap, run_dir)
            latencies, seconds = await collector
        else:
            hub = start_hub(local, "lyon", bootstrap, run_dir)
            await _wait_ready(bootstrap, local)
            collector = asyncio.create_task(
                _collect(bootstrap, local, inboxes, count, 600, _stamp_header)
            )
            seconds = await _offer(producer, records, rate, restamp)
            latencies, _ = await collector
    finally:
        if hub is not None:
            terminate(hub)
        await producer.stop()
    return Figures(
        f"backbone (faust hub), {'saturation' if rate is None else f'{rate:.0f}/s'}",
        len(latencies),
        seconds,
        latencies,
    )


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
                if any(b'"hub-ready"' in (r.value or b"") for r in records):
                    return
        raise TimeoutError("the hub did not become ready")
    finally:
        await consumer.stop()


def _render(console: Console, costs: dict[str, float], rows: list[tuple[Figures, Figures]]) -> None:
    steps = Table(title="Per-step cost (µs per call, one core)")
    steps.add_column("step")
    steps.add_column("µs", justify="right")
    for step, micros in costs.items():
        steps.add_row(step, f"{micros:.1f}")
    console.print(steps)
    table = Table(title="Backbone vs plain aiokafka (two hops each, same broker, same run)")
    for column in ("path", "msgs", "msgs/s", "p50 ms", "p99 ms", "throughput vs baseline"):
        table.add_column(column, justify="right" if column != "path" else "left")
    for base, ours in rows:
        for figures in (base, ours):
            ratio = "" if figures is base else f"{ours.rate / base.rate:.2f}×" if base.rate else "-"
            table.add_row(
                figures.name,
                str(figures.messages),
                f"{figures.rate:,.0f}",
                _fmt(figures.pct(0.5)),
                _fmt(figures.pct(0.99)),
                ratio,
            )
    console.print(table)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


async def bench(settings: Settings, args: argparse.Namespace) -> int:
    run_dir = Path(settings.data_dir) / "bench"
    run_dir.mkdir(parents=True, exist_ok=True)
    configure_logging("warning", run_dir / "bench.log")
    console = Console()
    codes = list(default_registry().codes())
    directory, identities = load_all(Path(settings.keys_dir), codes)
    adapters = {c: NcbAdapter(identities[c], directory, settings.topics) for c in codes}
    costs = step_costs(adapters, settings)
    count = int(args.rate * args.duration)
    saturation_count = max(count, 5000)
    results: dict[str, Any] = {"step_costs_us": costs}
    rows: list[tuple[Figures, Figures]] = []
    async with broker_for(settings) as bootstrap:
        console.print(
            f"broker {bootstrap}; offered load {args.rate:.0f}/s for {args.duration:.0f} s; "
            f"saturation backlog {saturation_count}"
        )
        base_fixed = await baseline(bootstrap, settings, count, args.rate, "fixed")
        ours_fixed = await backbone(bootstrap, settings, adapters, count, args.rate, run_dir, "f")
        base_sat = await baseline(bootstrap, settings, saturation_count, None, "sat")
        ours_sat = await backbone(
            bootstrap, settings, adapters, saturation_count, None, run_dir, "s"
        )
        rows = [(base_fixed, ours_fixed), (base_sat, ours_sat)]
        _render(console, costs, rows)
        console.print(
            "Saturation: a preloaded backlog drained as fast as possible; msgs/s counts from "
            "the first delivery to the last, so start-up is excluded; latency there is "
            "time in the backlog."
        )
        results.update({f.name: f.as_json() for pair in rows for f in pair})
        shared = settings.model_copy(update={"bootstrap": bootstrap})
        results.update(await _extra_parts(shared, args, console))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


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
