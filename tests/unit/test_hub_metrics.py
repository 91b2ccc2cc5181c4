"""The hub's and archiver's metrics, and the probe server that exposes them."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from brokers.settings import Settings, SettingsError
from schemas.archive import ArchivedRecord
from schemas.keys import load_identity
from schemas.participants import AUDITOR, HUB_SITES
from streams.archive.archiver import Archiver
from streams.health.metrics import ArchiverMetrics, HubMetrics
from streams.health.probes import Probes, ProbeServer


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


class TestHubMetrics:
    def test_each_hub_has_a_registry_of_its_own(self) -> None:
        one, two = HubMetrics(), HubMetrics()
        one.admitted()
        assert value(one.registry, "i247_hub_messages_total", outcome="admitted", reason="") == 1
        assert value(two.registry, "i247_hub_messages_total", outcome="admitted", reason="") is None

    def test_outcomes_are_counted_by_kind(self) -> None:
        metrics = HubMetrics()
        for _ in range(3):
            metrics.admitted()
        metrics.readmitted()
        metrics.fenced()
        metrics.to_ccc()
        metrics.delivered(2, "ROUTINE", 0.02, duplicates=1)
        r = metrics.registry
        assert value(r, "i247_hub_messages_total", outcome="admitted", reason="") == 3
        assert value(r, "i247_hub_messages_total", outcome="readmitted", reason="") == 1
        assert value(r, "i247_hub_messages_total", outcome="fenced", reason="") == 1
        assert value(r, "i247_hub_messages_total", outcome="ccc", reason="") == 1
        assert value(r, "i247_hub_messages_total", outcome="delivered", reason="") == 2
        assert value(r, "i247_hub_messages_total", outcome="duplicate", reason="") == 1

    def test_a_refusal_is_an_outcome_and_a_dead_letter_with_its_reason(self) -> None:
        metrics = HubMetrics()
        metrics.refused("stale")
        metrics.refused("stale")
        metrics.refused("bad-signature")
        r = metrics.registry
        assert value(r, "i247_hub_messages_total", outcome="refused", reason="stale") == 2
        assert value(r, "i247_hub_dead_letters_total", reason="stale") == 2
        assert value(r, "i247_hub_dead_letters_total", reason="bad-signature") == 1

    def test_latency_lands_in_its_precedence_histogram(self) -> None:
        metrics = HubMetrics()
        metrics.delivered(1, "FLASH", 0.007)
        metrics.delivered(1, "FLASH", 3.0)
        metrics.delivered(1, "ROUTINE", -0.5)  # a sender's clock ahead: counted as 0
        r = metrics.registry
        name = "i247_hub_delivery_latency_seconds"
        assert value(r, f"{name}_count", precedence="FLASH") == 2
        assert value(r, f"{name}_sum", precedence="FLASH") == pytest.approx(3.007)
        assert value(r, f"{name}_bucket", precedence="FLASH", le="0.01") == 1
        assert value(r, f"{name}_bucket", precedence="FLASH", le="5.0") == 2
        assert value(r, f"{name}_sum", precedence="ROUTINE") == 0

    def test_a_record_with_no_recipients_observes_no_latency(self) -> None:
        metrics = HubMetrics()
        metrics.delivered(0, "ROUTINE", 1.0, duplicates=2)
        r = metrics.registry
        assert value(r, "i247_hub_delivery_latency_seconds_count", precedence="ROUTINE") is None
        assert value(r, "i247_hub_messages_total", outcome="duplicate", reason="") == 2

    def test_breaches_and_claims_by_label(self) -> None:
        metrics = HubMetrics()
        metrics.breach("IMMEDIATE")
        metrics.claimed("i247.lane.flash", "failover")
        metrics.claimed("intake", "failover")
        metrics.claimed("intake", "failback")
        r = metrics.registry
        assert value(r, "i247_hub_breaches_total", precedence="IMMEDIATE") == 1
        assert value(r, "i247_hub_claims_total", unit="intake", reason="failover") == 1
        assert value(r, "i247_hub_claims_total", unit="intake", reason="failback") == 1

    def test_units_held_follow_the_book_and_let_go_units_disappear(self) -> None:
        metrics = HubMetrics()
        metrics.held({"intake": 3, "lane.flash": 1}, {"intake": 12})
        r = metrics.registry
        assert value(r, "i247_hub_units_held") == 2
        assert value(r, "i247_hub_unit_epoch", unit="intake") == 3
        assert value(r, "i247_hub_lane_backlog", unit="intake") == 12
        assert value(r, "i247_hub_lane_backlog", unit="lane.flash") == 0
        metrics.held({"lane.flash": 2}, {"lane.flash": 5})
        assert value(r, "i247_hub_units_held") == 1
        assert value(r, "i247_hub_unit_epoch", unit="intake") is None
        assert value(r, "i247_hub_lane_backlog", unit="intake") is None
        assert value(r, "i247_hub_unit_epoch", unit="lane.flash") == 2


class TestArchiverMetrics:
    def test_appends_and_heads(self) -> None:
        metrics = ArchiverMetrics()
        metrics.appended(10, 110)
        metrics.appended(5, 115)
        metrics.head_signed()
        r = metrics.registry
        assert value(r, "i247_archiver_records_total") == 15
        assert value(r, "i247_archiver_leaves") == 115
        assert value(r, "i247_archiver_tree_heads_total") == 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TestProbes:
    def test_not_healthy_before_the_first_tick_nor_after_a_stall(self) -> None:
        clock = FakeClock()
        probes = Probes(CollectorRegistry(), ready=lambda: True, stall_seconds=10, clock=clock)
        assert probes.health()[0] is False
        probes.tick()
        assert probes.health() == (True, "ok")
        clock.now += 11
        healthy, why = probes.health()
        assert not healthy
        assert "11.0 s ago" in why
        assert probes.readiness()[0] is False  # a stalled loop is not ready either

    def test_ready_follows_what_the_process_says_at_each_tick(self) -> None:
        state = {"running": False}
        refreshed: list[int] = []
        probes = Probes(
            CollectorRegistry(),
            ready=lambda: state["running"],
            refresh=lambda: refreshed.append(1),
            clock=FakeClock(),
        )
        probes.tick()
        assert probes.readiness() == (False, "not ready yet")
        state["running"] = True
        assert probes.readiness()[0] is False  # judged in the loop, at the next tick
        probes.tick()
        assert probes.readiness() == (True, "ok")
        assert len(refreshed) == 2

    def test_a_failing_refresh_does_not_stop_the_tick(self) -> None:
        def broken() -> None:
            raise RuntimeError("gauge broke")

        probes = Probes(CollectorRegistry(), ready=lambda: True, refresh=broken, clock=FakeClock())
        probes.tick()
        assert probes.readiness() == (True, "ok")


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def served() -> Iterator[tuple[HubMetrics, Probes, dict[str, bool], int]]:
    metrics = HubMetrics()
    state = {"ready": False}
    probes = Probes(metrics.registry, ready=lambda: state["ready"])
    server = ProbeServer(probes, 0, host="127.0.0.1")
    port = server.start()
    try:
        yield metrics, probes, state, port
    finally:
        server.stop()


class TestProbeServer:
    def test_serves_metrics_health_and_readiness(
        self, served: tuple[HubMetrics, Probes, dict[str, bool], int]
    ) -> None:
        metrics, probes, state, port = served
        assert get(port, "/healthz")[0] == 503  # no tick yet
        probes.tick()
        assert get(port, "/healthz") == (200, "ok\n")
        assert get(port, "/readyz") == (503, "not ready yet\n")
        state["ready"] = True
        probes.tick()
        assert get(port, "/readyz") == (200, "ok\n")
        metrics.admitted()
        status, body = get(port, "/metrics")
        assert status == 200
        assert 'i247_hub_messages_total{outcome="admitted",reason=""} 1.0' in body
        assert get(port, "/nowhere")[0] == 404


class TestDemoPorts:
    def test_each_child_of_the_demo_gets_its_own_port_or_none(self) -> None:
        from agents.demo.run import metrics_ports

        ports = metrics_ports(9100)
        assert ports["archiver"] == 9100
        assert {ports[f"hub-{site}"] for site in HUB_SITES} == {9101, 9102, 9103}
        assert set(metrics_ports(0).values()) == {0}


class TestSetting:
    def test_off_unless_set(self) -> None:
        assert Settings.from_env({}).metrics_port == 0
        assert Settings.from_env({"I247_METRICS_PORT": "9100"}).metrics_port == 9100

    def test_a_port_out_of_range_is_refused_by_name(self) -> None:
        with pytest.raises(SettingsError, match="I247_METRICS_PORT"):
            Settings.from_env({"I247_METRICS_PORT": "70000"})


class TestArchiverReadiness:
    @pytest.fixture
    def archiver(self, keys_dir: Path, tmp_path: Path) -> Archiver:
        return Archiver(Settings(), tmp_path / "a.sqlite3", load_identity(keys_dir, AUDITOR))

    @staticmethod
    def record(topic: str, partition: int, offset: int) -> ArchivedRecord:
        return ArchivedRecord(topic, partition, offset, 0, None, b"x")

    def test_caught_up_once_every_end_offset_seen_at_start_is_archived(
        self, archiver: Archiver
    ) -> None:
        archiver._behind = {("i247.inbound", 0): 10, ("i247.inbound", 1): 3}
        archiver._catching_up([self.record("i247.inbound", 0, 9)])
        assert not archiver.caught_up  # partition 1 still behind, under steady traffic
        archiver._catching_up([self.record("i247.inbound", 1, 2), self.record("i247.x", 0, 0)])
        assert archiver.caught_up

    def test_an_empty_fetch_counts_as_caught_up(self, archiver: Archiver) -> None:
        archiver._behind = {("i247.inbound", 0): 10}  # whatever the broker reported
        archiver._catching_up([])
        assert archiver.caught_up
