"""``python -m agents.bench.storm`` (``make storm``): a notice storm, each to all 196 bureaus.

Theory of operation: ``storm(settings, rate=50, seconds=60)`` starts (or uses) a broker,
provisions a fresh prefix and starts one hub (``i247 hub --site lyon``). Once it has
journaled ``hub-ready``, random bureaus send sound worldwide Red Notice requests
(``agents.bench.broadcast.red_notices``, each for a different person) to ``ccc`` at
``rate`` a second for ``seconds``. The hub's notice desk reviews each and, when it
publishes, writes one copy to every bureau's inbox, sealed for that bureau alone.

One group-less reader follows the control topic (the desk's ``notice-decided``) and all
196 inboxes from offset 0, opens every notice copy with its bureau's adapter and notes
the (notice id, inbox) pair it landed in. The checker (``agents.bench.checker``) then compares
them with what had to happen, counted from the real topics: every published notice in
every inbox once (lost, duplicated, unexpected); a refused or returned one nowhere.

Where the time goes, per notice: ``queued`` (request sent -> the desk published it, by
the hub's clock: the request waited behind earlier ones at intake and at the desk, which
handles one message at a time), ``sealing`` (published -> its first copy handed to the
hub's producer: the desk seals the 196 copies, a data key wrapped for each bureau, before
any is written), ``writing`` (first copy -> 196th, as the producer stamped them),
``to_reader`` (196th copy written -> read here), and ``drain`` (the last request sent ->
the last copy read). The CPU seconds of the hub process and of this reader (which opens
every copy) say which of them was busy. Nothing here asserts a speed.

Worked example::

    figures = await storm(settings, rate=5, seconds=3)
    figures["checked"]  # {"inputs": 15, "landings": 2940, "lost": 0, ...}
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from subprocess import Popen
from typing import Any

import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition

from agents.bench.broadcast import (
    NOTICE_TYPE,
    PUBLISHED,
    Reach,
    red_notices,
    to_all,
)
from agents.bench.checker import check
from agents.demo.run import start_hub
from agents.ncb.adapter import NcbAdapter, Opened
from agents.ops.keyring import load_all
from agents.ops.operations import provision_all
from agents.sim.notice_traffic import red_notice_id
from agents.stats import latency_summary
from brokers.access import process_security
from brokers.clients import make_producer, terminate
from brokers.embedded import broker_for
from brokers.logs import configure_logging
from brokers.settings import Settings
from brokers.tail import received_from_kafka
from schemas.bodies import NoticeBody, NoticeRequestBody
from schemas.journal import HubReady, NoticeDecided, parse_control_event
from schemas.participants import CCC
from schemas.registry import default_registry

__all__ = ["main", "storm"]

READY_SECONDS = 180.0  # a full-size database build precedes hub-ready the first time


async def storm(
    settings: Settings,
    *,
    rate: float = 50.0,
    seconds: float = 60.0,
    seed: int = 2477,
    drain_timeout: float = 3600.0,
) -> dict[str, Any]:
    """Run the storm; return its figures (see the module's docstring)."""
    count = max(1, round(rate * seconds))
    async with broker_for(settings) as bootstrap:
        local = settings.model_copy(
            update={"bootstrap": bootstrap, "topic_prefix": f"storm{uuid.uuid4().hex[:8]}"}
        )
        await provision_all(local)
        codes = list(default_registry().codes())
        directory, identities = load_all(Path(local.keys_dir), codes)
        adapters = {c: NcbAdapter(identities[c], directory, local.topics) for c in codes}
        requests = red_notices(codes, count, random.Random(seed))
        reaches = {red_notice_id(r): Reach(red_notice_id(r), 0.0) for r in requests}
        run_dir = Path(local.data_dir) / "storm" / local.topic_prefix
        run_dir.mkdir(parents=True, exist_ok=True)
        cpu0 = time.process_time()
        reader = _StormReader(local, bootstrap, adapters, reaches)
        await reader.start()
        hub = start_hub(local, "lyon", bootstrap, run_dir)
        producer = make_producer(bootstrap, local)
        await producer.start()
        try:
            if not await reader.until(lambda: reader.ready, READY_SECONDS, hub):
                raise TimeoutError(f"the hub did not become ready; see {run_dir}/hub-lyon.log")
            began = time.monotonic()
            for index, request in enumerate(requests):
                delay = began + index / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                _, record = adapters[request.requesting_ncb].compose(
                    [CCC], NoticeRequestBody(request=request), now=datetime.now(UTC),
                    random_bytes=os.urandom,
                )  # fmt: skip
                reaches[red_notice_id(request)].sent_at = time.time()
                await producer.send(
                    record.topic, record.value, key=record.key, headers=list(record.headers)
                )
            await producer.flush()
            sent_seconds = time.monotonic() - began
            last_sent = time.time()

            def settled() -> bool:
                return all(
                    reader.decisions.get(k) not in (None, PUBLISHED)
                    or len(reader.opened_at.get(k, {})) >= len(codes)
                    for k in reaches
                )

            drained = await reader.until(settled, drain_timeout, hub)
            await asyncio.sleep(2.0)  # a copy written twice would arrive about now
            cpu = {"hub": _cpu_seconds(hub.pid), "reader": round(time.process_time() - cpu0, 1)}
        finally:
            await producer.stop()
            await reader.stop()
            terminate(hub)
    return _figures(
        rate, seconds, codes, reaches, reader, sent_seconds, last_sent, drained, run_dir, cpu
    )


def _figures(
    rate: float,
    seconds: float,
    codes: list[str],
    reaches: Mapping[str, Reach],
    reader: _StormReader,
    sent_seconds: float,
    last_sent: float,
    drained: bool,
    run_dir: Path,
    cpu: dict[str, float | None],
) -> dict[str, Any]:
    published = [k for k in reaches if reader.decisions.get(k) == PUBLISHED]
    expected = {k: set(codes) for k in published}
    expected.update({k: set() for k in reaches if k not in expected})
    checked = check(expected, reader.landings)
    last_read = max((max(r.read_at.values()) for r in reaches.values() if r.read_at), default=0)
    whole = [r for r in reaches.values() if len(r.produced_at) >= len(codes)]
    writing = [
        round((max(r.produced_at.values()) - min(r.produced_at.values())) * 1000, 1) for r in whole
    ]
    sealing = [
        round((min(r.produced_at.values()) - r.published_at) * 1000, 1)
        for r in whole
        if r.published_at is not None
    ]
    copies = len(reader.landings)
    first_sent = min((r.sent_at for r in reaches.values() if r.sent_at), default=0.0)
    return {
        "rate": rate,
        "seconds": seconds,
        "recipients": len(codes),
        "requested": len(reaches),
        "sent_seconds": round(sent_seconds, 1),
        "decisions": dict(Counter(reader.decisions.get(k, "undecided") for k in reaches)),
        "expected_copies": len(published) * len(codes),
        "copies_read": copies,
        "checked": checked.summary(),
        "lost_examples": checked.lost[:5],
        "duplicated_examples": checked.duplicated[:5],
        "drained": drained,
        "drain_seconds": round(last_read - last_sent, 1) if last_read else None,
        "copies_per_second": round(copies / (last_read - first_sent), 1)
        if last_read > first_sent
        else None,
        "sent_to_last_copy": latency_summary(
            to_all(r, len(codes), stage="read") for r in reaches.values()
        ),
        "queued": latency_summary(
            None if r.published_at is None else round((r.published_at - r.sent_at) * 1000, 1)
            for r in reaches.values()
        ),
        "sealing": latency_summary(sealing),
        "writing": latency_summary(writing),
        "cpu_seconds": cpu,
        "to_reader": latency_summary(
            round((max(r.read_at.values()) - max(r.produced_at.values())) * 1000, 1)
            for r in reaches.values()
            if len(r.read_at) >= len(codes)
        ),
        "run_dir": str(run_dir),
    }


def _cpu_seconds(pid: int) -> float | None:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return round(times.user + times.system, 1)


class _StormReader:
    """One group-less reader of the control topic and every inbox: what landed where."""

    def __init__(
        self,
        local: Settings,
        bootstrap: str,
        adapters: Mapping[str, NcbAdapter],
        reaches: dict[str, Reach],
    ) -> None:
        self.local = local
        self.adapters = adapters
        self.reaches = reaches
        self.inboxes = {local.topics.inbox(c): c for c in adapters}
        self.ready = False
        self.decisions: dict[str, str] = {}
        self.landings: list[tuple[str, str]] = []  # (notice id, inbox code), every copy
        self.opened_at: dict[str, dict[str, float]] = {}
        self._notice_of: dict[str, str] = {}  # a copy's message id -> its notice id
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            **process_security(),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=local.fetch_max_wait_ms,
            max_partition_fetch_bytes=2 * local.max_message_bytes,
        )
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def start(self) -> None:
        await self._consumer.start()
        topics = [self.local.topics.control, *self.inboxes]
        self._consumer.assign([TopicPartition(t, 0) for t in topics])
        self._task = asyncio.create_task(self._run(), name="storm-reader")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def until(self, holds: Callable[[], bool], timeout: float, hub: Popen[bytes]) -> bool:
        """Wait for ``holds()``; False after ``timeout``; raise if the hub process exits."""
        deadline = time.monotonic() + timeout
        while not holds():
            if hub.poll() is not None:
                raise RuntimeError(f"the hub exited with {hub.returncode}; see its log")
            if time.monotonic() > deadline:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.5)
        return True

    async def _run(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=100, max_records=5000)
            read_at = time.time()
            for records in batch.values():
                for record in records:
                    if record.topic == self.local.topics.control:
                        self._journal(record.value or b"")
                    elif dict(record.headers or ()).get("ce_type") == NOTICE_TYPE:
                        self._copy(record, read_at)
                await asyncio.sleep(0)  # let the sender compose while copies pour in
            if batch:
                self._changed.set()

    def _journal(self, value: bytes) -> None:
        event = parse_control_event(value)
        if isinstance(event, HubReady):
            self.ready = True
        elif isinstance(event, NoticeDecided):
            self.decisions[event.notice_id] = event.decision

    def _copy(self, record: Any, read_at: float) -> None:
        code = self.inboxes[record.topic]
        item = self.adapters[code].receive(received_from_kafka(record))
        key = (record.key or b"").decode()
        if not (isinstance(item, Opened) and isinstance(item.body, NoticeBody)):
            # a copy this bureau's adapter drops (its message id again) still landed: count
            # it under its notice, so the checker sees the duplicate
            self.landings.append((self._notice_of.get(key, f"unopened:{key}"), code))
            return
        notice = item.body.notice
        self._notice_of[key] = notice.notice_id
        self.landings.append((notice.notice_id, code))
        reach = self.reaches.get(notice.notice_id)
        if reach is None or code in reach.opened_at:
            return
        reach.produced_at[code] = record.timestamp / 1000
        reach.read_at[code] = read_at
        reach.opened_at[code] = time.time()
        self.opened_at.setdefault(notice.notice_id, {})[code] = read_at
        if notice.published_at is not None:
            reach.published_at = notice.published_at.timestamp()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.bench.storm", description=__doc__)
    parser.add_argument("--rate", type=float, default=50.0, help="notice requests a second (50)")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of requests (60)")
    parser.add_argument("--seed", type=int, default=2477, help="which bureaus ask, for whom")
    parser.add_argument(
        "--drain-timeout", type=float, default=3600.0, help="s for every copy to arrive (3600)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    configure_logging("warning", Path(settings.data_dir) / "storm" / "storm.log")
    figures = asyncio.run(
        storm(
            settings,
            rate=args.rate,
            seconds=args.seconds,
            seed=args.seed,
            drain_timeout=args.drain_timeout,
        )
    )
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    checked = figures["checked"]
    passed = figures["drained"] and not (
        checked["lost"] or checked["duplicated"] or checked["unexpected"]
    )
    print(
        f"STORM {'PASS' if passed else 'FAIL'}: {figures['requested']} requests, "
        f"{figures['expected_copies']} copies due, lost {checked['lost']}, duplicated "
        f"{checked['duplicated']}, unexpected {checked['unexpected']}, drain "
        f"{figures['drain_seconds']} s"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
