"""A real Kafka-protocol broker for integration tests, and a fresh topic prefix per test.

The broker, chosen once per session: ``I247_BOOTSTRAP`` if set (e.g. the compose cluster);
otherwise testcontainers' Kafka when a Docker engine answers; otherwise the embedded Tansu
broker. Never a mock. The broker's start is synchronous (a subprocess and polling), so this
session fixture needs no event loop and no loop-scope juggling.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from brokers.embedded import EmbeddedBroker
from brokers.settings import Settings
from schemas.topics import TopicCatalog


def _docker_available() -> bool:
    """True when a Docker engine answers a ping within two seconds."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host and not Path("/var/run/docker.sock").exists():
        return False  # the cheap answer on machines without Docker
    try:
        import docker

        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # any failure to reach the engine means "no Docker"
        return False


def _kafka_container() -> Any:
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:  # testcontainers before 4.13 kept it at the top level
        from testcontainers.kafka import KafkaContainer
    return KafkaContainer().with_kraft()


@pytest.fixture(scope="session")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of the session's broker."""
    configured = os.environ.get("I247_BOOTSTRAP", "").strip()
    if configured:
        yield configured
        return
    if _docker_available():
        container = _kafka_container()
        with container as kafka:
            yield str(kafka.get_bootstrap_server())
        return
    with EmbeddedBroker(tmp_path_factory.mktemp("broker")) as address:
        yield address


@pytest.fixture
def topics() -> TopicCatalog:
    """Topic names under a prefix no other test uses."""
    return TopicCatalog(prefix=f"t{uuid.uuid4().hex[:12]}")


@pytest.fixture
def settings(bootstrap: str, topics: TopicCatalog, tmp_path: Path) -> Settings:
    """Settings for one test: the session's broker, the test's own prefix and directories.

    The session timeout is the smallest Apache Kafka accepts by default
    (group.min.session.timeout.ms = 6000), so the same tests run on every broker; Tansu
    holds a join for half of it.
    """
    return Settings(
        bootstrap=bootstrap,
        topic_prefix=topics.prefix,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1500,
        data_dir=tmp_path,
        keys_dir=tmp_path / "keys",
        db_scale=0.01,  # 10,000 travel documents: the full size is the demo's and the bench's
    )
