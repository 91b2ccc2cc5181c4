"""A real Kafka-protocol broker for integration tests.

``I247_BOOTSTRAP`` if set; otherwise testcontainers' Kafka when a Docker engine answers;
otherwise the embedded Tansu broker. Each test gets a fresh topic prefix.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from brokers.embedded import EmbeddedBroker
from brokers.settings import Settings


def _docker_available() -> bool:
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    try:
        import docker

        client = docker.from_env(timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("I247_BOOTSTRAP")
    if configured:
        yield configured
        return
    if _docker_available():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as kafka:
            yield kafka.get_bootstrap_server()
        return
    broker = EmbeddedBroker(tmp_path_factory.mktemp("broker"))
    address = broker.start()
    try:
        yield address
    finally:
        broker.stop()


@pytest.fixture
def settings(bootstrap: str, tmp_path: Path) -> Settings:
    """Settings for one test: its own topic prefix, short session timeout."""
    return Settings(
        bootstrap=bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:12]}",
        data_dir=tmp_path,
        keys_dir=tmp_path / "keys",
    )
