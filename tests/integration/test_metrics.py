"""A real hub process and the real archiver serve /metrics, /healthz and /readyz."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agents.ops.operations import provision_all
from brokers.settings import Settings
from schemas.bodies import MessageBody
from schemas.keys import Directory, PrivateIdentity, load_identity
from schemas.participants import AUDITOR
from streams.archive.archiver import run_archiver
from tests.integration.harness import now, running

pytestmark = pytest.mark.integration

BODY = MessageBody(subject="Stolen vehicle located", text="VIN WDB1240221A123456")
PATIENCE = 90.0  # seconds a condition may take on a busy machine; not a speed asserted


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError as error:  # not listening yet
        return 0, str(error)


async def until(port: int, path: str, holds: Callable[[int, str], bool]) -> tuple[int, str]:
    """Poll ``path`` until ``holds(status, body)``; fail with the last answer after PATIENCE."""
    deadline = time.monotonic() + PATIENCE
    answer = (0, "")
    while time.monotonic() < deadline:
        answer = await asyncio.to_thread(get, port, path)
        if holds(*answer):
            return answer
        await asyncio.sleep(0.2)
    raise AssertionError(f"{path} never held; last answer {answer}")


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def outcome(body: str, name: str) -> float:
    key = ("i247_hub_messages_total", (("outcome", name), ("reason", "")))
    return samples(body).get(key, 0.0)


async def test_a_hub_turns_ready_and_counts_what_it_admits_and_delivers(
    settings: Settings,
    keys_dir: Path,
    keyring: tuple[Directory, dict[str, PrivateIdentity]],
    tmp_path: Path,
) -> None:
    port = free_port()
    async with running(settings, keys_dir, keyring, tmp_path, start_hub=False) as backbone:
        backbone.start_hub(I247_METRICS_PORT=str(port))
        await until(port, "/healthz", lambda status, _: status == 200)
        await until(port, "/readyz", lambda status, _: status == 200)
        await backbone.wait_ready()  # /readyz agrees with the journal's hub-ready

        sent = 3
        for _ in range(sent):
            _, record = backbone.adapter("FRA").compose(
                ["DEU"], BODY, now=now(), random_bytes=os.urandom
            )
            await backbone.send(record)
        await backbone.inboxes(["DEU"], until=lambda rs: len(rs) >= sent)

        intake_epoch = ("i247_hub_unit_epoch", (("unit", "intake"),))
        _, body = await until(  # gauges are refreshed once a second, counters at once
            port,
            "/metrics",
            lambda _, b: (
                outcome(b, "admitted") >= sent
                and outcome(b, "delivered") >= sent
                and intake_epoch in samples(b)
            ),
        )
        found = samples(body)
        assert found[intake_epoch] >= 1
        assert found[("i247_hub_units_held", ())] >= 1
        latencies = [
            value
            for (name, labels), value in found.items()
            if name == "i247_hub_delivery_latency_seconds_count"
        ]
        assert sum(latencies) >= sent
        assert found[("i247_hub_claims_total", (("reason", "first-claim"), ("unit", "intake")))]


async def test_the_archiver_turns_ready_once_caught_up(
    settings: Settings, keys_dir: Path, tmp_path: Path
) -> None:
    await provision_all(settings)
    port = free_port()
    configured = settings.model_copy(update={"metrics_port": port, "keys_dir": keys_dir})
    stop = asyncio.Event()
    archiving = asyncio.create_task(
        run_archiver(
            configured, tmp_path / "archive.sqlite3", load_identity(keys_dir, AUDITOR), stop=stop
        )
    )
    try:
        await until(port, "/readyz", lambda status, _: status == 200)
        _, body = await until(port, "/metrics", lambda _, b: "i247_archiver_leaves" in b)
        assert ("i247_archiver_records_total", ()) in samples(body)
    finally:
        stop.set()
        await archiving
    assert (await asyncio.to_thread(get, port, "/healthz"))[0] == 0  # the server is gone
