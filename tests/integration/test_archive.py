"""The audit archiver on a real broker, with a real archive file: every record exactly once,
across a SIGKILL; tampering found by ``i247 audit verify``; proofs a stranger can check."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agents.ops.audit import verify_archive
from brokers.archive_store import ArchiveStore, ArchiveUnreadable, iter_archive
from brokers.clients import make_producer, terminate
from brokers.provisioning import provision
from brokers.settings import Settings
from schemas.header import Precedence
from schemas.keys import init_keyring, load_directory, load_identity
from schemas.participants import AUDITOR
from streams.archive.archiver import HEAD_EVENT_TYPE, Archiver

pytestmark = pytest.mark.integration


def _archived(path: Path) -> list[Any]:
    if not path.exists():
        return []
    try:
        return list(iter_archive(path))
    except (sqlite3.OperationalError, ArchiveUnreadable):  # the writer is creating it now
        return []


async def _until(check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the archive did not reach the expected state")
        await asyncio.sleep(0.1)


async def _produce(producer: AIOKafkaProducer, topic: str, values: list[bytes]) -> None:
    for n, value in enumerate(values):
        await producer.send_and_wait(
            topic, value, key=f"k{n % 5}".encode(), headers=[("h", b"1"), ("n", str(n).encode())]
        )


def _signers(settings: Settings) -> dict[str, Ed25519PublicKey]:
    return dict(load_directory(Path(settings.keys_dir)).get(AUDITOR).signing)


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ, I247_KEYS_DIR=str(settings.keys_dir), I247_DATA_DIR=str(settings.data_dir)
    )
    return subprocess.run(
        [sys.executable, "-m", "agents.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# --- an independent checker, from RFC 6962 §2.1 and the documented formats only --------


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _root_from_path(m: int, n: int, leaf: bytes, path: list[bytes]) -> bytes:
    """Undo PATH(m, D[n]): the last path element is the sibling at the top split."""
    if n == 1:
        assert not path
        return leaf
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return _sha256(b"\x01" + _root_from_path(m, k, leaf, path[:-1]) + path[-1])
    return _sha256(b"\x01" + path[-1] + _root_from_path(m - k, n - k, leaf, path[:-1]))


def _stranger_checks(proof: dict[str, Any], auditor_public: bytes, value: bytes) -> bool:
    leaf_input = bytes.fromhex(proof["leaf_input"])
    leaf = _sha256(b"\x00" + leaf_input)
    head = proof["tree_head"]
    tree_root = bytes.fromhex(head["root"])
    signed = (
        b"i247-tree-head/1" + struct.pack(">Qq", head["size"], head["timestamp_ms"]) + tree_root
    )
    Ed25519PublicKey.from_public_bytes(auditor_public).verify(
        base64.b64decode(head["signature"]), signed
    )  # raises if forged
    return (
        leaf_input.startswith(b"i247-archive-leaf/1" + struct.pack(">Q", proof["leaf_index"]))
        and struct.pack(">I", len(value)) + value in leaf_input
        and leaf.hex() == proof["leaf_hash"]
        and head["size"] == proof["tree_size"]
        and _root_from_path(
            proof["leaf_index"],
            proof["tree_size"],
            leaf,
            [bytes.fromhex(h) for h in proof["audit_path"]],
        )
        == tree_root
    )


# --- the tests ----------------------------------------------------------------------


async def test_every_record_of_every_topic_is_archived_once_and_verifies(
    settings: Settings, tmp_path: Path
) -> None:
    init_keyring(Path(settings.keys_dir), [AUDITOR])
    topics = settings.topics
    assert settings.bootstrap is not None
    await provision(settings.bootstrap, topics.core())
    path = tmp_path / "archive.sqlite3"
    sent = {
        topics.inbound: [f"inbound {n}".encode() for n in range(40)],
        topics.deadletter: [f"dead {n}".encode() for n in range(5)],
        topics.lane("lyon", next(iter(Precedence))): [f"lane {n}".encode() for n in range(5)],
    }
    archiver = Archiver(
        settings,
        path,
        load_identity(Path(settings.keys_dir), AUDITOR),
        head_seconds=0.3,
        refresh_seconds=0.3,
    )
    async with make_producer(settings) as producer:
        for topic, values in sent.items():
            await _produce(producer, topic, values[: len(values) // 2])
        await archiver.start()
        try:
            for topic, values in sent.items():
                await _produce(producer, topic, values[len(values) // 2 :])
            inbox = topics.inbox("FRA")  # a topic that did not exist when the archiver started
            sent[inbox] = [f"inbox {n}".encode() for n in range(6)]
            await _produce(producer, inbox, sent[inbox])
            wanted = sum(len(v) for v in sent.values())
            await _until(
                lambda: sum(1 for r in _archived(path) if r.topic != topics.control) >= wanted
            )
            await _until(lambda: any(r.topic == topics.control for r in _archived(path)))
        finally:
            await archiver.stop()

    archived = list(iter_archive(path))
    places = Counter((r.topic, r.partition, r.offset) for r in archived)
    assert max(places.values()) == 1
    by_topic: dict[str, list[bytes]] = {}
    for record in archived:
        by_topic.setdefault(record.topic, []).append(record.value or b"")
    for topic, values in sent.items():
        assert sorted(by_topic[topic]) == sorted(values), topic
    heads = [r for r in archived if r.topic == topics.control]
    assert heads
    assert all(dict(r.headers)["ce_type"] == HEAD_EVENT_TYPE.encode() for r in heads)
    assert next(r for r in archived if r.topic == topics.inbound).headers[:1] == (("h", b"1"),)
    assert verify_archive(path, _signers(settings)).ok

    # the operator's tools, as a third party would run them
    verified = _cli(settings, "audit", "verify", "--archive", str(path))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    target = next(r for r in archived if r.topic == inbox)
    proved = _cli(
        settings, "audit", "prove", "--archive", str(path), "--topic", inbox,
        "--partition", str(target.partition), "--offset", str(target.offset),
    )  # fmt: skip
    assert proved.returncode == 0, proved.stdout + proved.stderr
    proof = json.loads(proved.stdout)
    directory = json.loads((Path(settings.keys_dir) / "directory.json").read_text())
    auditor_key = base64.b64decode(directory["participants"][AUDITOR]["signing"][-1]["public"])
    assert _stranger_checks(proof, auditor_key, target.value or b"")
    proof["audit_path"][0] = _sha256(b"not the sibling").hex()
    assert not _stranger_checks(proof, auditor_key, target.value or b"")

    # tampering with a copy of the real file: each kind is found and the record named
    with ArchiveStore.open_reader(path) as store:
        rows = list(store.records())
    victim = next(s for s in rows if s.record.topic == topics.inbound and s.leaf_index > 3)
    other = next(s for s in rows if s.leaf_index > victim.leaf_index + 2)
    cases: dict[str, list[tuple[str, tuple[Any, ...]]]] = {
        "byte": [
            (
                "UPDATE records SET value = ? WHERE leaf_index = ?",
                (bytes([victim.record.value[0] ^ 1]) + victim.record.value[1:], victim.leaf_index),  # type: ignore[index]
            )
        ],
        "delete": [("DELETE FROM records WHERE leaf_index = ?", (victim.leaf_index,))],
        "swap": [
            ("UPDATE records SET leaf_index = -1 WHERE leaf_index = ?", (victim.leaf_index,)),
            (
                "UPDATE records SET leaf_index = ? WHERE leaf_index = ?",
                (victim.leaf_index, other.leaf_index),
            ),
            ("UPDATE records SET leaf_index = ? WHERE leaf_index = -1", (other.leaf_index,)),
        ],
    }
    named = {
        "byte": victim.record.origin,
        "delete": victim.record.origin,
        "swap": other.record.origin,
    }
    for case, statements in cases.items():
        copy = tmp_path / f"tampered-{case}.sqlite3"
        shutil.copy(path, copy)
        db = sqlite3.connect(copy)
        with db:
            for sql, params in statements:
                db.execute(sql, params)
        db.close()
        report = verify_archive(copy, _signers(settings))
        assert report.first is not None, case
        assert report.first.leaf_index == victim.leaf_index, (case, report.findings)
        assert report.first.origin == named[case], (case, report.findings)
    cli = _cli(settings, "audit", "verify", "--archive", str(tmp_path / "tampered-byte.sqlite3"))
    assert cli.returncode == 1
    assert victim.record.origin in cli.stdout


async def test_an_archiver_killed_mid_stream_resumes_without_gap_or_duplicate(
    settings: Settings, tmp_path: Path
) -> None:
    init_keyring(Path(settings.keys_dir), [AUDITOR])
    topics = settings.topics
    assert settings.bootstrap is not None
    await provision(settings.bootstrap, [s for s in topics.core() if s.name == topics.inbound])
    path = tmp_path / "archive.sqlite3"
    env = os.environ | settings.to_env()

    def start() -> subprocess.Popen[bytes]:
        with (tmp_path / "archiver.out").open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "agents.cli", "archive", "--archive", str(path),
                 "--head-seconds", "0.2"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

    total = 1500  # ~8 s of trickle: the archiver's start (interpreter, broker check) takes seconds
    values = [f"message {n}".encode() for n in range(total)]
    async with make_producer(settings) as producer:

        async def trickle() -> None:
            for first in range(0, total, 20):
                await _produce(producer, topics.inbound, values[first : first + 20])
                await asyncio.sleep(0.1)

        sending = asyncio.create_task(trickle())
        archiver = start()
        try:
            await _until(lambda: len(_archived(path)) >= 60, timeout=60)
            archiver.kill()  # SIGKILL: no chance to finish a batch or sign a last head
            archiver.wait()
            assert not sending.done(), "the stream ended before the kill; raise total"
            killed_at = len(_archived(path))
            archiver = start()
            await sending
            await _until(
                lambda: sum(1 for r in _archived(path) if r.topic == topics.inbound) >= total,
                timeout=60,
            )
        finally:
            terminate(archiver, 15)
            if not sending.done():
                sending.cancel()

    inbound = [r for r in iter_archive(path) if r.topic == topics.inbound]
    assert 0 < killed_at < total
    assert len(inbound) == total
    assert sorted(r.value or b"" for r in inbound) == sorted(values)
    for partition in {r.partition for r in inbound}:
        offsets = [r.offset for r in inbound if r.partition == partition]
        assert offsets == list(range(len(offsets)))  # in order, no gap, no duplicate
    report = verify_archive(path, _signers(settings))
    assert report.ok, report.findings
    assert report.heads >= 1
