"""The access gate: TLS (and SASL) in front of the embedded Tansu, in a process of its own.

Clients reach the gate's port (the one Tansu advertises); the gate terminates TLS, runs the
SASL exchange of ``brokers.sasl_gate`` when users are given, and then pipes bytes both
ways to Tansu's own listener on loopback. A client that fails TLS or SASL is disconnected
and logged (``broker-access-refused``, with the peer and the reason).

``brokers.embedded`` runs it as ``python -m brokers.gate`` (``serve_gate``): a thread in the
starting process would share its interpreter lock with whatever else runs there (the demo's
simulator), and every byte of every client crosses the gate. Users come in the environment
(``I247_GATE_USERS``, JSON), never on the command line.

Limit: Tansu's own listener is plaintext on 127.0.0.1; a process on the same host that
finds its port bypasses the gate. Access control against other hosts is what the gate
gives; a shared host needs a real Kafka cluster (``compose.yaml``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
import threading
from collections.abc import Mapping
from pathlib import Path

import structlog

from brokers.sasl_gate import Answer, Forward, GateSession, Refuse

__all__ = ["GATE_USERS_ENV", "READY_LINE", "AccessGate", "serve_gate", "server_context"]

GATE_USERS_ENV = "I247_GATE_USERS"
READY_LINE = "i247-gate-listening"

log = structlog.get_logger("i247.broker.gate")

_CHUNK = 1 << 16
_MAX_FRAME = 1 << 28


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A TLS 1.2+ server context with the broker's certificate chain."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    return context


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _read_frame(reader: asyncio.StreamReader) -> bytes | None:
    try:
        (size,) = struct.unpack(">i", await reader.readexactly(4))
        if not 0 < size <= _MAX_FRAME:
            return None
        return await reader.readexactly(size)
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, OSError):
        return None


class AccessGate:
    """Listens on ``host:port`` with TLS; forwards to ``127.0.0.1:upstream_port``.

    With ``users`` (name -> password) every connection must authenticate with SASL first.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        upstream_port: int,
        context: ssl.SSLContext,
        users: Mapping[str, str] | None = None,
    ) -> None:
        self.host, self.port, self.upstream_port = host, port, upstream_port
        self._context = context
        self._users = dict(users) if users is not None else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Start listening (blocking until bound); ``OSError`` if the port is taken."""
        self._thread = threading.Thread(target=self._run, name="i247-access-gate", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the access gate did not bind {self.host}:{self.port}")
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._serve, self.host, self.port, ssl=self._context)
            )
        except OSError as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            loop.run_until_complete(self._server.wait_closed())
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    def stop(self) -> None:
        """Stop listening and drop every connection."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
        self._loop = self._thread = None

    def _refuse(self, peer: object, reason: str) -> None:
        log.warning("broker-access-refused", peer=str(peer), reason=reason)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError as exc:
            log.error("broker-gate-upstream-down", upstream_port=self.upstream_port, error=str(exc))
            writer.close()
            return
        back = asyncio.create_task(_pipe(up_reader, writer))
        try:
            if self._users is not None and not await self._authenticate(
                reader, writer, up_writer, peer
            ):
                return
            await _pipe(reader, up_writer)
        finally:
            with contextlib.suppress(Exception):
                up_writer.close()
            with contextlib.suppress(Exception):
                writer.close()
            back.cancel()

    async def _authenticate(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream: asyncio.StreamWriter,
        peer: object,
    ) -> bool:
        assert self._users is not None
        session = GateSession(self._users)
        while not session.authenticated:
            frame = await _read_frame(reader)
            if frame is None:
                self._refuse(peer, "disconnected before authenticating")
                return False
            action = session.on_frame(frame)
            if isinstance(action, Forward):
                upstream.write(struct.pack(">i", len(action.frame)) + action.frame)
                await upstream.drain()
            elif isinstance(action, Answer):
                writer.write(struct.pack(">i", len(action.frame)) + action.frame)
                await writer.drain()
            elif isinstance(action, Refuse):
                if action.answer is not None:
                    writer.write(struct.pack(">i", len(action.answer)) + action.answer)
                    with contextlib.suppress(Exception):
                        await writer.drain()
                self._refuse(peer, action.reason)
                return False
        log.info("broker-access-granted", peer=str(peer), principal=session.principal)
        return True


def serve_gate(argv: list[str] | None = None) -> int:
    """``python -m brokers.gate --port P --upstream-port U --cert C --key K``: run until killed."""
    import argparse
    import json
    import os
    import signal
    import sys

    from brokers.logs import configure_logging

    parser = argparse.ArgumentParser(prog="python -m brokers.gate")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    args = parser.parse_args(argv)
    configure_logging("info")
    raw = os.environ.get(GATE_USERS_ENV)
    users = json.loads(raw) if raw else None
    gate = AccessGate(
        host=args.host,
        port=args.port,
        upstream_port=args.upstream_port,
        context=server_context(args.cert, args.key),
        users=users,
    )
    try:
        gate.start()
    except OSError as exc:
        print(f"i247-gate-port-taken {exc}", flush=True)
        return 2
    print(READY_LINE, flush=True)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    gate.stop()
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(serve_gate())
