"""``python -m agents.bench.soak`` (``make soak``): the backbone for minutes under faults.

It starts an embedded broker (or uses ``I247_BOOTSTRAP``), the three hubs, the 196
simulated bureaus (``i247 simulate`` at ``--rate``, with its books: lost, undecided,
duplicates suppressed) and real gateways for a few bureaus (``i247 inbox --follow``,
``NcbClient``). A seeded schedule (``agents.bench.soak_plan``) SIGKILLs a hub now and then and
restarts it, and SIGKILLs and restarts the gateways. Every process's RSS is sampled every
``--sample-seconds``. At the end the simulator's books and, for each gateway, the checker
(``agents.bench.checker``: what the real inbox topic holds against what the gateway handed over
across all its lives) and the memory of each process life (``agents.bench.soak_verdict``: judged
on the second half of the life, so a restart's start-up is not a leak) decide. The run
ends with one line, ``SOAK PASS: lost 0, undecided 0, duplicates 0, ... memory flat`` or
``SOAK FAIL: ...``, and exit status 0 only on a pass. ``--json`` writes every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
from aiokafka import TopicPartition

from agents.bench.checker import check
from agents.bench.idle import broker_pid
from agents.bench.soak_plan import memory_trend, schedule
from agents.bench.soak_verdict import memory_verdict, soak_summary
from agents.demo.run import build_databases, start_hub
from agents.ncb.client_state import state_path
from agents.ops.keyring import init_all
from agents.ops.operations import provision_all
from brokers.clients import make_consumer, terminate
from brokers.embedded import broker_for
from brokers.logs import configure_logging
from brokers.record_headers import RECEIPTS_TYPE
from brokers.settings import Settings
from schemas.participants import HUB_SITES

__all__ = ["main", "soak"]

GATEWAYS = ("DEU", "BRA", "JPN", "KEN")


def _env(settings: Settings, bootstrap: str, log: Path) -> dict[str, str]:
    return os.environ | settings.replace(bootstrap=bootstrap).to_env(log_file=log)


def _spawn(
    command: list[str], env: dict[str, str], out: Path, err: Path
) -> subprocess.Popen[bytes]:
    with out.open("ab") as stdout, err.open("ab") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "agents.cli", *command],
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )


class Rig:
    """The soak's processes by role, and their memory samples."""

    def __init__(self, settings: Settings, bootstrap: str, run_dir: Path) -> None:
        self.settings, self.bootstrap, self.run_dir = settings, bootstrap, run_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.memory: dict[str, list[tuple[float, float]]] = {}
        self.kills: dict[str, int] = {}
        self.lives: dict[str, int] = {}
        self.started = time.monotonic()

    def start(self, role: str) -> None:
        kind, _, name = role.partition(":")
        if kind == "hub":
            self.processes[role] = start_hub(self.settings, name, self.bootstrap, self.run_dir)
        else:
            env = _env(self.settings, self.bootstrap, self.run_dir / f"gateway-{name}.log")
            command = ["inbox", "--as", name, "--follow", "--json"]
            out, err = self.run_dir / f"gateway-{name}.jsonl", self.run_dir / f"gateway-{name}.err"
            self.processes[role] = _spawn(command, env, out, err)
        self.lives[role] = self.lives.get(role, 0) + 1

    def kill(self, role: str) -> None:
        process = self.processes.pop(role, None)
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
        self.kills[role] = self.kills.get(role, 0) + 1

    def sample(self, extra: dict[str, int | None]) -> None:
        at = time.monotonic() - self.started
        pids = {  # one series per life of a process that is killed and restarted
            f"{role}#{self.lives[role]}": p.pid
            for role, p in self.processes.items()
            if p.poll() is None
        }
        pids.update({k: v for k, v in extra.items() if v is not None})
        for role, pid in pids.items():
            try:
                rss = psutil.Process(pid).memory_info().rss / 2**20
            except psutil.Error:
                continue
            self.memory.setdefault(role, []).append((round(at, 1), rss))

    def stop(self) -> None:
        for role in list(self.processes):
            terminate(self.processes.pop(role))


async def _handed_over(rig: Rig, code: str) -> list[str]:
    path = state_path(Path(rig.settings.data_dir), code)
    ids = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("kind") == "message":
            ids.append(str(entry["message_id"]))
    return ids


async def _inbox_ids(settings: Settings, bootstrap: str, code: str) -> set[str]:
    """The message ids the real inbox topic holds for ``code`` (fenced copies included:
    they carry the same id as the copy that counts), receipt batches left out."""
    consumer = make_consumer(settings, enable_auto_commit=False)
    await consumer.start()
    ids: set[str] = set()
    try:
        partition = TopicPartition(settings.topics.inbox(code), 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        empty = 0
        while empty < 3:
            batch = await consumer.getmany(timeout_ms=1000)
            empty = 0 if batch else empty + 1
            for records in batch.values():
                for r in records:
                    if dict(r.headers).get("ce_type") != RECEIPTS_TYPE.encode():
                        ids.add((r.key or b"").decode())
    finally:
        await consumer.stop()
    return ids


async def soak(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """Run the soak; return its figures (see the module's docstring)."""
    run_dir = Path(settings.data_dir) / "soak" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    run_dir.mkdir(parents=True, exist_ok=True)
    configure_logging("warning", run_dir / "soak.log")
    if not (Path(settings.keys_dir) / "directory.json").exists():
        init_all(Path(settings.keys_dir))
    seconds = args.minutes * 60
    faults = schedule(
        args.seed,
        seconds,
        HUB_SITES,
        GATEWAYS[: args.gateways],
        hub_every=args.hub_every,
        gateway_every=args.gateway_every,
    )
    async with broker_for(settings) as bootstrap:
        local = settings.model_copy(
            update={"bootstrap": bootstrap, "topic_prefix": f"soak{uuid.uuid4().hex[:6]}"}
        )
        await provision_all(local)
        if await asyncio.to_thread(build_databases, local, bootstrap, run_dir):
            raise RuntimeError(f"building the databases failed; see {run_dir}/databases.out")
        rig = Rig(local, bootstrap, run_dir)
        for code in GATEWAYS[: args.gateways]:  # an earlier run's hand-overs are not this one's
            state_path(Path(local.data_dir), code).unlink(missing_ok=True)
        broker = broker_pid(bootstrap)
        simulate: subprocess.Popen[bytes] | None = None
        try:
            for site in HUB_SITES:
                rig.start(f"hub:{site}")
            await asyncio.sleep(args.warmup)
            for code in GATEWAYS[: args.gateways]:
                rig.start(f"gateway:{code}")
            command = ["simulate", "--rate", str(args.rate), "--duration", str(seconds)]
            command += ["--seed", str(args.seed), "--drain-timeout", str(args.drain_timeout)]
            simulate = _spawn(
                command,
                _env(local, bootstrap, run_dir / "simulate.log"),
                run_dir / "simulate.json",
                run_dir / "simulate.err",
            )
            rig.started = time.monotonic()
            pending: list[tuple[float, str, str]] = [(f.at, "kill", f.target) for f in faults]
            pending += [(f.at + f.down_for, "start", f.target) for f in faults]
            pending.sort()
            next_sample = 0.0
            while simulate.poll() is None:
                now = time.monotonic() - rig.started
                while pending and pending[0][0] <= now:
                    _, action, role = pending.pop(0)
                    if action == "kill":
                        rig.kill(role)
                    else:
                        rig.start(role)
                    print(f"{now:7.1f} s  {action} {role}", flush=True)
                if now >= next_sample:
                    rig.sample({"broker": broker, "simulate": simulate.pid})
                    next_sample = now + args.sample_seconds
                await asyncio.sleep(0.2)
            for _, action, role in pending:  # anything still down comes back for the drain
                if action == "start" and role not in rig.processes:
                    rig.start(role)
            gateways: dict[str, Any] = {}
            for code in GATEWAYS[: args.gateways]:
                expected = await _inbox_ids(local, bootstrap, code)
                for _ in range(120):
                    if set(await _handed_over(rig, code)) >= expected:
                        break
                    await asyncio.sleep(0.5)
                observed = [(i, code) for i in await _handed_over(rig, code)]
                checked = check({i: {code} for i in expected}, observed)
                gateways[code] = {**checked.summary(), "lost_ids": checked.lost[:5]}
        finally:
            rig.stop()
            if simulate is not None:
                terminate(simulate)
    books = json.loads((run_dir / "simulate.json").read_text() or "{}")
    verdicts = {role: memory_verdict(role, samples) for role, samples in rig.memory.items()}
    figures: dict[str, Any] = {
        "minutes": args.minutes,
        "rate": args.rate,
        "seed": args.seed,
        "run_dir": str(run_dir),
        "faults": [f"{f.at:.0f}s {f.target} down {f.down_for:.0f}s" for f in faults],
        "kills": rig.kills,
        "simulate_exit": simulate.returncode if simulate is not None else None,
        "books": {
            "sent": books.get("sent", {}).get("total"),
            "accepted": books.get("accepted", {}).get("total"),
            "delivered": books.get("delivered", {}).get("total"),
            "rejected": books.get("rejected", {}).get("total"),
            "lost": books.get("lost", {}).get("total"),
            "undecided": books.get("undecided", {}).get("total"),
            "duplicates_suppressed": books.get("duplicates_suppressed", {}).get("total"),
            "fenced": books.get("fenced"),
            "latency": books.get("delivered", {}).get("latency"),
        },
        "gateways": gateways,
        "memory": {
            role: {**memory_trend(samples), **verdicts[role].as_dict()}
            for role, samples in rig.memory.items()
        },
    }
    passed, line = soak_summary(figures["books"], gateways, verdicts)
    figures["verdict"] = {"passed": passed, "line": line}
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes of traffic (10)")
    parser.add_argument("--rate", type=float, default=200.0, help="messages a second (200)")
    parser.add_argument("--seed", type=int, default=2477, help="traffic and fault seed")
    parser.add_argument("--hub-every", type=float, default=60.0, help="mean s between hub kills")
    parser.add_argument("--gateway-every", type=float, default=20.0, help="s between gateway kills")
    parser.add_argument("--gateways", type=int, default=len(GATEWAYS), help="real gateways (4)")
    parser.add_argument("--warmup", type=float, default=20.0, help="s for the hubs to start")
    parser.add_argument("--sample-seconds", type=float, default=10.0, help="RSS sampling period")
    parser.add_argument(
        "--drain-timeout", type=float, default=300.0, help="s for the backlog to drain (300)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    figures = asyncio.run(soak(Settings.from_env(), args))
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    print(figures["verdict"]["line"])
    return 0 if figures["verdict"]["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
