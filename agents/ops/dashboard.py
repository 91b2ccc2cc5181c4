"""``i247 dashboard``: a live operations page, read from the backbone's topics.

The I/O around ``agents.ops.dashboard_view.DashboardView``: ONE group-less consumer reads the
lease journal, the heartbeats, the control journal and the dead letters from their start
and every inbox from its end (latency of what is delivered from now on), and asks for the
high watermarks of intake and the lanes once a second (backlogs). The broker charges CPU
per idle consumer and per fetch, so one consumer with a few-hundred-millisecond fetch wait
serves the page's one-second freshness. An aiohttp server serves the page
(``dashboard.html``, vanilla JS, no build step) and ``/api/state``, the view's snapshot.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import time
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition

from agents.ops.dashboard_view import DashboardView
from brokers.clients import make_consumer
from brokers.logs import configure_logging
from brokers.provisioning import TopicsNotProvisioned, existing_topics
from brokers.settings import Settings, SettingsError
from brokers.tail import received_from_kafka

__all__ = [
    "DEFAULT_PORT",
    "FETCH_WAIT_MS",
    "Dashboard",
    "DashboardFeed",
    "register_dashboard",
    "serve_dashboard",
    "tcp_port",
]

log = structlog.get_logger("i247.dashboard")

DEFAULT_PORT = 8247
FETCH_WAIT_MS = 300
WATERMARK_EVERY_S = 1.0


def _now() -> datetime:
    return datetime.now(UTC)


class DashboardFeed:
    """One consumer that feeds every record it reads, and the watermarks, into the view."""

    def __init__(self, settings: Settings, view: DashboardView) -> None:
        self._settings = settings
        self.view = view
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._watermark_partitions: list[TopicPartition] = []

    async def start(self) -> None:
        settings, topics = self._settings, self._settings.topics
        if not settings.bootstrap:
            raise SettingsError("the dashboard needs a broker: set I247_BOOTSTRAP=host:port")
        present = await existing_topics(settings.bootstrap)
        journals = [topics.leases, topics.heartbeat, topics.control, topics.deadletter]
        missing = [t for t in [*journals, topics.inbound] if t not in present]
        if missing:
            raise TopicsNotProvisioned(settings.bootstrap, missing)
        inboxes = sorted(
            t for t in present if t.startswith(f"{topics.prefix}.") and t.endswith(".inbox")
        )
        watched = [topics.inbound, *(lane for lane in topics.lanes() if lane in present)]
        consumer = make_consumer(settings, fetch_max_wait_ms=FETCH_WAIT_MS)
        await consumer.start()
        self._consumer = consumer
        try:
            await consumer._client.force_metadata_update()
            parts = {t: self._partitions(consumer, t) for t in {*journals, *inboxes, *watched}}
            from_start = [tp for t in journals for tp in parts[t]]
            from_end = [tp for t in inboxes for tp in parts[t]]
            self._watermark_partitions = [tp for t in watched for tp in parts[t]]
            consumer.assign(from_start + from_end)
            await consumer.seek_to_beginning(*from_start)
            if from_end:
                await consumer.seek_to_end(*from_end)
        except BaseException:
            await self.stop()
            raise
        log.info("dashboard-reading", journals=journals, inboxes=len(inboxes))
        self._task = asyncio.create_task(self._run(), name="dashboard-feed")

    @staticmethod
    def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
        return [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or {0})
        ]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def _run(self) -> None:
        assert self._consumer is not None
        consumer, next_marks = self._consumer, 0.0
        while True:
            batch = await consumer.getmany(timeout_ms=FETCH_WAIT_MS)
            now = _now()
            for records in batch.values():
                for record in records:
                    self.view.apply(received_from_kafka(record), now)
            if time.monotonic() >= next_marks:
                next_marks = time.monotonic() + WATERMARK_EVERY_S
                try:
                    ends = await consumer.end_offsets(self._watermark_partitions)
                except Exception as error:  # a slow broker must not stop the page
                    log.warning("dashboard-watermarks-failed", error=repr(error))
                else:
                    self.view.apply_watermarks(
                        {(tp.topic, tp.partition): e for tp, e in ends.items()}
                    )


def tcp_port(text: str) -> int:
    """An argparse type: a TCP port, 0 (any free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (0-65535)")
    return value


def _page() -> str:
    return resources.files("agents.ops").joinpath("dashboard.html").read_text(encoding="utf-8")


class Dashboard:
    """The feed and the HTTP server together: ``async with Dashboard(...) as d: d.url``."""

    def __init__(self, settings: Settings, host: str = "127.0.0.1", port: int = DEFAULT_PORT):
        self.view = DashboardView(settings.topics, lease_ttl_s=settings.lease_ttl_ms / 1000)
        self.feed = DashboardFeed(settings, self.view)
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self.url = ""

    def app(self) -> web.Application:
        page = _page()

        async def index(_: web.Request) -> web.Response:
            return web.Response(text=page, content_type="text/html")

        async def state(_: web.Request) -> web.Response:
            return web.json_response(self.view.snapshot(_now()), dumps=_dumps)

        app = web.Application()
        app.router.add_get("/", index)
        app.router.add_get("/api/state", state)
        return app

    async def __aenter__(self) -> Dashboard:
        await self.feed.start()
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, self._host, self._port)
        try:
            await site.start()
        except BaseException:
            await self.__aexit__()
            raise
        port = runner.addresses[0][1] if runner.addresses else self._port
        self.url = f"http://{self._host}:{port}/"
        log.info("dashboard-serving", url=self.url)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.feed.stop()


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


async def serve_dashboard(settings: Settings, host: str, port: int) -> int:
    """Serve until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with Dashboard(settings, host, port) as dashboard:
        print(f"dashboard: {dashboard.url}  (Ctrl-C stops it)", flush=True)
        await stop.wait()
    return 0


def _dashboard_command(args: argparse.Namespace, settings: Settings) -> int:
    log_file = os.environ.get("I247_LOG_FILE")
    configure_logging(settings.log_level, Path(log_file) if log_file else None)
    return asyncio.run(serve_dashboard(settings, args.host, args.port))


def register_dashboard(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``dashboard`` to the ``i247`` subcommands."""
    dashboard = commands.add_parser(
        "dashboard",
        help="serve a live operations page: duty, leases, failovers, backlogs, latency, desks",
        description="Serve a live operations page read from the backbone's topics (hub on "
        "duty, leases and epochs, failover timeline, backlogs, latency, dead letters, "
        "notices, teams, checks, breaches) until SIGINT/SIGTERM.",
    )
    dashboard.add_argument("--port", type=tcp_port, default=DEFAULT_PORT, help="TCP port (0: any)")
    dashboard.add_argument("--host", default="127.0.0.1", help="address to listen on")
    dashboard.set_defaults(handler=_dashboard_command)
