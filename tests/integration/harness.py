"""A backbone under test: one real hub process on a real broker, and NCB adapters to drive it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from agents.ncb import Inbound, NcbAdapter
from agents.simulator import received_from
from brokers.clients import terminate
from brokers.records import OutboundRecord, ReceivedRecord
from brokers.settings import Settings
from schemas.keys import Directory, PrivateIdentity

__all__ = ["Backbone", "now"]


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Backbone:
    settings: Settings
    bootstrap: str
    directory: Directory
    identities: dict[str, PrivateIdentity]
    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    hub: subprocess.Popen[bytes] | None = None
    producer: AIOKafkaProducer | None = None
    adapters: dict[str, NcbAdapter] = field(default_factory=dict)

    def adapter(self, code: str) -> NcbAdapter:
        if code not in self.adapters:
            self.adapters[code] = NcbAdapter(
                self.identities[code], self.directory, self.settings.topics
            )
        return self.adapters[code]

    def start_hub(self, site: str = "lyon") -> None:
        env = dict(os.environ, **self.env)
        env.update(
            I247_BOOTSTRAP=self.bootstrap,
            I247_TOPIC_PREFIX=self.settings.topic_prefix,
            I247_KEYS_DIR=str(self.settings.keys_dir),
            I247_CLOCK_SCALE=str(self.settings.clock_scale),
            I247_FRESHNESS_SECONDS=str(self.settings.freshness_seconds),
            I247_LOG_FILE=str(self.log_dir / f"hub-{site}.log"),
        )
        with (self.log_dir / f"hub-{site}.out").open("ab") as out:
            self.hub = subprocess.Popen(
                [sys.executable, "-m", "agents.cli", "hub", "--site", site],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill_hub(self) -> None:
        assert self.hub is not None
        self.hub.kill()
        self.hub.wait()

    def stop_hub(self) -> None:
        if self.hub is not None:
            terminate(self.hub, 15)

    async def send(self, record: OutboundRecord) -> None:
        assert self.producer is not None
        await self.producer.send_and_wait(
            record.topic, record.value, key=record.key, headers=list(record.headers)
        )

    async def read(
        self, topics: Iterable[str], *, until: Any, timeout: float = 60.0
    ) -> list[ReceivedRecord]:
        """Read ``topics`` from the start until ``until(records)`` holds or ``timeout``."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=10,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        records: list[ReceivedRecord] = []
        try:
            consumer.assign([TopicPartition(t, 0) for t in topics])
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=100)
                for chunk in batch.values():
                    records.extend(received_from(r) for r in chunk)
                if until(records):
                    break
        finally:
            await consumer.stop()
        return records

    async def wait_ready(self, timeout: float = 90.0) -> None:
        events = await self.read(
            [self.settings.topics.control],
            until=lambda rs: any(b'"hub-ready"' in r.value for r in rs),
            timeout=timeout,
        )
        if not any(b'"hub-ready"' in r.value for r in events):
            raise TimeoutError(f"hub not ready; see {self.log_dir}")

    async def inboxes(
        self, codes: Iterable[str], *, until: Any, timeout: float = 60.0
    ) -> dict[str, list[Inbound]]:
        """Every record of each NCB's inbox, passed through that NCB's adapter."""
        topics = {self.settings.topics.inbox(c): c for c in codes}
        records = await self.read(topics, until=until, timeout=timeout)
        fresh = {
            c: NcbAdapter(self.identities[c], self.directory, self.settings.topics) for c in codes
        }
        opened: dict[str, list[Inbound]] = defaultdict(list)
        for record in records:
            code = topics[record.topic]
            opened[code].append(fresh[code].receive(record))
        return opened


async def settle(seconds: float) -> None:
    await asyncio.sleep(seconds)
