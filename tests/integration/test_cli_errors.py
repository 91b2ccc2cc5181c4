"""``i247`` against a broker that is not there, or not ready: one line, exit code 3.

Each test runs the real command line as a subprocess. The closed port is bound and never
listened on, so every connection is refused at once: no test waits for a timeout.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError

from agents.ops.operations import backbone_topics
from brokers.clients import make_consumer, make_producer
from brokers.settings import Settings
from schemas.topics import TopicCatalog
from tests.cli_commands import BROKER_COMMANDS


@pytest.fixture
def closed_port() -> Iterator[str]:
    """host:port of a socket bound but not listening: connections are refused."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{bound.getsockname()[1]}"


def i247(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("I247_")}
    return subprocess.run(
        [sys.executable, "-m", "agents.cli", *args],
        env=clean | {"I247_DATA_DIR": str(tmp_path)} | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("args", BROKER_COMMANDS, ids=" ".join)
def test_a_closed_port_is_one_line_and_exit_3(
    args: list[str], closed_port: str, tmp_path: Path
) -> None:
    done = i247(args, tmp_path, I247_BOOTSTRAP=closed_port)
    assert done.returncode == 3, done.stderr
    [line] = done.stderr.strip().splitlines()
    command = " ".join(args[:2] if args[0] in {"audit", "keys", "dlq"} else args[:1])
    assert line.startswith(f"i247 {command}: no Kafka broker answers at {closed_port} ")
    assert "set I247_BOOTSTRAP to the address of a running one" in line


def test_a_hub_on_a_broker_without_its_topics_says_to_provision(
    bootstrap: str, topics: TopicCatalog, tmp_path: Path
) -> None:
    done = i247(
        ["hub", "--site", "lyon"],
        tmp_path,
        I247_BOOTSTRAP=bootstrap,
        I247_TOPIC_PREFIX=topics.prefix,
    )
    assert done.returncode == 3, done.stderr
    [line] = done.stderr.strip().splitlines()
    wanted = len(backbone_topics(Settings(topic_prefix=topics.prefix)))
    assert line.startswith(
        f"i247 hub: {wanted} topic(s) missing on {bootstrap} ({topics.control}, "
    )
    assert "run `i247 provision` with the same I247_BOOTSTRAP and I247_TOPIC_PREFIX" in line


async def test_a_client_whose_start_fails_is_closed(closed_port: str) -> None:
    producer = make_producer(closed_port)
    consumer = make_consumer(closed_port, Settings())
    for client in (producer, consumer):
        with pytest.raises(KafkaConnectionError):
            await client.start()
    assert producer._closed  # no "Unclosed AIOKafkaProducer" left for the collector
    assert consumer._closed
