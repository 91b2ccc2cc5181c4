"""Key rotation under traffic and revocation, end to end: real broker, a real hub process,
bureaus' clients that follow the key directory topic."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from agents.ncb.adapter import NcbAdapter
from agents.ncb.client import InboxMessage, NcbClient
from agents.ops.key_lifecycle import revoke_key, rotate_key
from brokers.records import ReceivedRecord
from brokers.settings import Settings
from schemas.bodies import MessageBody
from schemas.keys import load_directory, load_identity
from schemas.sealing import parse_envelope
from tests.integration.harness import Backbone, now, running

pytestmark = pytest.mark.integration

GUARD = 60.0  # seconds: a hang fails the test instead of stalling the suite


@pytest.fixture
async def backbone(settings: Settings, keys_dir: Path, tmp_path: Path) -> AsyncIterator[Backbone]:
    """A hub on a keyring of this test's own (the session's must not rotate under others)."""
    own = tmp_path / "own-keys"
    shutil.copytree(keys_dir, own)
    directory = load_directory(own)
    identities = {p: load_identity(own, p) for p in ("FRA", "DEU")}
    async with running(settings, own, (directory, identities), tmp_path) as rig:
        yield rig


def body(n: int) -> MessageBody:
    return MessageBody(subject=f"Rotation {n}", text=f"message {n}")


async def until(holds: Callable[[], bool]) -> None:
    async with asyncio.timeout(GUARD):
        while True:
            if holds():
                return
            await asyncio.sleep(0.05)


async def opened_by(client: NcbClient, wanted: set[str]) -> list[InboxMessage]:
    found: list[InboxMessage] = []
    async with asyncio.timeout(GUARD):
        async for item in client.inbox(follow=True):
            if isinstance(item, InboxMessage):
                found.append(item)
            if wanted <= {m.message_id for m in found}:
                break
    return found


def signing_kids(records: list[ReceivedRecord]) -> dict[str, str]:
    """Message id -> the key id it was signed with, for every envelope in ``records``."""
    kids = {}
    for record in records:
        with_header = parse_envelope(record.value, max_bytes=1 << 21)
        kids[with_header.header.message_id] = with_header.signature_kid
    return kids


async def test_a_bureau_rotates_in_mid_stream_and_nothing_is_lost(backbone: Backbone) -> None:
    settings = backbone.settings
    lease_ttl = settings.lease_ttl_ms / 1000
    async with NcbClient("FRA", None, settings) as fra, NcbClient("DEU", None, settings) as deu:
        old_kid = fra.adapter.identity.signing_kid
        # sealed with the old key now, published after every hub has the rotation: in grace
        held = [
            fra.adapter.compose(["DEU"], body(n), now=now(), random_bytes=os.urandom)
            for n in range(3)
        ]
        sent: list[str] = []
        stop = asyncio.Event()

        async def traffic() -> None:
            n = 100
            while not stop.is_set():
                sent.append(await fra.send(["DEU"], body(n)))
                n += 1
                await asyncio.sleep(0.02)

        sending = asyncio.create_task(traffic())
        await until(lambda: len(sent) >= 10)
        change = await rotate_key(settings, "FRA", now=now(), grace=timedelta(hours=1))
        await until(lambda: fra.adapter.identity.signing_kid == change.new_kid)
        await until(lambda: len(sent) >= 40)  # the client has sent with its new key meanwhile
        await asyncio.sleep(lease_ttl)
        for header, record in held:
            await backbone.send(record)
            sent.append(header.message_id)
        stop.set()
        await sending
        opened = await opened_by(deu, set(sent))

    assert Counter(m.message_id for m in opened) == Counter(sent)  # each once, none lost
    inbox = await backbone.read_all([settings.topics.inbox("DEU")])
    kids = signing_kids(inbox)
    assert {kids[m] for m in sent} == {old_kid, change.new_kid}
    assert {kids[h.message_id] for h, _ in held} == {old_kid}
    dead = await backbone.read_all([settings.topics.deadletter])
    assert not {(r.header("ce_id") or b"").decode() for r in dead} & set(sent)
    journal = await backbone.journal()
    [rotated] = [e for e in journal if e.get("event") == "key-rotated"]
    assert (rotated["participant"], rotated["kid"]) == ("FRA", old_kid)
    assert rotated["new_kid"] == change.new_kid


async def test_a_revoked_key_is_refused_by_the_hub_within_one_lease_ttl(
    backbone: Backbone,
) -> None:
    settings = backbone.settings
    fra = NcbAdapter(backbone.identities["FRA"], backbone.directory, settings.topics)
    old_kid = fra.identity.signing_kid
    before_header, before = fra.compose(["DEU"], body(1), now=now(), random_bytes=os.urandom)
    await backbone.send(before)  # accepted while the key is good: wait for its delivery
    delivered = before_header.message_id.encode()
    await backbone.read(
        [settings.topics.inbox("DEU")],
        until=lambda records: any(r.header("ce_id") == delivered for r in records),
        timeout=GUARD,
    )
    change = await revoke_key(
        settings, "FRA", old_kid, reason="gateway host compromised", now=now()
    )
    await asyncio.sleep(settings.lease_ttl_ms / 1000)  # the bound: one lease TTL
    after_header, after = fra.compose(["DEU"], body(2), now=now(), random_bytes=os.urandom)
    await backbone.send(after)

    def refused(records: list[ReceivedRecord]) -> bool:
        return any(r.header("ce_id") == after_header.message_id.encode() for r in records)

    dead = await backbone.read([settings.topics.deadletter], until=refused, timeout=GUARD)
    [letter] = [r for r in dead if r.header("ce_id") == after_header.message_id.encode()]
    assert letter.header("i247.dlq.reason") == b"key-revoked"
    assert not any(r.header("ce_id") == before_header.message_id.encode() for r in dead)

    # the replacement key the revocation issued works: the bureau's client takes it up; a
    # reader refuses the revoked key whatever the message's age, so DEU does not open the
    # message admitted before the revocation either (its gateway counts it unopened)
    async with NcbClient("FRA", None, settings) as client, NcbClient("DEU", None, settings) as deu:
        assert client.adapter.identity.signing_kid == change.new_kid
        later = await client.send(["DEU"], body(3))
        opened = await opened_by(deu, {later})
        assert deu.counts["unopened"] >= 1
    assert before_header.message_id not in {m.message_id for m in opened}
    assert after_header.message_id not in {m.message_id for m in opened}

    journal = await backbone.journal()
    [revoked] = [e for e in journal if e.get("event") == "key-revoked"]
    assert revoked["participant"] == "FRA"
    assert revoked["kid"] == old_kid
    assert revoked["reason"] == "gateway host compromised"
    assert revoked["new_kid"] == change.new_kid


async def i247(settings: Settings, *args: str) -> tuple[int, str, str]:
    """``i247 ARGS`` in a subprocess against this test's broker and keyring."""
    env = dict(
        os.environ,
        I247_BOOTSTRAP=settings.bootstrap or "",
        I247_TOPIC_PREFIX=settings.topic_prefix,
        I247_KEYS_DIR=str(settings.keys_dir),
        I247_DATA_DIR=str(settings.data_dir),
    )
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "agents.cli", *args],
        env=env,
        capture_output=True,
        timeout=GUARD,
        check=False,
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def test_the_commands_rotate_and_revoke_print_one_line_and_refuse_what_cannot_be(
    settings: Settings, keys_dir: Path, tmp_path: Path
) -> None:
    own = tmp_path / "own-keys"
    shutil.copytree(keys_dir, own)
    identities = {"FRA": load_identity(own, "FRA")}
    async with running(
        settings, own, (load_directory(own), identities), tmp_path, start_hub=False
    ) as rig:
        settings = rig.settings
        old = identities["FRA"].signing_kid
        code, out, err = await i247(settings, "keys", "rotate", "--participant", "FRA")
        assert (code, err) == (0, "")
        new = load_identity(own, "FRA").signing_kid
        assert out.splitlines() == [out.strip()]
        assert f"FRA: key {new} active" in out
        assert f"{old} verifies until" in out
        assert set(load_directory(own).get("FRA").signing) == {old, new}

        code, out, err = await i247(
            settings, "keys", "revoke", "--participant", "FRA", "--key-id", old, "--reason", "x"
        )
        assert (code, err) == (0, "")
        assert f"FRA: key {old} revoked" in out
        assert "journaled key-revoked" in out
        assert set(load_directory(own).get("FRA").signing) == {new}

        for kid, says in ((old, "already revoked"), ("0" * 16, "no key 0000000000000000")):
            code, out, err = await i247(
                settings, "keys", "revoke", "--participant", "FRA", "--key-id", kid, "--reason", "x"
            )
            assert code == 2
            assert says in err
            assert len(err.splitlines()) == 1

        entries = await rig.read_all([settings.topics.keys])
        assert [r.key for r in entries] == [b"FRA", b"FRA"]
