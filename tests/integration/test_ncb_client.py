"""The bureau's client end to end: real broker, a real hub, two bureaus' clients."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from agents.ncb.client import InboxItem, InboxMessage, InboxReceipt, NcbClient
from brokers.settings import Settings
from schemas.bodies import AcknowledgementBody, MessageBody
from schemas.header import MessageType, Precedence
from schemas.keys import Directory, PrivateIdentity
from tests.integration.harness import Backbone, running

pytestmark = pytest.mark.integration

GUARD = 50.0  # seconds: a hang fails the test instead of stalling the suite


@pytest.fixture
async def backbone(
    settings: Settings,
    keys_dir: Path,
    keyring: tuple[Directory, dict[str, PrivateIdentity]],
    tmp_path: Path,
) -> AsyncIterator[Backbone]:
    async with running(settings, keys_dir, keyring, tmp_path) as rig:
        yield rig


def body(n: int) -> MessageBody:
    return MessageBody(subject=f"Stolen passport {n}", text=f"Document number X{n:07d}")


async def collect(
    client: NcbClient, done: Callable[[list[InboxItem]], bool], *, follow: bool = True
) -> list[InboxItem]:
    """Items from ``client.inbox`` until ``done(items)`` (or the inbox ends, without follow)."""
    items: list[InboxItem] = []
    async with asyncio.timeout(GUARD):
        async for item in client.inbox(follow=follow):
            items.append(item)
            if done(items):
                break
    return items


def messages(items: list[InboxItem]) -> list[InboxMessage]:
    return [i for i in items if isinstance(i, InboxMessage)]


async def test_a_message_is_sent_routed_opened_acknowledged_and_receipted(
    backbone: Backbone,
) -> None:
    settings = backbone.settings
    async with NcbClient("FRA", None, settings) as fra, NcbClient("DEU", None, settings) as deu:
        message_id = await fra.send(["DEU"], body(1), precedence=Precedence.PRIORITY)

        [opened] = await collect(deu, lambda items: len(items) >= 1)
        assert isinstance(opened, InboxMessage)
        assert opened.message_id == message_id
        assert opened.header.sender == "FRA"
        assert opened.body == body(1)
        ack_id = await deu.ack(opened)

        def receipted_and_acked(items: list[InboxItem]) -> bool:
            # A receipt is passed through as the adapter gives it; it names the message.
            receipted = any(isinstance(i, InboxReceipt) and message_id in repr(i) for i in items)
            acks = [m for m in messages(items) if m.message_id == ack_id]
            return receipted and bool(acks)

        items = await collect(fra, receipted_and_acked)
    [ack] = [m for m in messages(items) if m.message_id == ack_id]
    assert ack.header.sender == "DEU"
    assert ack.header.message_type is MessageType.ACKNOWLEDGEMENT
    assert ack.body == AcknowledgementBody(acknowledged=message_id)
    assert any(isinstance(i, InboxReceipt) and message_id in repr(i) for i in items)


async def test_a_restart_in_mid_stream_reopens_nothing_and_skips_nothing(
    backbone: Backbone,
) -> None:
    settings = backbone.settings
    async with NcbClient("FRA", None, settings) as fra:
        sent = [await fra.send(["DEU"], body(n)) for n in range(12)]

    async with NcbClient("DEU", None, settings) as first:
        before = messages(await collect(first, lambda items: len(items) >= 5))
    async with NcbClient("DEU", None, settings) as second:
        middle = messages(await collect(second, lambda items: len(items) >= 3))
        seen = {m.message_id for m in before + middle}  # the same client reads on after a break
        after = middle + messages(
            await collect(
                second, lambda items: seen | {m.message_id for m in messages(items)} >= set(sent)
            )
        )
    async with NcbClient("DEU", None, settings) as third:
        nothing_new = await collect(third, lambda items: False, follow=False)

    counted = Counter(m.message_id for m in before + after)
    assert len(before) == 5
    assert counted == Counter(sent)  # every message exactly once across the runs
    assert [m.message_id for m in before + after] == sent  # in the order sent
    assert nothing_new == []


class CrashesBeforeCommitting(NcbClient):
    """A client whose process dies after writing its state file, before any commit."""

    async def _commit(self) -> None:
        return None


async def test_a_crash_between_state_and_commit_rereads_but_does_not_reopen(
    backbone: Backbone,
) -> None:
    settings = backbone.settings
    async with NcbClient("FRA", None, settings) as fra:
        sent = [await fra.send(["DEU"], body(n)) for n in range(6)]

    async with CrashesBeforeCommitting("DEU", None, settings) as crashing:
        before = messages(await collect(crashing, lambda items: len(items) >= 3))
    async with NcbClient("DEU", None, settings) as restarted:
        after = messages(
            await collect(restarted, lambda items: len(before) + len(messages(items)) >= 6)
        )
        reread = restarted.counts["re-read"]

    assert reread >= 3  # the position was never committed: the first three were read again
    assert Counter(m.message_id for m in before + after) == Counter(sent)
