"""One bureau offline under traffic, then back: it reads everything addressed to it, once.

Scale: at the demo's default load (50 messages/s over 196 bureaus, about 0.26 a second
each) a bureau receives about 920 messages an hour. Here Germany's client reads a first
batch, stops, and while it is away 920 messages addressed to it (some also to Italy,
mixed precedences, from rotating senders) and traffic for others go through the hub as
fast as it takes them; then the client starts again. The checker counts, from the real
inbox topic and from what the client handed over across both runs, what was lost,
duplicated or unexpected.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agents.bench.checker import Landing, check
from agents.ncb.client import InboxItem, InboxMessage, NcbClient
from brokers.record_headers import RECEIPTS_TYPE
from brokers.settings import Settings
from schemas.bodies import MessageBody
from schemas.header import Precedence
from schemas.keys import Directory, PrivateIdentity
from tests.integration.harness import Backbone, now, running

pytestmark = pytest.mark.integration

BEFORE, OFFLINE, OTHERS = 20, 920, 80
SENDERS = ("FRA", "ITA", "ESP", "NLD", "BEL", "POL", "USA", "BRA")
PRECEDENCES = (Precedence.ROUTINE, Precedence.ROUTINE, Precedence.PRIORITY)


@pytest.fixture
async def backbone(
    settings: Settings,
    keys_dir: Path,
    keyring: tuple[Directory, dict[str, PrivateIdentity]],
    tmp_path: Path,
) -> AsyncIterator[Backbone]:
    async with running(settings, keys_dir, keyring, tmp_path) as rig:
        yield rig


async def send_to(backbone: Backbone, index: int, recipients: list[str]) -> str:
    sender = SENDERS[index % len(SENDERS)]
    header, record = backbone.adapter(sender).compose(
        [r for r in recipients if r != sender] or ["DEU"],
        MessageBody(subject=f"Wanted person {index}", text=f"file {index:06d}"),
        now=now(),
        random_bytes=os.urandom,
        precedence=PRECEDENCES[index % len(PRECEDENCES)],
    )
    await backbone.send(record)
    return header.message_id


async def read_messages(client: NcbClient, count: int, *, guard: float) -> list[InboxMessage]:
    """Messages the client hands over until ``count`` of them, then to the inbox's end."""
    items: list[InboxItem] = []
    async with asyncio.timeout(guard):
        async for item in client.inbox(follow=True):
            items.append(item)
            if sum(isinstance(i, InboxMessage) for i in items) >= count:
                break
        items.extend([item async for item in client.inbox(follow=False)])
    return [i for i in items if isinstance(i, InboxMessage)]


async def test_a_bureau_back_after_an_hour_of_traffic_reads_each_message_once(
    backbone: Backbone,
) -> None:
    settings = backbone.settings
    expected: dict[str, set[str]] = {}
    async with NcbClient("DEU", None, settings) as deu:
        for index in range(BEFORE):
            expected[await send_to(backbone, index, ["DEU"])] = {"client", "topic"}
        first = await read_messages(deu, BEFORE, guard=40)

    for index in range(BEFORE, BEFORE + OFFLINE):  # the bureau is away
        recipients = ["DEU", "ITA"] if index % 10 == 0 else ["DEU"]
        expected[await send_to(backbone, index, recipients)] = {"client", "topic"}
        if index % 10 == 5:
            await send_to(backbone, index, ["ESP"])  # traffic for others goes on too
    for index in range(OTHERS):
        await send_to(backbone, index, ["ITA", "ESP"])

    async with NcbClient("DEU", None, settings) as deu:
        second = await read_messages(deu, OFFLINE, guard=70)
        counts = dict(deu.counts)

    inbox = await backbone.read_all([settings.topics.inbox("DEU")])
    observed: list[Landing] = [(m.message_id, "client") for m in first + second]
    observed += [
        ((r.key or b"").decode(), "topic")
        for r in inbox
        if r.header("ce_type") != RECEIPTS_TYPE.encode()
    ]
    checked = check(expected, observed)
    assert checked.valid, checked
    assert len(first) == BEFORE
    assert len(second) == OFFLINE
    assert counts.get("re-read", 0) == 0  # a clean stop committed its position
    if os.environ.get("FAULTS_REPORT"):
        print(checked.summary(), counts)
