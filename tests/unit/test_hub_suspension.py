"""A hub's service suspends on a broker change and resumes with a new runtime (no broker:
the runtime is a stand-in, the changes are handed in as the watcher would)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, cast

import pytest
from structlog.testing import capture_logs

import streams.hub.service
from brokers.broker_watch import BrokerChange, BrokerState, BrokerWatch, ChangeKind
from brokers.settings import Settings
from streams.core.coordination import HubPhase
from streams.core.dedup import SeenMessages
from streams.core.delivery import DeliveryLedger
from streams.health.metrics import HubMetrics
from streams.hub.service import HubService


@dataclass
class Producer:
    sent: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, topic: str, value: bytes, **_: object) -> None:
        self.sent.append(json.loads(value))


class Runtime:
    """Stands in for ``HubRuntime``: a phase, held units, start and abandon."""

    made: ClassVar[list[Runtime]] = []
    fail_starts: ClassVar[int] = 0

    def __init__(self, state: object) -> None:
        self.phase = HubPhase.STARTING
        self.workers = {"intake": object()}
        self.incarnation = f"life-{len(Runtime.made)}"
        self.producer = Producer()
        self.abandoned = False
        self.beats = 0
        self.ledgers: dict[str, DeliveryLedger] = {}
        Runtime.made.append(self)

    async def beat(self) -> None:
        self.beats += 1

    def tick_tag(self) -> None:
        raise AssertionError("a suspended hub's desks must not tick")

    async def start(self) -> None:
        if Runtime.fail_starts:
            Runtime.fail_starts -= 1
            raise ConnectionError("the broker went again")
        self.phase = HubPhase.RUNNING

    async def abandon(self) -> None:
        self.abandoned = True
        self.phase = HubPhase.STOPPED


@dataclass
class Desks:
    open_clocks: int = 0
    open_exchanges: int = 0
    open_windows: int = 0
    remembered: int = 0


@dataclass
class State:
    hub: str = "hub:lyon"
    counts: dict[str, int] = field(default_factory=dict)
    desks: Desks = field(default_factory=Desks)
    seen: SeenMessages = field(default_factory=SeenMessages)
    settings: Settings = field(default_factory=lambda: Settings(bootstrap="127.0.0.1:1"))
    metrics: HubMetrics = field(default_factory=HubMetrics)

    def clock(self) -> datetime:
        return datetime.now(UTC)

    def random_bytes(self, size: int) -> bytes:
        return os.urandom(size)


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> HubService:
    Runtime.made, Runtime.fail_starts = [], 0
    monkeypatch.setattr(streams.hub.service, "HubRuntime", Runtime)
    monkeypatch.setattr("streams.hub.service.asyncio.sleep", _no_wait)
    hub = HubService(State())  # type: ignore[arg-type]
    hub.runtime.phase = HubPhase.RUNNING
    return hub


async def _no_wait(_: float) -> None:
    """The resume loop's pause between attempts, skipped."""


def _change(kind: ChangeKind) -> BrokerChange:
    return BrokerChange(kind, 0.0, "test", cluster_id="i247-b")


USABLE = BrokerWatch(BrokerState.REACHABLE, "i247-b", 1)
DOWN = BrokerWatch(BrokerState.UNREACHABLE, "i247-a")
LOST = BrokerWatch(BrokerState.LOG_LOST, "i247-b", 1, lost=True)


def fake(service: HubService) -> Runtime:
    return cast("Runtime", service.runtime)


async def _resumed(service: HubService) -> None:
    assert service._resuming is not None
    await service._resuming


async def test_an_unreachable_broker_suspends_the_hub_once_and_readiness_says_why(
    service: HubService,
) -> None:
    first = service.runtime
    with capture_logs() as logs:
        await service._on_broker(_change(ChangeKind.UNREACHABLE), DOWN)
        await service._on_broker(_change(ChangeKind.LOG_LOST), LOST)
    assert [e["event"] for e in logs] == ["hub-suspended"]
    assert first.abandoned  # type: ignore[attr-defined]
    assert service.ready() == "suspended: broker-log-lost"
    assert service.suspended == "broker-log-lost"


async def test_a_usable_broker_resumes_with_a_new_runtime_and_journals_it(
    service: HubService,
) -> None:
    await service._on_broker(_change(ChangeKind.UNREACHABLE), DOWN)
    await service._on_broker(_change(ChangeKind.LOG_LOST), LOST)
    with capture_logs() as logs:
        await service._on_broker(_change(ChangeKind.LOG_READY), USABLE)
        await _resumed(service)
    assert len(Runtime.made) == 2
    assert fake(service) is Runtime.made[1]
    assert service.ready() is True
    (event,) = fake(service).producer.sent
    assert event["event"] == "hub-resumed"
    assert (event["reason"], event["fresh_log"]) == ("broker-log-lost", True)
    assert event["incarnation"] == "life-1"
    assert [e["event"] for e in logs] == ["hub-resumed"]


async def test_a_resume_that_fails_is_tried_again_with_yet_another_runtime(
    service: HubService,
) -> None:
    Runtime.fail_starts = 2
    await service._on_broker(_change(ChangeKind.UNREACHABLE), DOWN)
    await service._on_broker(_change(ChangeKind.BACK), USABLE)
    await _resumed(service)
    assert len(Runtime.made) == 4
    assert all(r.abandoned for r in Runtime.made[:3])
    assert service.suspended is None
    event = fake(service).producer.sent[0]
    assert (event["reason"], event["fresh_log"]) == ("broker-unreachable", False)


async def test_a_suspended_hub_beats_ticks_and_holds_nothing(service: HubService) -> None:
    await service.beat()
    assert fake(service).beats == 1
    await service._on_broker(_change(ChangeKind.UNREACHABLE), DOWN)
    await service.beat()
    await service.desk_due()
    assert fake(service).beats == 1
    with capture_logs() as logs:
        await service.report()
    assert (logs[0]["units"], logs[0]["suspended"]) == ([], "broker-unreachable")


async def test_a_new_log_provisioned_before_any_probe_saw_it_still_starts_afresh(
    service: HubService,
) -> None:
    first = fake(service)
    await service._on_broker(_change(ChangeKind.LOG_READY), USABLE)
    await _resumed(service)
    assert first.abandoned
    assert fake(service) is not first
    event = fake(service).producer.sent[0]
    assert (event["reason"], event["fresh_log"]) == ("broker-log-lost", True)
