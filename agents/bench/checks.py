"""Database checks under sustained load: checks per second and answer latency, beside a
plain aiokafka request/answer echo on the same broker.

Theory of operation: ``bench_checks(settings, rate, duration)`` starts (or uses) a
broker, provisions a fresh prefix, starts one hub process (databases at
``settings.db_scale``) and waits for it. Four NCBs then send single travel-document checks
to ``ccc`` at ``rate`` a second for ``duration`` seconds. Latency is send -> the
``check-answer`` read from the asker's inbox, matched by correlation id (read from the
envelope header, in clear). Every check is a miss: agents do not open the databases
(layers), so the hub builds them at start if missing (a full-size first build takes about
30 s before the hub is ready; not timed). The baseline is the same shape in plain
aiokafka: a request topic, one echo consumer answering on an answer topic, same offered
rate and record size, no sealing. One check goes through the hub first and is not counted
(``agents.bench.probe``): the timed checks start on a live path. Nothing here asserts a
speed.

Worked example: ``await bench_checks(Settings(db_scale=0.01), rate=50, duration=10)``
returns ``{"checks": {"asked": 500, "answered": 500, "checks_per_s": ..., "p50_ms": ...,
"p99_ms": ...}, "baseline": {...}}``.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from agents.bench.probe import through_path
from agents.ncb.adapter import NcbAdapter
from agents.ops.keyring import load_all
from agents.ops.operations import provision_all
from agents.stats import percentile
from brokers.access import process_security
from brokers.clients import make_producer, terminate
from brokers.embedded import broker_for
from brokers.settings import Settings
from schemas.checks import CheckRequest, TravelDocumentItem
from schemas.errors import RejectedMessage
from schemas.journal import HubReady, parse_control_event
from schemas.sealing import parse_envelope

__all__ = ["bench_checks"]

ASKERS = ("FRA", "DEU", "ITA", "ESP")


@dataclass
class Run:
    asked: int
    seconds: float
    latencies_ms: list[float]

    def as_json(self) -> dict[str, Any]:
        answered = len(self.latencies_ms)
        return {
            "asked": self.asked,
            "answered": answered,
            "seconds": round(self.seconds, 3),
            "checks_per_s": round(answered / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": percentile(self.latencies_ms, 0.5, digits=2),
            "p99_ms": percentile(self.latencies_ms, 0.99, digits=2),
        }


async def bench_checks(settings: Settings, rate: float, duration: float) -> dict[str, Any]:
    """Checks through a real hub and the plain-aiokafka baseline; see the module docstring."""
    async with broker_for(settings) as bootstrap:
        local = settings.model_copy(
            update={"bootstrap": bootstrap, "topic_prefix": f"chk{uuid.uuid4().hex[:8]}"}
        )
        count = max(1, int(rate * duration))
        baseline = await _baseline(local, bootstrap, count, rate)
        checks = await _backbone(local, bootstrap, count, rate)
    return {"checks": checks.as_json(), "baseline": baseline.as_json()}


def _requests(count: int) -> list[tuple[str, CheckRequest]]:
    """Single travel-document checks, all misses (agents do not open the databases)."""
    rng = random.Random(247)
    out = []
    for i in range(count):
        asker = ASKERS[i % len(ASKERS)]
        number = f"Z{rng.randrange(10**9):09d}"
        item = TravelDocumentItem(number=number, issuing_country=asker)
        out.append((asker, CheckRequest(correlation_id=f"bench-{i}", asker=asker, items=(item,))))
    return out


async def _backbone(local: Settings, bootstrap: str, count: int, rate: float) -> Run:
    await provision_all(local)
    directory, identities = load_all(Path(local.keys_dir), list(ASKERS))
    adapters = {c: NcbAdapter(identities[c], directory, local.topics) for c in ASKERS}
    (probe_asker, probe), *requests = _requests(count + 1)
    run_dir = Path(local.data_dir) / "bench"
    run_dir.mkdir(parents=True, exist_ok=True)
    hub = _start_hub(local, bootstrap, run_dir)
    producer = make_producer(bootstrap, local)
    await producer.start()
    sent: dict[str, float] = {}
    try:
        await _wait_ready(bootstrap, local)
        inboxes = [local.topics.inbox(c) for c in ASKERS]
        arrived = asyncio.Event()
        collector = asyncio.create_task(
            _collect(bootstrap, local, inboxes, sent, count, (probe.correlation_id, arrived))
        )
        _, first = adapters[probe_asker].compose(
            ["ccc"], probe, now=datetime.now(UTC), random_bytes=os.urandom
        )
        await through_path(producer, first, arrived, collector)
        start = time.monotonic()
        for index, (asker, request) in enumerate(requests):
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            _, record = adapters[asker].compose(
                ["ccc"], request, now=datetime.now(UTC), random_bytes=os.urandom
            )
            sent[request.correlation_id] = time.time()
            await producer.send(
                record.topic, record.value, key=record.key, headers=list(record.headers)
            )
        await producer.flush()
        latencies, seconds = await collector
    finally:
        await producer.stop()
        terminate(hub)
    return Run(count, seconds, latencies)


async def _collect(
    bootstrap: str,
    local: Settings,
    topics: list[str],
    sent: dict[str, float],
    count: int,
    probe: tuple[str, asyncio.Event],
) -> tuple[list[float], float]:
    """Latencies of the check answers read from ``topics``, and seconds first to last;
    the answer to ``probe``'s correlation id sets its event and is not counted."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        **process_security(),
        auto_offset_reset="earliest",
        fetch_max_wait_ms=local.fetch_max_wait_ms,
    )
    await consumer.start()
    latencies: list[float] = []
    first = last = 0.0
    deadline = time.monotonic() + 120 + count / 10
    try:
        while len(latencies) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=100, max_records=5000)
            now = time.time()
            for records in batch.values():
                for record in records:
                    try:
                        header = parse_envelope(
                            record.value, max_bytes=local.max_message_bytes
                        ).header
                    except RejectedMessage:
                        continue
                    if header.message_type.value != "check-answer":
                        continue
                    if header.correlation_id == probe[0]:
                        probe[1].set()
                        continue
                    asked_at = sent.get(header.correlation_id or "")
                    if asked_at is not None:
                        latencies.append((now - asked_at) * 1000)
                        first = first or now
                        last = now
    finally:
        await consumer.stop()
    return latencies, last - first


async def _baseline(local: Settings, bootstrap: str, count: int, rate: float) -> Run:
    """Plain aiokafka: request topic -> one echo consumer -> answer topic."""
    requests, answers = f"{local.topic_prefix}.base.req", f"{local.topic_prefix}.base.ans"
    producer = make_producer(bootstrap, local)
    await producer.start()
    for topic in (requests, answers):
        await producer.send_and_wait(topic, b"warm-up")
    stop = asyncio.Event()
    echo = asyncio.create_task(_echo(bootstrap, local, requests, answers, stop))
    consumer = AIOKafkaConsumer(
        answers, bootstrap_servers=bootstrap, auto_offset_reset="latest",
        **process_security(),
        fetch_max_wait_ms=local.fetch_max_wait_ms,
    )  # fmt: skip
    await consumer.start()
    await asyncio.sleep(2)
    payload = os.urandom(1200).hex().encode()
    sent: dict[bytes, float] = {}
    latencies: list[float] = []
    first = last = 0.0

    async def collect() -> None:
        nonlocal first, last
        deadline = time.monotonic() + 120 + count / 10
        while len(latencies) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=100, max_records=5000)
            now = time.time()
            for records in batch.values():
                for record in records:
                    if record.key in sent:
                        latencies.append((now - sent[record.key]) * 1000)
                        first = first or now
                        last = now

    collector = asyncio.create_task(collect())
    start = time.monotonic()
    for index in range(count):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        key = f"req-{index}".encode()
        sent[key] = time.time()
        await producer.send(requests, payload, key=key)
    await producer.flush()
    await collector
    stop.set()
    await asyncio.gather(echo, return_exceptions=True)
    await consumer.stop()
    await producer.stop()
    return Run(count, last - first, latencies)


async def _echo(
    bootstrap: str, local: Settings, source: str, target: str, stop: asyncio.Event
) -> None:
    consumer = AIOKafkaConsumer(
        source, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        **process_security(),
        fetch_max_wait_ms=local.fetch_max_wait_ms,
    )  # fmt: skip
    producer = make_producer(bootstrap, local)
    await consumer.start()
    await producer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=50, max_records=2000)
            for records in batch.values():
                for record in records:
                    await producer.send(
                        target, b"answer:" + (record.value or b"")[:64], key=record.key
                    )
    finally:
        await consumer.stop()
        await producer.stop()


def _start_hub(local: Settings, bootstrap: str, run_dir: Path) -> subprocess.Popen[bytes]:
    hub = local.replace(bootstrap=bootstrap)
    env = os.environ | hub.to_env(log_file=run_dir / "hub-checks.log")
    with (run_dir / "hub-checks.out").open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "agents.cli", "hub", "--site", "lyon"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def _wait_ready(bootstrap: str, local: Settings, timeout: float = 180) -> None:
    consumer = AIOKafkaConsumer(
        local.topics.control, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        **process_security(),
        fetch_max_wait_ms=10,
    )  # fmt: skip
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            read = (parse_control_event(r.value or b"") for rs in batch.values() for r in rs)
            if any(isinstance(event, HubReady) for event in read):
                return
        raise TimeoutError("the hub did not become ready; see <data dir>/bench/hub-checks.log")
    finally:
        await consumer.stop()
