"""compose.yaml runs the same backbone on Apache Kafka, configured as the code reads it.

No Docker engine runs here, so these tests check the file's structure and that every
setting a service passes is one ``Settings.from_env`` reads and accepts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from brokers.settings import ENV_NAMES, Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(document, dict)
    return document


def brokers(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if n.startswith("kafka-")}


def backbone_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if not n.startswith("kafka-")}


def test_three_kraft_nodes_with_one_quorum(compose: dict[str, Any]) -> None:
    nodes = brokers(compose)
    assert len(nodes) == 3
    voters = {n["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"] for n in nodes.values()}
    assert len(voters) == 1
    assert {int(n["environment"]["KAFKA_NODE_ID"]) for n in nodes.values()} == {1, 2, 3}
    for node in nodes.values():
        assert "controller" in node["environment"]["KAFKA_PROCESS_ROLES"]
        assert "apache/kafka" in node["image"]


def test_replication_three_with_two_in_sync(compose: dict[str, Any]) -> None:
    for node in brokers(compose).values():
        assert int(node["environment"]["KAFKA_DEFAULT_REPLICATION_FACTOR"]) == 3
        assert int(node["environment"]["KAFKA_MIN_INSYNC_REPLICAS"]) == 2
    for service in backbone_services(compose).values():
        assert service["environment"]["I247_REPLICATION_FACTOR"] == "3"


def test_every_i247_variable_is_one_the_code_reads(compose: dict[str, Any]) -> None:
    known = set(ENV_NAMES.values())
    for name, service in backbone_services(compose).items():
        variables = {k for k in service["environment"] if k.startswith("I247_")}
        assert variables <= known, f"{name} sets {variables - known}"


def test_every_service_setting_parses(compose: dict[str, Any]) -> None:
    for service in backbone_services(compose).values():
        settings = Settings.from_env({k: str(v) for k, v in service["environment"].items()})
        assert settings.bootstrap == "kafka-1:9092,kafka-2:9092,kafka-3:9092"
        assert settings.replication_factor == 3


@pytest.mark.parametrize(
    ("service", "command"),
    [
        ("keys", ["i247", "keys", "init", "--dir", "/keys"]),
        ("provision", ["i247", "provision"]),
        ("hub-lyon", ["i247", "hub", "--site", "lyon"]),
    ],
)
def test_services_run_real_cli_commands(
    compose: dict[str, Any], service: str, command: list[str]
) -> None:
    from agents.cli import _parser

    assert compose["services"][service]["command"] == command
    _parser().parse_args(command[1:])


def test_simulator_command_parses(compose: dict[str, Any]) -> None:
    from agents.cli import _parser

    command = compose["services"]["simulator"]["command"]
    assert command[:2] == ["i247", "simulate"]
    _parser().parse_args(command[1:])


def test_broker_advertised_listeners_match_bootstrap(compose: dict[str, Any]) -> None:
    advertised = {
        n["environment"]["KAFKA_ADVERTISED_LISTENERS"].removeprefix("PLAINTEXT://")
        for n in brokers(compose).values()
    }
    bootstrap = compose["services"]["hub-lyon"]["environment"]["I247_BOOTSTRAP"]
    assert advertised == set(bootstrap.split(","))
