"""compose.yaml runs the same backbone on Apache Kafka, configured as the code reads it.

No Docker engine runs here, so these tests check the file's structure, and that every
``I247_*`` setting a service passes is one ``Settings.from_env`` reads and accepts. The
names it reads are observed by watching it read, not copied into this file.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from brokers.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
KAFKA_MIN_SESSION_TIMEOUT_MS = 6000  # Kafka's group.min.session.timeout.ms default


class WatchedEnvironment(Mapping[str, str]):
    """An empty environment that remembers every name it was asked for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        raise KeyError(name)

    def get(self, name: str, default: Any = None) -> Any:
        self.asked.add(name)
        return default

    def __contains__(self, name: object) -> bool:
        self.asked.add(str(name))
        return False

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def names_settings_read() -> set[str]:
    environment = WatchedEnvironment()
    Settings.from_env(environment)
    return environment.asked


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(document, dict)
    return document


def kafka_nodes(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if "apache/kafka" in s.get("image", "")}


def backbone_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services built from our Dockerfile."""
    return {n: s for n, s in compose["services"].items() if "build" in s}


def env(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in service.get("environment", {}).items()}


def listeners(value: str) -> dict[str, str]:
    """``NAME://host:port,...`` as ``{NAME: host:port}``."""
    return dict(entry.split("://") for entry in value.split(","))


class TestKafkaCluster:
    def test_three_apache_kafka_nodes_in_kraft_mode(self, compose: dict[str, Any]) -> None:
        nodes = kafka_nodes(compose)
        assert len(nodes) == 3
        for node in nodes.values():
            roles = set(env(node)["KAFKA_PROCESS_ROLES"].split(","))
            assert roles == {"broker", "controller"}
            assert "ZOOKEEPER" not in " ".join(env(node))

    def test_one_quorum_of_every_node_on_its_controller_listener(
        self, compose: dict[str, Any]
    ) -> None:
        nodes = kafka_nodes(compose)
        [voters] = {env(n)["KAFKA_CONTROLLER_QUORUM_VOTERS"] for n in nodes.values()}
        expected = set()
        for name, node in nodes.items():
            variables = env(node)
            controller = variables["KAFKA_CONTROLLER_LISTENER_NAMES"]
            port = listeners(variables["KAFKA_LISTENERS"])[controller].rsplit(":", 1)[1]
            expected.add(f"{variables['KAFKA_NODE_ID']}@{node.get('hostname', name)}:{port}")
        assert set(voters.split(",")) == expected
        assert len({env(n)["KAFKA_NODE_ID"] for n in nodes.values()}) == 3

    def test_one_cluster_id_that_kafka_can_decode(self, compose: dict[str, Any]) -> None:
        [cluster_id] = {env(n)["CLUSTER_ID"] for n in kafka_nodes(compose).values()}
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16

    def test_replication_three_with_two_in_sync_and_no_auto_creation(
        self, compose: dict[str, Any]
    ) -> None:
        for node in kafka_nodes(compose).values():
            variables = env(node)
            assert variables["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
            assert variables["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
            assert variables["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
            assert variables["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"

    def test_each_node_keeps_its_log_on_its_own_volume(self, compose: dict[str, Any]) -> None:
        mounts = set()
        for node in kafka_nodes(compose).values():
            [mount] = node["volumes"]
            volume, path = mount.split(":")
            assert path == env(node)["KAFKA_LOG_DIRS"]
            mounts.add(volume)
        assert len(mounts) == 3
        assert mounts <= set(compose["volumes"])

    def test_each_node_reports_its_health(self, compose: dict[str, Any]) -> None:
        for node in kafka_nodes(compose).values():
            assert "kafka-broker-api-versions.sh" in " ".join(node["healthcheck"]["test"])


class TestBackboneServices:
    def test_every_i247_variable_set_is_one_settings_reads(self, compose: dict[str, Any]) -> None:
        read = names_settings_read()
        assert {"I247_BOOTSTRAP", "I247_REPLICATION_FACTOR"} <= read  # the watch works
        for name, service in backbone_services(compose).items():
            variables = {k for k in env(service) if k.startswith("I247_")}
            assert variables <= read, f"{name} sets {variables - read}, which nothing reads"

    def test_the_dockerfile_sets_only_variables_settings_reads(self) -> None:
        dockerfile = (ROOT / "Dockerfile").read_text()
        assert set(re.findall(r"\b(I247_[A-Z_]+)=", dockerfile)) <= names_settings_read()

    def test_every_service_s_settings_parse_for_the_three_brokers(
        self, compose: dict[str, Any]
    ) -> None:
        internal = {
            listeners(env(n)["KAFKA_ADVERTISED_LISTENERS"])[
                env(n)["KAFKA_INTER_BROKER_LISTENER_NAME"]
            ]
            for n in kafka_nodes(compose).values()
        }
        for service in backbone_services(compose).values():
            settings = Settings.from_env(env(service))
            assert set((settings.bootstrap or "").split(",")) == internal
            assert settings.replication_factor == 3
            assert settings.session_timeout_ms >= KAFKA_MIN_SESSION_TIMEOUT_MS
            assert settings.keys_dir == Path("/keys")

    def test_the_brokers_take_records_as_large_as_producers_send(
        self, compose: dict[str, Any]
    ) -> None:
        largest = min(int(env(n)["KAFKA_MESSAGE_MAX_BYTES"]) for n in kafka_nodes(compose).values())
        for service in backbone_services(compose).values():
            # brokers.clients.make_producer allows twice I247_MAX_MESSAGE_BYTES per record
            assert 2 * Settings.from_env(env(service)).max_message_bytes <= largest

    @pytest.mark.parametrize(
        ("service", "command"),
        [
            ("keys", ["i247", "keys", "init", "--dir", "/keys"]),
            ("provision", ["i247", "provision"]),
            ("hub-lyon", ["i247", "hub", "--site", "lyon"]),
            ("hub-buenos-aires", ["i247", "hub", "--site", "buenos-aires"]),
            ("hub-singapore", ["i247", "hub", "--site", "singapore"]),
            ("archiver", ["i247", "archive", "--archive", "/data/archive.sqlite3"]),
            ("simulator", ["i247", "simulate", "--rate", "200"]),
        ],
    )
    def test_each_service_runs_a_real_command(
        self, compose: dict[str, Any], service: str, command: list[str]
    ) -> None:
        from agents.cli import _parser

        assert compose["services"][service]["command"] == command
        _parser().parse_args(command[1:])

    def test_keys_are_made_once_and_shared(self, compose: dict[str, Any]) -> None:
        services = compose["services"]
        for name in (
            "keys",
            "hub-lyon",
            "hub-buenos-aires",
            "hub-singapore",
            "archiver",
            "simulator",
        ):
            assert any(m.split(":")[:2] == ["keys", "/keys"] for m in services[name]["volumes"])
        assert services["keys"]["restart"] == "no"

    def test_topics_are_provisioned_on_a_healthy_cluster_before_traffic(
        self, compose: dict[str, Any]
    ) -> None:
        services = compose["services"]
        assert set(services["provision"]["depends_on"]) == set(kafka_nodes(compose))
        assert all(
            c == {"condition": "service_healthy"}
            for c in services["provision"]["depends_on"].values()
        )
        for name in ("hub-lyon", "hub-buenos-aires", "hub-singapore", "archiver", "simulator"):
            for before in ("keys", "provision"):
                assert services[name]["depends_on"][before] == {
                    "condition": "service_completed_successfully"
                }


PROBED = ("hub-lyon", "hub-buenos-aires", "hub-singapore", "archiver")


class TestHealthChecks:
    @pytest.mark.parametrize("name", PROBED)
    def test_hubs_and_the_archiver_are_healthy_when_their_readyz_says_so(
        self, compose: dict[str, Any], name: str
    ) -> None:
        service = compose["services"][name]
        port = Settings.from_env(env(service)).metrics_port
        assert port, f"{name} serves no metrics: set I247_METRICS_PORT"
        probe = " ".join(service["healthcheck"]["test"])
        assert f"localhost:{port}/readyz" in probe
        assert service["healthcheck"]["test"][0] == "CMD"

    def test_each_probed_service_publishes_its_metrics_port_on_its_own_host_port(
        self, compose: dict[str, Any]
    ) -> None:
        host_ports = []
        for name in PROBED:
            service = compose["services"][name]
            port = Settings.from_env(env(service)).metrics_port
            [mapping] = service["ports"]
            host, container = mapping.split(":")
            assert int(container) == port
            host_ports.append(host)
        assert len(set(host_ports)) == len(PROBED)

    def test_nothing_waits_on_a_hub_or_the_archiver_merely_started(
        self, compose: dict[str, Any]
    ) -> None:
        waited = 0
        for name, service in compose["services"].items():
            for before, condition in service.get("depends_on", {}).items():
                if before in PROBED:
                    waited += 1
                    assert condition == {"condition": "service_healthy"}, name
        assert compose["services"]["simulator"]["depends_on"]["hub-lyon"] == {
            "condition": "service_healthy"
        }
        assert waited >= 1
