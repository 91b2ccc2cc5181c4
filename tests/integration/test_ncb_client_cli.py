"""``i247 send`` / ``i247 inbox`` and docs/ncb-client.md's example, as subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from brokers.settings import Settings
from schemas.keys import Directory, PrivateIdentity
from tests.integration.harness import Backbone, running

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GUARD = 50  # seconds: a hang fails the test instead of stalling the suite


@pytest.fixture
async def backbone(
    settings: Settings,
    keys_dir: Path,
    keyring: tuple[Directory, dict[str, PrivateIdentity]],
    tmp_path: Path,
) -> AsyncIterator[Backbone]:
    async with running(settings, keys_dir, keyring, tmp_path) as rig:
        yield rig


def environment(backbone: Backbone) -> dict[str, str]:
    settings = backbone.settings.replace(bootstrap=backbone.bootstrap)
    return os.environ | settings.to_env() | {"COLUMNS": "200"}


async def run(backbone: Backbone, *args: str) -> str:
    """Run a command in a subprocess (off the event loop); its stdout, or fail on exit code."""
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, *args],
        env=environment(backbone),
        cwd=ROOT,
        capture_output=True,
        timeout=GUARD,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


async def i247(backbone: Backbone, *args: str) -> str:
    return await run(backbone, "-m", "agents.cli", *args)


def lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


async def test_send_then_inbox_shows_each_message_once_and_acks_reach_the_sender(
    backbone: Backbone, tmp_path: Path
) -> None:
    first = (await i247(backbone, "send", "--as", "FRA", "--to", "DEU", "--text", "one")).strip()

    [opened] = lines(
        await i247(backbone, "inbox", "--as", "DEU", "--follow", "--count", "1", "--ack", "--json")
    )
    assert (opened["message_id"], opened["sender"], opened["body"]["text"]) == (first, "FRA", "one")
    assert opened["ack_id"]

    body = tmp_path / "alert.json"
    body.write_text(json.dumps({"subject": "Missing child", "text": "Last seen at Strasbourg"}))
    second = (
        await i247(
            backbone,
            "send",
            "--as",
            "FRA",
            "--to",
            "DEU",
            "--body-file",
            str(body),
            "--precedence",
            "IMMEDIATE",
        )
    ).strip()
    tables: list[str] = []
    async with asyncio.timeout(GUARD):
        while not any(second in table for table in tables):  # each run: a table of what is new
            tables.append(await i247(backbone, "inbox", "--as", "DEU"))
    assert not any(first in table for table in tables)  # the second run shows only what is new
    assert "message id" in tables[-1]

    acks: list[dict[str, Any]] = []
    async with asyncio.timeout(GUARD):
        while not acks:  # FRA reads on from where its last run stopped, until DEU's ack
            acks = [
                item
                for item in lines(await i247(backbone, "inbox", "--as", "FRA", "--json"))
                if item["kind"] == "message" and item["type"] == "ack"
            ]
    [ack] = acks
    assert (ack["message_id"], ack["sender"], ack["body"]["acknowledged"]) == (
        opened["ack_id"],
        "DEU",
        first,
    )


async def test_the_documented_example_runs(backbone: Backbone) -> None:
    output = await run(backbone, "examples/ncb_client_example.py")
    assert "DEU acknowledged it" in output
    assert "FRA got the CCC's receipt" in output
    assert "FRA got DEU's acknowledgement" in output


async def test_an_interrupted_follow_keeps_its_position(backbone: Backbone) -> None:
    follower = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "agents.cli", "inbox", "--as", "ITA", "--follow", "--json"),
        env=environment(backbone),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        sent = (await i247(backbone, "send", "--as", "ESP", "--to", "ITA", "--text", "x")).strip()
        assert follower.stdout is not None
        async with asyncio.timeout(GUARD):
            line = await follower.stdout.readline()
            assert json.loads(line)["message_id"] == sent
            follower.send_signal(signal.SIGINT)
            _, errors = await follower.communicate()
    finally:
        if follower.returncode is None:
            follower.kill()
            await follower.wait()
    assert follower.returncode == 0, errors.decode()
    assert "1 new item(s) for ITA" in errors.decode()
    assert lines(await i247(backbone, "inbox", "--as", "ITA", "--json")) == []
