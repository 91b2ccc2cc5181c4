"""``i247 demo`` stopped by a signal leaves no process behind.

The demo is started as its users start it, on its own embedded broker, and signalled once
its children are up: while it builds the simulated databases (a child of its own, before
the hubs), and once the hubs run. Every process it started, the broker included, must be
gone when it exits; found by their environment (the test's data directory), so a child
started after the last look is found too.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.integration

GUARD = 180.0  # seconds for the demo to reach a phase; a hang fails the test


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def started_by(data_dir: Path) -> list[psutil.Process]:
    """Live processes whose environment names ``data_dir`` (the demo's and its children's)."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            if process.environ().get("I247_DATA_DIR") == str(data_dir):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def cmdlines(processes: list[psutil.Process]) -> list[str]:
    lines = []
    for process in processes:
        try:
            lines.append(" ".join(process.cmdline()))
        except psutil.NoSuchProcess:
            continue
    return lines


def building(lines: list[str]) -> bool:
    return any("streams.databases" in line for line in lines)


def hubs_running(lines: list[str]) -> bool:
    return sum("--site" in line for line in lines) == 3


@pytest.mark.parametrize(
    ("phase", "db_scale", "signum"),
    [
        (building, "0.5", signal.SIGTERM),  # half size: seconds of building to signal in
        (hubs_running, "0.01", signal.SIGTERM),
        (hubs_running, "0.01", signal.SIGINT),
    ],
    ids=["sigterm-while-building-databases", "sigterm-with-hubs", "sigint-with-hubs"],
)
def test_a_signalled_demo_stops_every_process_it_started(
    phase: Callable[[list[str]], bool], db_scale: str, signum: int, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("I247_")}
    env |= {"I247_DATA_DIR": str(tmp_path), "I247_DB_SCALE": db_scale}
    command = [sys.executable, "-m", "agents.cli", "demo", "--no-live", "--duration", "120"]
    command += ["--rate", "5", "--dashboard-port", str(free_port())]
    demo = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + GUARD
        while not phase(cmdlines(started_by(tmp_path))):
            assert demo.poll() is None, "the demo exited before the phase"
            assert time.monotonic() < deadline, "the demo never reached the phase"
            time.sleep(0.05)
        assert len(started_by(tmp_path)) > 2  # the demo, its dashboard, and more
        demo.send_signal(signum)
        _, err = demo.communicate(timeout=GUARD)
        left = cmdlines(started_by(tmp_path))
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        for process in started_by(tmp_path):  # never leave them to the next test
            process.kill()
    expected = 143 if signum == signal.SIGTERM else 130
    assert demo.returncode == expected, err.decode(errors="replace")[-2000:]
    assert err.decode().strip().splitlines()[-1].startswith("i247 demo: ")
    assert left == []
