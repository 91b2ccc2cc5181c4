"""The bureau's client judges fence tags: what no hub delivered in term is never handed over.

A real hub delivers one message; then two records that look like deliveries are written
straight into the inbox, as a stale or rogue writer could: one tagged with a term the
lease journal never granted, one with no tag at all. The client hands over neither, counts
them, and goes on to the next real delivery.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agents.ncb.client import InboxMessage, NcbClient
from brokers.settings import Settings
from schemas.bodies import MessageBody
from schemas.keys import Directory, PrivateIdentity
from schemas.leases import FenceTag, fence_headers, fence_tag
from tests.integration.harness import Backbone, now, running

pytestmark = pytest.mark.integration

GUARD = 60.0


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
    return MessageBody(subject=f"Sighting {n}", text=f"Report number {n}")


async def next_message(client: NcbClient) -> InboxMessage:
    async with asyncio.timeout(GUARD):
        async for item in client.inbox(follow=True):
            if isinstance(item, InboxMessage):
                return item
    raise AssertionError("the inbox ended")


async def test_deliveries_out_of_term_or_untagged_are_never_handed_over(
    backbone: Backbone,
) -> None:
    settings, topics = backbone.settings, backbone.settings.topics
    async with NcbClient("FRA", None, settings) as fra, NcbClient("DEU", None, settings) as deu:
        first = await fra.send(["DEU"], body(1))
        assert (await next_message(deu)).message_id == first
        [delivered] = await backbone.read([topics.inbox("DEU")], until=lambda rs: len(rs) >= 1)
        tag = fence_tag(delivered.headers)
        assert tag is not None

        forged = []
        for n in (2, 3):  # sealed by FRA as usual, but never through a hub's lane
            _, record = backbone.adapter("FRA").compose(
                ["DEU"], body(n), now=now(), random_bytes=os.urandom
            )
            forwarded = (
                *record.headers,
                ("i247-sealed-topic", topics.inbound.encode()),
                ("i247-sealed-key", b"FRA"),
                ("i247-precedence", b"ROUTINE"),
                ("i247-hub", b"hub:lyon"),
            )
            forged.append((record, forwarded))
        (stale, stale_headers), (untagged, untagged_headers) = forged
        never_granted = FenceTag(tag.unit, 0, tag.partition, tag.offset)  # no such term
        assert backbone.producer is not None
        for record, headers in (
            (stale, fence_headers(stale_headers, never_granted)),
            (untagged, untagged_headers),
        ):
            await backbone.producer.send_and_wait(
                topics.inbox("DEU"), record.value, key=record.key, headers=list(headers)
            )

        last = await fra.send(["DEU"], body(4))
        handed = await next_message(deu)
    assert handed.message_id == last
    assert deu.counts["fenced"] == 1
    assert deu.counts["unopened"] == 1
    assert deu.counts["message"] == 2
