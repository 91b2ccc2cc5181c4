"""A FLASH message behind a routine flood: how long it takes to reach its recipient.

``python -m agents.bench.flood --flood 100000`` seals ``--flood`` ROUTINE messages (senders
round the world, all to ITA, so the flood fills every inbound partition) in ``--workers``
processes, starts an embedded broker (or uses ``I247_BOOTSTRAP``) and one hub, sends one
FLASH urgent request from FRA to DEU on the idle backbone (the baseline, ``--settle`` s
after the hub is ready), then writes the
whole flood to the inbound topic as fast as the producer takes it and, the moment the last
flood record is acknowledged, one more FLASH. It reports the FLASH latency (its inbox
record's broker timestamp minus the time it was sent), how many flood messages were
delivered after it, and how long the flood took to drain. Sealing is timed apart: it is
the sender's cost, not the backbone's. The hub runs with a one-hour freshness window so a
flood sealed minutes before it is routed is not refused as stale.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from agents.ncb.adapter import NcbAdapter
from agents.ops.keyring import load_all
from agents.ops.operations import provision_all
from brokers.clients import make_producer, terminate
from brokers.embedded import broker_for
from brokers.logs import configure_logging
from brokers.settings import Settings
from schemas.bodies import MessageBody, UrgentRequestBody
from schemas.header import HeaderFlag, Precedence
from schemas.journal import HubReady, parse_control_event
from schemas.registry import default_registry

__all__ = ["FloodFigures", "bench_flood", "main", "seal_flood"]

FLOODED, URGENT, SENDER = "ITA", "DEU", "FRA"
Sealed = tuple[bytes, bytes]  # (key, value)


@dataclass(frozen=True, slots=True)
class FloodFigures:
    """What one run measured; times in seconds, latencies in milliseconds."""

    flood: int
    seal_seconds: float
    seal_workers: int
    produce_seconds: float
    idle_flash_ms: float
    flash_ms: float
    flood_delivered_before_flash: int
    flood_delivered_after_flash: int
    drain_seconds: float | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _seal_chunk(keys_dir: str, start: int, count: int, prefix: str) -> list[Sealed]:
    codes = [c for c in default_registry().codes() if c not in (FLOODED, URGENT)]
    directory, identities = load_all(Path(keys_dir), codes)
    settings = Settings(topic_prefix=prefix)
    adapters = {c: NcbAdapter(identities[c], directory, settings.topics) for c in codes}
    body = MessageBody(subject="flood", text="routine traffic " * 20)
    sealed = []
    for i in range(start, start + count):
        _, record = adapters[codes[i % len(codes)]].compose(
            [FLOODED], body, now=datetime.now(UTC), random_bytes=os.urandom
        )
        sealed.append((record.key or b"", record.value))
    return sealed


def seal_flood(keys_dir: Path, count: int, prefix: str, workers: int) -> list[Sealed]:
    """``count`` sealed ROUTINE records to ITA, sealed in ``workers`` processes."""
    load_all(keys_dir, [SENDER])  # makes the keyring once, before the workers read it
    chunk = -(-count // workers)
    with ProcessPoolExecutor(workers) as pool:
        parts = pool.map(
            _seal_chunk,
            [str(keys_dir)] * workers,
            range(0, count, chunk),
            [min(chunk, count - s) for s in range(0, count, chunk)],
            [prefix] * workers,
        )
        return [record for part in parts for record in part]


def _start_hub(settings: Settings, bootstrap: str, log_dir: Path) -> subprocess.Popen[bytes]:
    hub = settings.replace(bootstrap=bootstrap, freshness_seconds=3600)
    env = os.environ | hub.to_env(log_file=log_dir / "hub-lyon.log")
    with (log_dir / "hub-lyon.out").open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "agents.cli", "hub", "--site", "lyon"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def _until_ready(consumer: AIOKafkaConsumer, hub: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if hub.poll() is not None:
            raise RuntimeError(f"the hub exited with {hub.returncode} during start-up")
        for records in (await consumer.getmany(timeout_ms=200)).values():
            if any(isinstance(parse_control_event(r.value or b""), HubReady) for r in records):
                return
    raise TimeoutError("the hub was not ready in 180 s")


async def bench_flood(
    settings: Settings,
    flood: list[Sealed],
    seal_seconds: float,
    workers: int,
    prefix: str,
    settle: float = 10.0,
) -> FloodFigures:
    """Run the measure on ``settings.bootstrap`` (or an embedded broker) with ``flood``."""
    log_dir = Path(settings.data_dir) / "bench" / "flood"
    log_dir.mkdir(parents=True, exist_ok=True)
    async with broker_for(settings) as bootstrap:
        local = settings.model_copy(update={"topic_prefix": prefix, "bootstrap": bootstrap})
        await provision_all(local)
        topics = local.topics
        _, identities = load_all(Path(local.keys_dir), [SENDER])
        directory = load_all(Path(local.keys_dir), [])[0]
        fra = NcbAdapter(identities[SENDER], directory, topics)
        control = AIOKafkaConsumer(
            topics.control, bootstrap_servers=bootstrap, auto_offset_reset="earliest"
        )
        watch = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=50)
        producer = make_producer(local, linger_ms=20, max_batch_size=1_048_576)
        hub = _start_hub(local, bootstrap, log_dir)
        await control.start()
        await watch.start()
        await producer.start()
        try:
            await _until_ready(control, hub)
            await asyncio.sleep(settle)  # lanes of absent hubs are taken over after a TTL
            urgent, flooded = (
                TopicPartition(topics.inbox(URGENT), 0),
                TopicPartition(topics.inbox(FLOODED), 0),
            )
            watch.assign([urgent, flooded])
            await watch.seek_to_beginning(urgent, flooded)

            async def flash() -> tuple[str, float]:
                header, record = fra.compose(
                    [URGENT],
                    UrgentRequestBody(subject="Hostage taking", situation="armed", text="Now"),
                    now=datetime.now(UTC),
                    random_bytes=os.urandom,
                    precedence=Precedence.FLASH,
                    flags=[HeaderFlag.THREAT_TO_LIFE],
                )
                sent = time.time()
                await producer.send_and_wait(record.topic, record.value, key=record.key)
                return header.message_id, sent

            idle_id, idle_sent = await flash()
            delivered: dict[str, int] = {}
            flood_times: list[int] = []

            async def drain(stop_at: int, deadline: float) -> None:
                while time.monotonic() < deadline and (
                    len(flood_times) < stop_at or len(delivered) < 2
                ):
                    for tp, records in (await watch.getmany(timeout_ms=500)).items():
                        for r in records:
                            if tp == urgent:
                                delivered[(r.key or b"").decode()] = r.timestamp
                            else:
                                flood_times.append(r.timestamp)
                    if hub.poll() is not None:
                        raise RuntimeError(f"the hub exited with {hub.returncode}; see {log_dir}")

            await drain(0, time.monotonic() + 60)  # the idle FLASH first
            started = time.time()
            reader = asyncio.create_task(drain(len(flood), time.monotonic() + 1800))
            for key, value in flood:
                await producer.send(topics.inbound, value, key=key)
            await producer.flush()
            produced = time.time() - started
            flash_id, flash_sent = await flash()
            await reader
        finally:
            terminate(hub)
            for client in (producer, watch, control):
                await client.stop()
    if flash_id not in delivered:
        raise RuntimeError(f"the FLASH behind the flood was not delivered; see {log_dir}")
    flash_at = delivered[flash_id]
    return FloodFigures(
        flood=len(flood),
        seal_seconds=round(seal_seconds, 1),
        seal_workers=workers,
        produce_seconds=round(produced, 1),
        idle_flash_ms=round(delivered[idle_id] - idle_sent * 1000, 1),
        flash_ms=round(flash_at - flash_sent * 1000, 1),
        flood_delivered_before_flash=sum(t <= flash_at for t in flood_times),
        flood_delivered_after_flash=sum(t > flash_at for t in flood_times),
        drain_seconds=(
            round(max(flood_times) / 1000 - started, 1) if len(flood_times) == len(flood) else None
        ),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.bench.flood", description=__doc__)
    parser.add_argument("--flood", type=int, default=100_000, help="routine messages (100000)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="sealers")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds after hub-ready")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    configure_logging("warning", Path(settings.data_dir) / "bench-flood.log")
    prefix = f"flood{uuid.uuid4().hex[:6]}"
    began = time.perf_counter()
    flood = seal_flood(Path(settings.keys_dir), args.flood, prefix, args.workers)
    sealed = time.perf_counter() - began
    print(f"sealed {len(flood)} records in {sealed:.1f} s with {args.workers} process(es)")
    figures = asyncio.run(bench_flood(settings, flood, sealed, args.workers, prefix, args.settle))
    text = json.dumps(figures.as_json(), indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
