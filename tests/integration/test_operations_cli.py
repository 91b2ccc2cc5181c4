"""``i247 dlq`` and ``i247 status`` against a real hub: a spoiled record is dead-lettered,
listed with its reason, re-driven (and refused again, marked), and status names the hub."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agents.sim.faults import tamper_body
from brokers.records import ReceivedRecord
from brokers.settings import Settings
from schemas.bodies import MessageBody
from schemas.header_names import REDRIVEN_FROM
from schemas.keys import Directory, PrivateIdentity
from tests.integration.harness import Backbone, now, running

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GUARD = 50  # seconds: a hang fails the test instead of stalling the suite
BODY = MessageBody(subject="Vehicle seized at border crossing", text="VIN WDB1240221A123456")


async def i247(backbone: Backbone, *args: str, code: int = 0) -> str:
    """Run ``i247 ARGS`` in a subprocess; its stdout, after checking its exit code."""
    settings = backbone.settings.replace(bootstrap=backbone.bootstrap)
    env = os.environ | settings.to_env() | {"COLUMNS": "200"}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "agents.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=GUARD,
        check=False,
    )
    assert done.returncode == code, done.stderr.decode()
    return done.stdout.decode() + done.stderr.decode()


def letters(n: int) -> Callable[[list[ReceivedRecord]], bool]:
    return lambda records: len(records) >= n


def rows(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


async def test_a_dead_letter_is_listed_redriven_refused_again_and_status_names_the_hub(
    settings: Settings,
    keys_dir: Path,
    keyring: tuple[Directory, dict[str, PrivateIdentity]],
    tmp_path: Path,
) -> None:
    async with running(settings, keys_dir, keyring, tmp_path) as backbone:
        deadletter = backbone.settings.topics.deadletter
        header, sealed = backbone.adapter("FRA").compose(
            ["DEU"], BODY, now=now(), random_bytes=os.urandom
        )
        await backbone.send(tamper_body(sealed))

        first: list[ReceivedRecord] = await backbone.read([deadletter], until=letters(1))
        assert len(first) == 1
        [row] = rows(await i247(backbone, "dlq", "list", "--json"))
        assert row["reason"] == "tampered"
        assert row["message_id"] == header.message_id
        assert row["topic"] == backbone.settings.topics.inbound
        assert "tampered" in await i247(backbone, "dlq", "list", "--reason", "tampered")
        assert rows(await i247(backbone, "dlq", "list", "--reason", "stale", "--json")) == []
        shown = await i247(backbone, "dlq", "show", str(row["offset"]))
        assert "i247.dlq.reason: tampered" in shown
        assert "00000000  " in shown

        assert "--yes" in await i247(backbone, "dlq", "redrive", str(row["offset"]))
        said = await i247(backbone, "dlq", "redrive", str(row["offset"]), "--yes")
        assert "journaled dlq-redriven" in said
        both = await backbone.read([deadletter], until=letters(2))
        assert len(both) == 2
        again = both[1]
        assert again.header(REDRIVEN_FROM) == str(row["offset"]).encode()
        assert again.header("i247.dlq.reason") == b"tampered"
        assert again.value == first[0].value
        listed = rows(await i247(backbone, "dlq", "list", "--limit", "1", "--json"))
        assert [r["redriven_from"] for r in listed] == [row["offset"]]
        events = await backbone.journal()
        redriven = [e for e in events if e["event"] == "dlq-redriven"]
        assert [(e["deadletter_offset"], e["reason"]) for e in redriven] == [
            (row["offset"], "tampered")
        ]
        assert await i247(backbone, "dlq", "show", "999", code=2)

        status = json.loads(await i247(backbone, "status", "--json"))
        assert status["on_duty"]["hub"] == "lyon"
        assert status["dead_letters"]["by_reason"] == {"tampered": 2}
        table = await i247(backbone, "status")
        assert "hub on duty: lyon" in table
