"""A backbone under test: one real hub process on a real broker, and NCB adapters to drive it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from agents.ncb.adapter import Inbound, NcbAdapter
from agents.ops.operations import provision_all
from agents.sim.simulator import received_from
from brokers.clients import terminate
from brokers.records import OutboundRecord, ReceivedRecord
from brokers.settings import Settings
from schemas.keys import Directory, PrivateIdentity
from schemas.leases import LeaseBook, LeaseRecord, LeaseRefused

__all__ = ["Backbone", "now", "running"]


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
    hubs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    producer: AIOKafkaProducer | None = None
    adapters: dict[str, NcbAdapter] = field(default_factory=dict)

    def adapter(self, code: str) -> NcbAdapter:
        if code not in self.adapters:
            self.adapters[code] = NcbAdapter(
                self.identities[code], self.directory, self.settings.topics
            )
        return self.adapters[code]

    def start_hub(self, site: str = "lyon", **extra_env: str) -> None:
        hub = self.settings.replace(bootstrap=self.bootstrap)
        log_file = self.log_dir / f"hub-{site}.log"
        env = os.environ | hub.to_env(log_file=log_file) | self.env | extra_env
        with (self.log_dir / f"hub-{site}.out").open("ab") as out:
            self.hubs[site] = subprocess.Popen(
                [sys.executable, "-m", "agents.cli", "hub", "--site", site],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill_hub(self, site: str = "lyon") -> None:
        process = self.hubs.pop(site)
        process.kill()
        process.wait()

    def signal_hub(self, site: str, signum: int) -> None:
        self.hubs[site].send_signal(signum)

    def stop_hub(self) -> None:
        for process in self.hubs.values():
            if process.poll() is None:
                process.send_signal(15)
        for site in list(self.hubs):
            terminate(self.hubs.pop(site), 15)

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

    async def read_all(self, topics: Iterable[str]) -> list[ReceivedRecord]:
        """Every record of ``topics`` from the start, up to now.

        A partition is done once a record written after the call is read (journals the
        hubs keep writing to), or, for a quiet one, once it is past the end offset taken
        at the start and two fetches in a row came back empty (a slow start under load is
        not the end of the log); five empty fetches end it anyway, since Tansu's end
        offsets are not to be trusted.
        """
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100
        )
        await consumer.start()
        records: list[ReceivedRecord] = []
        try:
            partitions = [TopicPartition(t, 0) for t in topics]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            started_ms = time.time() * 1000
            done: set[TopicPartition] = set()
            empty = 0  # fetches in a row that brought nothing
            while len(done) < len(partitions) and empty < 5:
                batch = await consumer.getmany(timeout_ms=1000)
                for tp, chunk in batch.items():
                    records.extend(received_from(r) for r in chunk)
                    if chunk[-1].timestamp >= started_ms:  # a live journal: up to now is read
                        done.add(tp)
                empty = 0 if batch else empty + 1
                if empty >= 2:
                    for tp in partitions:
                        if await consumer.position(tp) >= ends[tp]:
                            done.add(tp)
        finally:
            await consumer.stop()
        return records

    async def journal(self, *, until: Any = None, timeout: float = 0.5) -> list[dict[str, Any]]:
        """The control topic's JSON events, read from the start (all of them by default)."""
        if until is None:
            return [_event(r) for r in await self.read_all([self.settings.topics.control])]
        records = await self.read(
            [self.settings.topics.control],
            until=lambda rs: until([_event(r) for r in rs]),
            timeout=timeout,
        )
        return [_event(r) for r in records]

    async def wait_ready(self, site: str = "lyon", timeout: float = 90.0) -> None:
        def ready(events: list[dict[str, Any]]) -> bool:
            dead = [p for p in self.hubs.values() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"a hub exited with {dead[0].returncode}; see {self.log_dir}")
            return any(
                e.get("event") == "hub-ready" and e.get("hub") == f"hub:{site}" for e in events
            )

        if not ready(await self.journal(until=ready, timeout=timeout)):
            raise TimeoutError(f"hub {site} not ready; see {self.log_dir}")

    async def lease_book(self) -> LeaseBook:
        """The lease journal folded from its start up to now, as a reader would."""
        book = LeaseBook.empty()
        for record in await self.read_all([self.settings.topics.leases]):
            with contextlib.suppress(LeaseRefused):
                book = book.apply(LeaseRecord.model_validate_json(record.value).event())
        return book

    async def inboxes(
        self, codes: Iterable[str], *, until: Any, timeout: float = 60.0
    ) -> dict[str, list[Inbound]]:
        """Every record of each NCB's inbox, passed through that NCB's adapter."""
        topics = {self.settings.topics.inbox(c): c for c in codes}
        records = await self.read(topics, until=until, timeout=timeout)
        book = await self.lease_book()  # read after the deliveries: it covers them all
        fresh = {
            c: NcbAdapter(self.identities[c], self.directory, self.settings.topics) for c in codes
        }
        opened: dict[str, list[Inbound]] = defaultdict(list)
        for record in records:
            code = topics[record.topic]
            opened[code].append(fresh[code].receive(record, leases=book))
        return opened


def _event(record: ReceivedRecord) -> dict[str, Any]:
    try:
        event = json.loads(record.value)
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}


async def settle(seconds: float) -> None:
    await asyncio.sleep(seconds)


@contextlib.asynccontextmanager
async def running(
    settings: Settings,
    keys_dir: Path,
    keyring: tuple[Directory, dict[str, PrivateIdentity]],
    log_dir: Path,
    *,
    start_hub: bool = True,
    **overrides: object,
) -> AsyncIterator[Backbone]:
    """A provisioned backbone with a producer; its hub started (and ready) unless asked not to."""
    directory, identities = keyring
    settings = settings.model_copy(update={"keys_dir": keys_dir, **overrides})
    bootstrap = settings.bootstrap
    assert bootstrap
    await provision_all(settings)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        max_request_size=4 * 1024 * 1024,
    )
    await producer.start()
    rig = Backbone(settings, bootstrap, directory, identities, log_dir, producer=producer)
    try:
        if start_hub:
            rig.start_hub()
            await rig.wait_ready()
        yield rig
    finally:
        rig.stop_hub()
        await producer.stop()
