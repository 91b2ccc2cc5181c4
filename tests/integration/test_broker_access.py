"""Broker access on the embedded broker: TLS and SASL through the access gate, real Tansu."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError
from pydantic import SecretStr

from brokers.access import BrokerAccessRefused, access_refusal, client_security
from brokers.clients import make_consumer, make_producer
from brokers.embedded import EmbeddedBroker, access_for, broker_for
from brokers.provisioning import existing_topics, provision
from brokers.settings import Settings
from brokers.tls_keyring import make_tls_dir
from schemas.topics import TopicKind, TopicSpec

pytestmark = pytest.mark.integration

USER, PASSWORD = "hub-lyon", "correct horse battery staple"


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[Settings]:
    """An embedded broker with SASL over TLS, and settings of a client that may use it."""
    make_tls_dir(tmp_path / "keys" / "tls", now=datetime.now(UTC))
    settings = Settings(
        data_dir=tmp_path,
        security="sasl_tls",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username=USER,
        sasl_password=SecretStr(PASSWORD),
    )
    async with broker_for(settings) as bootstrap:
        yield settings.model_copy(update={"bootstrap": bootstrap})


async def _round_trip(settings: Settings, topic: str) -> bytes:
    async with make_producer(settings, request_timeout_ms=5000) as producer:
        await producer.send_and_wait(topic, b"sealed bytes", key=b"FRA")
    consumer = make_consumer(settings, topics=[topic])
    async with consumer:
        record = await asyncio.wait_for(consumer.getone(), 20)
    return bytes(record.value or b"")


async def _connect(settings: Settings) -> None:
    """Start a producer and stop it again, whether or not the start succeeded."""
    producer = make_producer(settings, request_timeout_ms=3000)
    try:
        await producer.start()
    finally:
        await producer.stop()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
async def test_an_authenticated_client_produces_and_consumes_over_tls(
    secured: Settings, mechanism: str
) -> None:
    client = secured.model_copy(update={"sasl_mechanism": mechanism})
    specs = [TopicSpec("access.probe", TopicKind.INBOUND, partitions=1)]
    await provision(client.bootstrap or "", specs, security=client_security(client))
    assert await _round_trip(client, "access.probe") == b"sealed bytes"


@pytest.mark.parametrize(
    ("who", "update"),
    [
        ("no credentials (TLS only)", {"security": "tls"}),
        ("a wrong password", {"sasl_password": SecretStr("guess")}),
        ("an unknown user", {"sasl_username": "eve"}),
        ("no TLS at all", {"security": "plaintext"}),
    ],
)
async def test_a_client_without_valid_credentials_is_refused(
    secured: Settings, who: str, update: dict[str, object]
) -> None:
    intruder = secured.model_copy(update=update)
    with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
        await _connect(intruder)


async def test_the_gate_says_why_it_refused(tmp_path: Path) -> None:
    make_tls_dir(tmp_path / "keys" / "tls", now=datetime.now(UTC))
    settings = Settings(
        data_dir=tmp_path, security="sasl_tls", sasl_username=USER, sasl_password=SecretStr("pw")
    )
    access = access_for(settings)
    assert access is not None
    assert access.users == {USER: "pw"}
    broker = EmbeddedBroker(tmp_path / "broker", access=access)
    bootstrap = await asyncio.to_thread(broker.start)
    try:
        wrong = settings.model_copy(
            update={"bootstrap": bootstrap, "sasl_password": SecretStr("nope")}
        )
        with pytest.raises(KafkaConnectionError):
            await _connect(wrong)
        bare = settings.model_copy(update={"bootstrap": bootstrap, "security": "tls"})
        with pytest.raises(KafkaConnectionError):
            await _connect(bare)
        assert broker.gate is not None
        events = [json.loads(line) for line in broker.gate_log_path.read_text().splitlines()]
        reasons = [e["reason"] for e in events if e.get("event") == "broker-access-refused"]
        assert any(f"authentication failed for {USER!r}" in r for r in reasons), reasons
        assert any("before SASL authentication" in r for r in reasons), reasons
    finally:
        await asyncio.to_thread(broker.stop)


@pytest.mark.parametrize(
    ("update", "says"),
    [
        ({"sasl_password": SecretStr("guess")}, "refused SASL SCRAM-SHA-512 as 'hub-lyon'"),
        ({"security": "tls"}, "it requires SASL; set I247_SECURITY=sasl_tls"),
        ({"sasl_mechanism": "PLAIN", "sasl_username": "eve"}, "wrong user or password"),
    ],
)
async def test_a_refused_client_is_told_why_not_only_that_it_cannot_bootstrap(
    secured: Settings, update: dict[str, object], says: str
) -> None:
    intruder = secured.model_copy(update=update)
    with pytest.raises(BrokerAccessRefused, match=re.escape(says)):
        await existing_topics(intruder.bootstrap or "", security=client_security(intruder))
    assert (
        await existing_topics(secured.bootstrap or "", security=client_security(secured)) == set()
    )


async def test_a_broker_certificate_from_another_ca_is_named(
    secured: Settings, tmp_path: Path
) -> None:
    other = make_tls_dir(tmp_path / "other", now=datetime.now(UTC))
    stranger = secured.model_copy(update={"tls_ca": other.ca})
    refusal = await access_refusal(secured.bootstrap or "", client_security(stranger))
    assert refusal is not None
    assert "unable to get local issuer certificate" in refusal
    assert "I247_TLS_CA" in refusal
