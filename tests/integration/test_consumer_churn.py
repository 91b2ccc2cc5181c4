"""Consumer churn: bureau gateways SIGKILLed and restarted at random under traffic.

Four bureaus each run a real gateway process (``i247 inbox --follow --json``, the
``NcbClient`` behind it) while senders keep writing to them; a seeded schedule kills a
random gateway every 1.5-4 s with SIGKILL (no chance to commit or close anything) and
starts it again 0.2-2 s later. Once the traffic stops every gateway is left to catch up.
The checker then counts, from what each gateway handed over (its state file, written
before an item is handed over), from what it printed, and from the real inbox topics,
what was lost, duplicated or unexpected. ``FAULTS_SEED`` picks another schedule.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agents.bench.checker import Landing, check
from agents.ncb.client_state import state_path
from brokers.clients import terminate
from brokers.record_headers import RECEIPTS_TYPE
from brokers.settings import Settings
from schemas.bodies import MessageBody
from schemas.keys import Directory, PrivateIdentity
from tests.integration.harness import Backbone, now, running

pytestmark = pytest.mark.integration

BUREAUS = ("DEU", "ITA", "ESP", "NLD")
SENDERS = ("FRA", "BEL", "POL", "USA", "BRA")
TRAFFIC_SECONDS, RATE = 20.0, 30  # messages a second
SEED = int(os.environ.get("FAULTS_SEED", "2026"))


@pytest.fixture
async def backbone(
    settings: Settings,
    keys_dir: Path,
    keyring: tuple[Directory, dict[str, PrivateIdentity]],
    tmp_path: Path,
) -> AsyncIterator[Backbone]:
    async with running(settings, keys_dir, keyring, tmp_path) as rig:
        yield rig


class Gateways:
    """One ``i247 inbox --follow --json`` process per bureau, killed and restarted at will."""

    def __init__(self, backbone: Backbone) -> None:
        settings = backbone.settings
        self.env = os.environ | settings.replace(bootstrap=backbone.bootstrap).to_env()
        self.data_dir = Path(settings.data_dir)
        self.out_dir = backbone.log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.kills = self.starts = 0

    def start(self, code: str) -> None:
        with (self.out_dir / f"gateway-{code}.jsonl").open("ab") as out:
            self.processes[code] = subprocess.Popen(
                [sys.executable, "-m", "agents.cli", "inbox", "--as", code, "--follow", "--json"],
                env=self.env,
                stdout=out,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.starts += 1

    def kill(self, code: str) -> None:
        process = self.processes.pop(code)
        process.send_signal(signal.SIGKILL)
        process.wait()
        self.kills += 1

    def stop_all(self) -> None:
        for code in list(self.processes):
            terminate(self.processes.pop(code), 10)

    def handed_over(self, code: str) -> list[str]:
        path = state_path(self.data_dir, code)
        ids = []
        for line in path.read_text().splitlines() if path.exists() else []:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a torn last line: the client ignores it too
            if entry.get("kind") == "message":
                ids.append(entry["message_id"])
        return ids

    def printed(self, code: str) -> list[str]:
        lines = (self.out_dir / f"gateway-{code}.jsonl").read_text().splitlines()
        return [json.loads(line)["message_id"] for line in lines if '"kind": "message"' in line]


async def traffic(backbone: Backbone, expected: dict[str, set[str]], rng: random.Random) -> None:
    started = time.monotonic()
    index = 0
    while (elapsed := time.monotonic() - started) < TRAFFIC_SECONDS:
        if index >= elapsed * RATE:
            await asyncio.sleep(0.02)
            continue
        recipients = rng.sample(BUREAUS, rng.choice((1, 1, 1, 2)))
        header, record = backbone.adapter(SENDERS[index % len(SENDERS)]).compose(
            recipients,
            MessageBody(subject=f"Churn {index}", text=f"case {index:06d}"),
            now=now(),
            random_bytes=os.urandom,
        )
        await backbone.send(record)
        expected[header.message_id] = {f"{place}:{r}" for r in recipients for place in "HT"}
        index += 1


async def churn(gateways: Gateways, rng: random.Random, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(rng.uniform(1.5, 4.0))
        code = rng.choice(BUREAUS)
        gateways.kill(code)
        await asyncio.sleep(rng.uniform(0.2, 2.0))
        gateways.start(code)


async def test_gateways_killed_at_random_under_traffic_lose_and_double_nothing(
    backbone: Backbone,
) -> None:
    rng = random.Random(SEED)
    gateways = Gateways(backbone)
    expected: dict[str, set[str]] = {}
    try:
        for code in BUREAUS:
            gateways.start(code)
        stop = asyncio.Event()
        killer = asyncio.create_task(churn(gateways, random.Random(rng.random()), stop))
        await traffic(backbone, expected, rng)
        stop.set()
        await killer

        def wanted(code: str) -> int:
            return sum(f"H:{code}" in places for places in expected.values())

        for _ in range(120):  # a minute at most to catch up
            if all(len(gateways.handed_over(c)) >= wanted(c) for c in BUREAUS):
                break
            await asyncio.sleep(0.5)
    finally:
        gateways.stop_all()

    topics = backbone.settings.topics
    inboxes = await backbone.read_all([topics.inbox(c) for c in BUREAUS])
    observed: list[Landing] = [(i, f"H:{c}") for c in BUREAUS for i in gateways.handed_over(c)]
    observed += [
        ((r.key or b"").decode(), f"T:{r.topic.split('.')[-2]}")
        for r in inboxes
        if r.header("ce_type") != RECEIPTS_TYPE.encode()
    ]
    checked = check(expected, observed)
    assert checked.valid, (SEED, checked)
    assert gateways.kills >= 5, gateways.kills
    for code in BUREAUS:  # what a gateway printed it had handed over, and only once
        printed = gateways.printed(code)
        assert len(printed) == len(set(printed)), code
        assert set(printed) <= set(gateways.handed_over(code)), code
    if os.environ.get("FAULTS_REPORT"):
        shown = sum(len(gateways.printed(c)) for c in BUREAUS)
        print(checked.summary(), {"kills": gateways.kills, "printed": shown, "seed": SEED})
