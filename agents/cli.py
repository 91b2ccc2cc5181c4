"""``i247``: the command line of the backbone.

i247 demo        the live backbone on the embedded broker, with simulated traffic
i247 hub         run one CCC hub (a plain asyncio service)
i247 simulate    run the 196 simulated NCBs against a broker
i247 keys init   generate keys for every NCB, hub and the auditor
i247 keys rotate issue a participant a new key (the old one verifies for a grace period)
i247 keys revoke revoke a key at once: hubs refuse it (key-revoked); journaled
i247 keys tls    make a local CA and broker certificates (--kafka: compose's secrets)
i247 acls        print or --apply the Kafka ACLs derived from the participants
i247 provision   create every topic (idempotent)
i247 bench       measure the backbone beside a plain aiokafka baseline
i247 archive     append every backbone record to the tamper-evident audit archive
i247 audit       verify the archive, prove a record is in it or two heads consistent
i247 replay      replay recorded traffic: filter, open as an NCB, print or re-publish
i247 contract    write docs/asyncapi.yaml from the code, or --check it
i247 send        send one message as a bureau; prints its id
i247 inbox       what a bureau opened since its last run (--follow, --ack, --json)
i247 status      hub on duty, leases, heartbeats, backlogs, breaches, dead letters
i247 dlq         list, show or redrive dead letters
i247 dashboard   serve the live operations page

Errors: ``main`` is the one handler. Every failure prints one line on stderr (what went
wrong, what to do) and exits with a documented code (``agents.cli_errors``); a command
that needs a broker first checks it answers, and a hub that its topics exist.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agents.cli_errors import EXIT_CODES, explain
from agents.cli_help import finish_help, non_negative, package_version, positive, share
from agents.ops.access_commands import register_access
from agents.ops.bureau_commands import register_bureau_commands
from agents.ops.contract_command import register_contract
from agents.ops.dashboard import register_dashboard, tcp_port
from agents.ops.dlq_commands import register_dlq_commands
from agents.ops.key_commands import register_key_lifecycle
from agents.ops.replay_command import register_replay
from agents.ops.status_command import register_status
from brokers.access import client_security
from brokers.connect_via import install_connect_via
from brokers.provisioning import check_topics, existing_topics
from brokers.settings import Settings, SettingsError
from schemas.participants import HUB_SITES

__all__ = ["main"]

_ALL = ("broker", "topics", "files", "ccc", "logs", "metrics", "traces", "other")
_READS: dict[str, tuple[str, ...]] = {
    "demo": _ALL,
    "hub": _ALL,
    "simulate": _ALL,
    "keys": ("files", "other"),
    "keys rotate": ("broker", "topics", "files", "other"),
    "keys revoke": ("broker", "topics", "files", "other"),
    "provision": ("broker", "topics", "other"),
    "bench": _ALL,
    "archive": ("broker", "topics", "files", "logs", "metrics", "other"),
    "audit": ("topics", "files", "other"),
    "audit bench": _ALL,
    "replay": ("broker", "topics", "files", "other"),
    "send": ("broker", "topics", "files", "traces", "other"),
    "inbox": ("broker", "topics", "files", "traces", "other"),
    "contract": ("topics", "other"),
    "dashboard": ("broker", "topics", "ccc", "logs", "other"),
    "status": ("broker", "topics", "ccc", "other"),
    "dlq": ("broker", "topics", "other"),
}
"""Which groups of I247_* variables each command reads (the groups: brokers.settings); a
command not listed reads them all."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="i247",
        description=(__doc__ or "").split("\n\n")[0],
        epilog=EXIT_CODES + "\neach command's --help names the I247_* variables it reads",
    )
    parser.add_argument("--version", action="version", version=f"i247 {package_version()}")
    parser.add_argument(
        "--traceback", action="store_true", help="on failure, print the traceback too"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run the live backbone with simulated traffic")
    demo.add_argument("--duration", type=positive, default=30.0, help="seconds of traffic")
    demo.add_argument("--rate", type=positive, default=200.0, help="messages per second")
    demo.add_argument("--seed", type=int, default=2477, help="traffic seed")
    demo.add_argument(
        "--fault-share",
        type=share,
        default=0.01,
        help="share of deliberately bad records",
    )
    demo.add_argument(
        "--drain-timeout",
        type=non_negative,
        default=60.0,
        help="seconds to wait for in-flight traffic after sending stops",
    )
    demo.add_argument("--summary-json", type=Path, help="also write the accounting as JSON")
    demo.add_argument(
        "--shift-seconds",
        type=float,
        default=20.0,
        help="length of a duty shift, compressed for the demo (28800 is real time)",
    )
    demo.add_argument(
        "--fail-hub",
        action="append",
        default=[],
        metavar="SITE@Ns",
        help="SIGKILL that hub's process N seconds into the run (repeatable), e.g. lyon@20s",
    )
    demo.add_argument(
        "--restore-hub",
        action="append",
        default=[],
        metavar="SITE@Ns",
        help="restart that hub N seconds into the run (repeatable), e.g. lyon@40s",
    )
    demo.add_argument(
        "--archive",
        type=Path,
        help="audit archive to write (default: a new file under the data dir)",
    )
    demo.add_argument("--no-archive", action="store_true", help="run without the archiver")
    demo.add_argument(
        "--suite",
        choices=("x25519", "mlkem768-x25519"),
        default="x25519",
        help="HPKE suite for wrapping data keys: classic or hybrid post-quantum",
    )
    demo.add_argument("--no-live", action="store_true", help="no live table (for logs/CI)")
    demo.add_argument(
        "--no-dashboard", action="store_true", help="do not start the operations dashboard"
    )
    demo.add_argument(
        "--dashboard-port",
        type=tcp_port,
        default=8247,
        help="port of the operations dashboard (http://127.0.0.1:PORT/)",
    )
    duties = demo.add_argument_group("the CCC's duties: notices, teams, database checks")
    duties.add_argument(
        "--no-duties", action="store_true", help="plain messages only: no notices, teams, checks"
    )
    duties.add_argument(
        "--notice-every",
        type=positive,
        default=3.0,
        help="seconds between notice events: requests, diffusions, recalls, cancellations",
    )
    duties.add_argument(
        "--check-rate",
        type=non_negative,
        default=10.0,
        help="items checked per second, half by an IMEST screening arrivals (0: none)",
    )
    duties.add_argument(
        "--hit-share",
        type=share,
        default=0.02,
        help="share of checked travellers who hit",
    )
    duties.add_argument(
        "--clock-scale",
        type=float,
        default=30.0,
        help="minutes-long clocks run this much faster: a 10-minute confirmation in 20 s",
    )
    duties.add_argument(
        "--calendar-scale",
        type=float,
        default=5_000_000.0,
        help="hours-to-years run this much faster: a five-year notice in 32 s",
    )

    hub = commands.add_parser(
        "hub", help="run one CCC hub", description="Run one CCC hub until SIGTERM/SIGINT."
    )
    hub.add_argument("--site", choices=HUB_SITES, required=True, help="the hub's site")

    simulate = commands.add_parser("simulate", help="run the simulated NCBs")
    simulate.add_argument("--rate", type=positive, default=200.0, help="messages per second")
    simulate.add_argument(
        "--duration", type=positive, default=float("inf"), help="seconds of traffic"
    )
    simulate.add_argument("--seed", type=int, default=2477, help="traffic seed")
    simulate.add_argument(
        "--drain-timeout",
        type=non_negative,
        default=30.0,
        help="seconds to wait for in-flight traffic after sending stops",
    )
    simulate.add_argument(
        "--fault-share", type=share, default=0.01, help="share of deliberately bad records"
    )
    simulate.add_argument(
        "--suite",
        choices=("x25519", "mlkem768-x25519"),
        default="x25519",
        help="HPKE suite for wrapping data keys",
    )

    keys = commands.add_parser("keys", help="manage the keyring")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    init = key_commands.add_parser("init", help="generate keys for every participant")
    init.add_argument("--dir", type=Path, help="keys directory (I247_KEYS_DIR)")
    init.add_argument("--overwrite", action="store_true", help="replace existing keys")
    register_key_lifecycle(key_commands)
    register_access(commands, key_commands)

    commands.add_parser("provision", help="create every topic of the backbone")

    bench = commands.add_parser("bench", help="measure throughput and latency")
    bench.add_argument("--duration", type=positive, default=15.0, help="seconds of traffic")
    bench.add_argument("--rate", type=positive, default=200.0, help="messages per second offered")
    bench.add_argument("--json", type=Path, help="also write the figures as JSON")
    bench.add_argument(
        "--saturation-messages",
        type=int,
        default=5000,
        help="pre-sealed backlog drained at saturation, baseline and routing path",
    )
    bench.add_argument(
        "--profile-hub",
        type=Path,
        help="record the saturation hub with py-spy (on PATH) for 15 s: .json speedscope, else raw",
    )
    bench.add_argument(
        "--idle-seconds",
        type=non_negative,
        default=30.0,
        help="CPU of the broker and every backbone process with no traffic (0 skips)",
    )
    bench.add_argument(
        "--idle-only",
        action="store_true",
        help="measure only the idle cost (--idle-seconds, 30 if 0), with the machine's load",
    )
    bench.add_argument(
        "--failover-kills",
        type=int,
        default=3,
        help="SIGKILL the hub on duty this many times under traffic (0 skips)",
    )
    bench.add_argument(
        "--failover-rate", type=float, default=50.0, help="messages/s during failover"
    )
    bench.add_argument(
        "--failover-ttl-ms", type=int, default=2000, help="hubs' lease TTL for failover"
    )
    bench.add_argument(
        "--checks-rate",
        type=float,
        default=20.0,
        help="database checks/s for --duration s beside an echo baseline (0 skips)",
    )
    bench.add_argument(
        "--audit-records",
        type=int,
        default=0,
        help="audit archive bench over this many records (0 skips; 1000000 takes minutes)",
    )
    bench.add_argument(
        "--broadcast-notices",
        type=int,
        default=20,
        help="worldwide Red Notices broadcast to all 196 NCBs, timed to the last (0 skips)",
    )
    bench.add_argument("--broadcast-rate", type=float, default=1.0, help="Red Notice requests/s")
    _add_audit_commands(commands)

    register_replay(commands)
    register_bureau_commands(commands)
    register_contract(commands)  # i247 contract [--check]
    register_dashboard(commands)  # i247 dashboard [--port --host]
    register_status(commands)  # i247 status [--json]
    register_dlq_commands(commands)  # i247 dlq list|show|redrive
    finish_help(parser, _READS, EXIT_CODES)
    return parser


def _add_audit_commands(commands: Any) -> None:
    """``i247 archive`` and ``i247 audit verify|prove|bench``; each sets its ``handler``."""
    archive_help = "archive file (default <I247_DATA_DIR>/audit/<prefix>-archive.sqlite3)"
    archive = commands.add_parser("archive", help="run the audit archiver (needs I247_BOOTSTRAP)")
    archive.add_argument("--archive", type=Path, help=archive_help)
    archive.add_argument("--head-seconds", type=float, default=5.0, help="seconds between heads")
    archive.add_argument("--head-records", type=int, default=10_000, help="records per head")
    archive.set_defaults(handler=_archive)
    audit = commands.add_parser("audit", help="verify the audit archive or prove a record")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser("verify", help="recompute the tree, check every head")
    verify.add_argument("--archive", type=Path, help=archive_help)
    verify.add_argument("--keys", type=Path, help="keys directory (I247_KEYS_DIR)")
    prove = audit_commands.add_parser("prove", help="print an inclusion proof as JSON")
    prove.add_argument("--archive", type=Path, help=archive_help)
    prove.add_argument("--topic", required=True)
    prove.add_argument("--partition", type=int, required=True)
    prove.add_argument("--offset", type=int, required=True)
    consistency = audit_commands.add_parser(
        "consistency", help="print an RFC 6962 consistency proof between two signed heads"
    )
    consistency.add_argument("--archive", type=Path, help=archive_help)
    consistency.add_argument("--from", dest="old_size", type=int, required=True, metavar="SIZE")
    consistency.add_argument("--to", dest="new_size", type=int, required=True, metavar="SIZE")
    bench = audit_commands.add_parser(
        "bench", help="archive write and verify rates; --full adds live archiving and replay"
    )
    bench.add_argument("--archive", type=Path, help="a new file to generate (not with --full)")
    bench.add_argument("--records", type=int, default=1_000_000)
    bench.add_argument(
        "--full",
        action="store_true",
        help="the issue's measure on a broker (I247_BOOTSTRAP or embedded): live archive rate "
        "and lag, verify, replay to JSON Lines and to a topic; archive cached under data dir",
    )
    bench.add_argument("--live-rate", type=float, default=2_000.0, help="records/s offered live")
    bench.add_argument("--live-seconds", type=float, default=10.0)
    bench.add_argument(
        "--topic-records", type=int, default=100_000, help="records re-published to a topic"
    )
    bench.add_argument(
        "--jsonl-records", type=int, help="records replayed to JSON Lines (default: all)"
    )
    bench.add_argument("--json", type=Path, help="also write the figures here as JSON")
    from agents.ops import audit as tools

    verify.set_defaults(handler=tools.verify_command)
    prove.set_defaults(handler=tools.prove_command)
    consistency.set_defaults(handler=tools.consistency_command)
    bench.set_defaults(handler=_audit_bench)


def _audit_bench(args: argparse.Namespace, settings: Settings) -> int:
    """``i247 audit bench``; ``--full`` loads ``agents.bench.audit`` (live traffic, replay)."""
    if args.full:
        from agents.bench.audit import full_bench_command

        return full_bench_command(args, settings)
    from agents.ops.audit import bench_command

    return bench_command(args, settings)


def _archive(args: argparse.Namespace, settings: Settings) -> int:
    import signal

    from brokers.archive_store import default_archive_path
    from streams.archive.archiver import run_archiver

    if not settings.bootstrap:
        raise SettingsError("i247 archive needs a broker: set I247_BOOTSTRAP")
    path = args.archive or default_archive_path(settings)

    async def archive_until_signalled() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        return await run_archiver(
            settings,
            path,
            stop=stop,
            head_seconds=args.head_seconds,
            head_records=args.head_records,
        )

    archived = asyncio.run(archive_until_signalled())
    print(f"{archived} records archived to {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every failure becomes one line on stderr and a documented code."""
    args = _parser().parse_args(argv)  # a usage error: argparse prints it and exits 2
    try:
        settings = Settings.from_env()
        install_connect_via()
        return _run(args, settings)
    except SystemExit as stop:
        if not isinstance(stop.code, str):
            raise
        failure_code, line = 2, stop.code  # a library's "needs X" exit: a configuration
    except BaseException as error:
        failure = explain(error)
        failure_code, line = failure.code, failure.line
        if args.traceback or os.environ.get("I247_LOG_LEVEL", "").strip().lower() == "debug":
            traceback.print_exc()
    command = " ".join(filter(None, [args.command, _subcommand(args)]))
    print(f"i247 {command}: {line}", file=sys.stderr)
    return failure_code


def _subcommand(args: argparse.Namespace) -> str | None:
    return (
        getattr(args, "keys_command", None)
        or getattr(args, "audit_command", None)
        or getattr(args, "dlq_command", None)
    )


def _needs_broker(args: argparse.Namespace) -> bool:
    """Whether the command talks to the broker at ``I247_BOOTSTRAP`` (if it is set)."""
    if args.command == "replay":
        return args.archive is None or bool(args.publish)
    if args.command == "audit":
        return args.audit_command == "bench" and bool(args.full)
    if args.command == "keys":
        return args.keys_command in {"rotate", "revoke"}
    if args.command == "acls":
        return bool(args.apply)
    return args.command in {
        "provision",
        "demo",
        "simulate",
        "bench",
        "archive",
        "hub",
        "send",
        "inbox",
        "dashboard",
        "status",
        "dlq",
    }


def _preflight(args: argparse.Namespace, settings: Settings) -> None:
    """Fail fast, in one line, when the broker does not answer or a hub's topics are missing."""
    if args.command in {"hub", "simulate", "dashboard", "status", "dlq"} and not settings.bootstrap:
        raise SettingsError(
            f"i247 {args.command} needs a running backbone: set I247_BOOTSTRAP=host:port "
            "(`i247 demo` starts one and sets it for the processes it starts)"
        )
    if not (settings.bootstrap and _needs_broker(args)):
        return
    if args.command in {"hub", "simulate"}:
        from agents.ops.operations import backbone_topics

        wanted = backbone_topics(settings)
        asyncio.run(check_topics(settings.bootstrap, wanted, security=client_security(settings)))
    else:
        asyncio.run(existing_topics(settings.bootstrap, security=client_security(settings)))


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "demo":
        from agents.demo.run import demo_plan

        demo_plan(settings, args)  # the options, validated before anything starts
    _preflight(args, settings)
    if getattr(args, "handler", None) is not None:
        handler: Callable[[argparse.Namespace, Settings], int] = args.handler
        return handler(args, settings)
    if args.command == "replay":
        return asyncio.run(args.run(settings, args))  # type: ignore[no-any-return]
    if args.command == "keys":
        from agents.ops.keyring import init_all

        directory_path = args.dir or Path(settings.keys_dir)
        directory = init_all(directory_path, overwrite=args.overwrite)
        print(f"{len(directory)} participants' keys in {directory_path}")
        return 0
    if args.command == "provision":
        from agents.ops.operations import provision_all

        report = asyncio.run(provision_all(settings))
        print(f"topics on {settings.bootstrap}: {report}")
        return 0
    if args.command == "hub":
        from streams.hub.worker import run_hub

        return run_hub(settings, args.site)
    if args.command == "simulate":
        from agents.demo.run import simulate

        return asyncio.run(simulate(settings, args))
    if args.command == "demo":
        from agents.demo.run import demo

        return asyncio.run(demo(settings, args))
    if args.command == "bench":
        from agents.bench.suite import bench

        return asyncio.run(bench(settings, args))
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
