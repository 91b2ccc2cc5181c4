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
    """The Kafka nodes (not the one-shot services run from the same image)."""
    return {
        n: s
        for n, s in compose["services"].items()
        if "apache/kafka" in s.get("image", "") and "KAFKA_NODE_ID" in s.get("environment", {})
    }


def backbone_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services built from our Dockerfile."""
    return {n: s for n, s in compose["services"].items() if "build" in s}


def kafka_clients(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Our services that connect to the cluster (``keys`` and ``tls`` only write files)."""
    return {n: s for n, s in backbone_services(compose).items() if "I247_BOOTSTRAP" in env(s)}


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
            [volume] = [
                m.split(":")[0]
                for m in node["volumes"]
                if m.split(":")[1] == env(node)["KAFKA_LOG_DIRS"]
            ]
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
            listeners(env(n)["KAFKA_ADVERTISED_LISTENERS"])["SASL_SSL"]
            for n in kafka_nodes(compose).values()
        }
        for service in kafka_clients(compose).values():
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
            (
                "tls",
                [
                    "i247",
                    "keys",
                    "tls",
                    "--dir",
                    "/tls",
                    "--host",
                    "kafka-1",
                    "--host",
                    "kafka-2",
                    "--host",
                    "kafka-3",
                    "--kafka",
                ],
            ),
            ("acls", ["i247", "acls", "--apply", "--simulator"]),
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
        before = services["provision"]["depends_on"]
        assert set(before) == {*kafka_nodes(compose), "scram-users", "acls"}
        assert all(before[n] == {"condition": "service_healthy"} for n in kafka_nodes(compose))
        for setup in ("scram-users", "acls"):  # principals exist and may act before traffic
            assert before[setup] == {"condition": "service_completed_successfully"}
            assert set(services[setup]["depends_on"]) == set(kafka_nodes(compose))
        for name in ("hub-lyon", "hub-buenos-aires", "hub-singapore", "archiver", "simulator"):
            for before in ("keys", "provision"):
                assert services[name]["depends_on"][before] == {
                    "condition": "service_completed_successfully"
                }


def protocols(node: dict[str, Any]) -> dict[str, str]:
    """Listener name -> security protocol."""
    pairs = env(node)["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    return dict(pair.split(":") for pair in pairs)


class TestBrokerAccess:
    def test_clients_reach_the_brokers_only_with_sasl_over_tls(
        self, compose: dict[str, Any]
    ) -> None:
        for node in kafka_nodes(compose).values():
            variables = env(node)
            mapping = protocols(node)
            internal = {variables["KAFKA_INTER_BROKER_LISTENER_NAME"]}
            internal |= {variables["KAFKA_CONTROLLER_LISTENER_NAMES"]}
            assert "PLAINTEXT" not in mapping.values()
            for name in listeners(variables["KAFKA_LISTENERS"]):
                expected = "SASL_PLAINTEXT" if name in internal else "SASL_SSL"
                assert mapping[name] == expected, name
            assert "SCRAM-SHA-512" in variables["KAFKA_SASL_ENABLED_MECHANISMS"].split(",")
            # the image turns TLS on only when an advertised listener is literally SSL://
            assert "SSL://" in variables["KAFKA_ADVERTISED_LISTENERS"]

    def test_an_authorizer_denies_what_no_acl_grants_and_only_admin_is_super(
        self, compose: dict[str, Any]
    ) -> None:
        for node in kafka_nodes(compose).values():
            variables = env(node)
            assert variables["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
            assert variables["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
            assert variables["KAFKA_SUPER_USERS"] == "User:admin"

    def test_each_service_connects_as_its_own_principal_with_a_granted_role(
        self, compose: dict[str, Any]
    ) -> None:
        from brokers.acls import acl_set
        from schemas.participants import HUB_SITES
        from schemas.registry import default_registry

        grants = acl_set(
            Settings().topics, ncbs=default_registry().codes(), sites=HUB_SITES, simulator=True
        )
        granted = {g.principal.removeprefix("User:") for g in grants}
        users: dict[str, str] = {}
        for name, service in kafka_clients(compose).items():
            settings = Settings.from_env(env(service))
            assert settings.security == "sasl_tls", name
            assert settings.tls_ca == Path("/tls/ca.pem")
            user = settings.sasl_username or ""
            assert settings.sasl_password_file == Path(f"/tls/passwords/{user}")
            assert any(m.split(":")[:2] == ["tls", "/tls"] for m in service["volumes"]), name
            assert user == "admin" or user in granted, f"{name} connects as {user}, not granted"
            users[name] = user
        assert users["acls"] == "admin"  # the one super user applies the ACLs
        assert len(set(users.values())) == len(users), "two services share a principal"
        assert users["hub-lyon"] == "hub-lyon"

    def test_the_secrets_the_cluster_reads_are_what_keys_tls_writes(
        self, compose: dict[str, Any], tmp_path: Path
    ) -> None:
        from datetime import UTC, datetime

        from agents.ops.access_commands import COMPOSE_PRINCIPALS
        from brokers.tls_keyring import make_tls_dir, write_kafka_secrets

        files = make_tls_dir(tmp_path, hosts=["kafka-1"], now=datetime.now(UTC))
        passwords = write_kafka_secrets(files, COMPOSE_PRINCIPALS)
        written = {p.name for p in tmp_path.iterdir()}
        for node in kafka_nodes(compose).values():
            variables = env(node)
            assert "tls:/etc/kafka/secrets:ro" in node["volumes"]
            for key in ("KEYSTORE_FILENAME", "KEYSTORE_CREDENTIALS", "KEY_CREDENTIALS"):
                assert variables[f"KAFKA_SSL_{key}"] in written
            jaas = variables["KAFKA_OPTS"].split("=", 1)[1]
            assert jaas.removeprefix("/etc/kafka/secrets/") in written
        users = {Settings.from_env(env(s)).sasl_username for s in kafka_clients(compose).values()}
        assert users <= set(passwords)
        script = (tmp_path / "scram-users.sh").read_text()
        assert all(f"--entity-name {u}\n" in script for u in users - {"admin"})
        assert (
            compose["services"]["scram-users"]["command"][1] == "/etc/kafka/secrets/scram-users.sh"
        )


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
