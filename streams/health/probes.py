"""``/metrics``, ``/healthz`` and ``/readyz`` of one process, on ``I247_METRICS_PORT``.

The server is the standard library's ``ThreadingHTTPServer`` in a daemon thread, serving a
prometheus_client registry (aiohttp would run in the loop it is meant to judge). Being
off the event loop is the point of ``/healthz``: a ``Probes.tick`` task in the loop stamps
the time every second (and refreshes the gauges and readiness there, so the thread only
reads); a loop that stopped turning shows as a stale stamp and a 503 that says so, rather
than a probe that hangs. ``/readyz`` answers what the process's ``ready`` says (a hub:
its life cycle is running on a usable broker, or why not; the archiver: it has caught up
once).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["STALL_SECONDS", "ProbeServer", "Probes"]

log = structlog.get_logger("i247.probes")

STALL_SECONDS = 15.0
"""A loop whose tick is older than this is not healthy: longer than any batch it handles
(the work loop yields every 10 ms) and than a lease TTL's worth of missed renewals."""


class Probes:
    """Liveness and readiness of one process, judged in its event loop, read from any thread."""

    def __init__(
        self,
        registry: CollectorRegistry,
        ready: Callable[[], bool | str],
        refresh: Callable[[], None] | None = None,
        *,
        stall_seconds: float = STALL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self._ready = ready
        self._refresh = refresh
        self.stall_seconds = stall_seconds
        self.clock = clock
        self._last_tick: float | None = None
        self._is_ready = False
        self._not_ready_why = "not ready yet"

    def tick(self) -> None:
        """Stamp the loop as turning; refresh gauges and readiness (call from the loop)."""
        if self._refresh is not None:
            try:
                self._refresh()
            except Exception:  # a gauge must never stop the probes
                log.exception("metrics-refresh-failed")
        answer = self._ready()  # True, False, or why not
        self._is_ready = answer is True
        self._not_ready_why = answer if isinstance(answer, str) else "not ready yet"
        self._last_tick = self.clock()

    async def tick_forever(self, every: float = 1.0) -> None:
        while True:
            self.tick()
            await asyncio.sleep(every)

    def health(self) -> tuple[bool, str]:
        """(healthy, why): the loop ticked within ``stall_seconds``."""
        if self._last_tick is None:
            return False, "the event loop has not ticked yet"
        age = self.clock() - self._last_tick
        if age > self.stall_seconds:
            return False, f"the event loop last ticked {age:.1f} s ago"
        return True, "ok"

    def readiness(self) -> tuple[bool, str]:
        """(ready, why): healthy and the process says it is ready."""
        healthy, why = self.health()
        if not healthy:
            return False, why
        return (True, "ok") if self._is_ready else (False, self._not_ready_why)


class ProbeServer:
    """The HTTP server in a daemon thread; ``start`` returns the port bound (0 picks one)."""

    def __init__(self, probes: Probes, port: int, host: str = "0.0.0.0") -> None:  # noqa: S104
        self.probes = probes
        self._server = ThreadingHTTPServer((host, port), _handler(probes))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="i247-probes", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> int:
        self._thread.start()
        log.info("probes-serving", port=self.port)
        return self.port

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler(probes: Probes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(probes.registry), CONTENT_TYPE_LATEST)
            elif path in ("/healthz", "/readyz"):
                good, why = probes.health() if path == "/healthz" else probes.readiness()
                self._send(200 if good else 503, f"{why}\n".encode(), "text/plain")
            else:
                self._send(404, b"try /metrics, /healthz or /readyz\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Probes every few seconds would flood stderr; structlog is the log."""

    return Handler
