"""``i247 demo`` end to end, as its users run it: three hubs, the duties, the books.

One short run on the session's broker (its own prefix and data directory, 1% databases):
the command exits 0 and its ``--summary-json`` shows every duty really happening, counted
from what the bureaus opened and what the hubs journaled.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from brokers.settings import Settings

pytestmark = pytest.mark.integration


def test_the_demo_runs_every_duty_and_loses_nothing(settings: Settings, tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    env = dict(
        os.environ,
        I247_BOOTSTRAP=settings.bootstrap or "",
        I247_TOPIC_PREFIX=settings.topic_prefix,
        I247_DATA_DIR=str(tmp_path),
        I247_DB_SCALE="0.01",
    )
    env.pop("I247_KEYS_DIR", None)
    with socket.socket() as probe:  # a free port for the dashboard the demo starts
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "agents.cli", "demo", "--no-live", "--no-archive"]
    command += ["--dashboard-port", str(port)]
    options = ["--duration", "14", "--rate", "20", "--check-rate", "8", "--notice-every", "2"]
    done = subprocess.run(
        [*command, *options, "--summary-json", str(summary_path)],
        env=env,
        capture_output=True,
        timeout=600,
        check=False,
    )
    output = done.stdout.decode(errors="replace")[-3000:] + done.stderr.decode()[-3000:]
    assert done.returncode == 0, output
    assert f"dashboard: http://127.0.0.1:{port}/" in done.stdout.decode(errors="replace")
    served = (tmp_path / "demo" / "dashboard.out").read_text()
    assert f"dashboard: http://127.0.0.1:{port}/" in served, served[-2000:]
    summary = json.loads(summary_path.read_text())

    assert summary["lost"]["total"] == 0
    assert summary["undecided"]["total"] == 0
    assert summary["rejected"]["misjudged"] == {}

    notices = summary["notices"]
    assert notices["published"] >= 1  # the opening Red Notice at least
    assert notices["broadcast_deliveries"] >= 196  # every bureau opened it
    assert notices["requested"] >= notices["published"] + notices["refused"]

    diffusions = summary["diffusions"]
    assert diffusions["recorded"] == diffusions["sent"] >= 1

    teams = summary["teams"]
    assert teams["requested"] >= 1
    assert teams["deployed"] + teams["declined"] == teams["requested"]
    assert teams["vehicles_circulated"] == teams["vehicle_reports"] >= 1

    checks = summary["checks"]
    assert checks["asked"] >= 10
    assert checks["answered"] == checks["asked"]  # every answer reached its asker's inbox
    assert checks["multi_country"]["consolidated"] == checks["multi_country"]["asked"]
