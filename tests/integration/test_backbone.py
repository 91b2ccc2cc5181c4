"""The backbone end to end: NCB adapters, a real hub process, a real broker."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from agents.ncb.adapter import Duplicate, Fenced, NcbAdapter, Opened, Receipted, Unopened
from agents.sim.faults import (
    forge_signature,
    key_as_another,
    make_malformed,
    make_oversized,
    tamper_body,
    tamper_header,
)
from brokers.record_headers import RECEIPTS_TYPE
from brokers.records import OutboundRecord, ReceivedRecord
from brokers.settings import Settings
from schemas.bodies import MessageBody, UrgentRequestBody
from schemas.errors import NotARecipient
from schemas.header import HeaderFlag, MessageType, Precedence, RoutingHeader
from schemas.keys import Directory, PrivateIdentity, generate_identity
from schemas.registry import default_registry
from schemas.sealing import open_sealed, parse_envelope
from streams.core.liveness import Heartbeat
from tests.integration.harness import Backbone, now, running

pytestmark = pytest.mark.integration

BODY = MessageBody(subject="Vehicle seized at border crossing", text="VIN WDB1240221A123456")


@pytest.fixture
async def backbone(
    settings: Settings,
    keys_dir: Path,
    keyring: tuple[Directory, dict[str, PrivateIdentity]],
    tmp_path: Path,
) -> AsyncIterator[Backbone]:
    async with running(settings, keys_dir, keyring, tmp_path) as rig:
        yield rig


def opened_ids(items: Sequence[object]) -> list[str]:
    return [i.header.message_id for i in items if isinstance(i, Opened)]


def receipts_for(items: Sequence[object], message_id: str) -> set[str]:
    return {
        r.recipient
        for i in items
        if isinstance(i, Receipted)
        for r in i.receipts
        if r.delivered == message_id
    }


async def test_two_recipients_open_it_and_a_third_never_receives_it(backbone: Backbone) -> None:
    header, record = backbone.adapter("FRA").compose(
        ["DEU", "ITA"], BODY, now=now(), random_bytes=os.urandom
    )
    await backbone.send(record)

    inboxes = await backbone.inboxes(
        ["FRA", "DEU", "ITA", "ESP"],
        until=lambda rs: sum(1 for r in rs if r.topic.endswith("FRA.inbox")) >= 2,
    )

    for code in ("DEU", "ITA"):
        [item] = inboxes[code]
        assert isinstance(item, Opened)
        assert item.header.message_id == header.message_id
        assert item.body == BODY
    assert inboxes["ESP"] == []
    assert receipts_for(inboxes["FRA"], header.message_id) == {"DEU", "ITA"}
    sealed = parse_envelope(record.value, max_bytes=backbone.settings.max_message_bytes)
    with pytest.raises(NotARecipient):
        open_sealed(
            sealed,
            topic=backbone.settings.topics.inbound,
            key=b"FRA",
            directory=backbone.directory,
            identity=backbone.identities["ESP"],
        )


async def test_every_ncb_sends_one_message_and_receives_the_one_addressed_to_it(
    backbone: Backbone,
) -> None:
    codes = list(default_registry().codes())
    expected: dict[str, str] = {}
    for index, sender in enumerate(codes):
        recipient = codes[(index + 1) % len(codes)]
        header, record = backbone.adapter(sender).compose(
            [recipient], BODY, now=now(), random_bytes=os.urandom
        )
        expected[recipient] = header.message_id
        await backbone.send(record)

    def all_in(records: list[ReceivedRecord]) -> bool:
        return len(
            {r.topic for r in records if r.header("ce_type") != RECEIPTS_TYPE.encode()}
        ) >= len(codes)

    inboxes = await backbone.inboxes(codes, until=all_in, timeout=120)

    for code in codes:
        messages = [
            i
            for i in inboxes[code]
            if isinstance(i, Opened) and i.header.message_type is MessageType.MESSAGE
        ]
        assert [m.header.message_id for m in messages] == [expected[code]], code


async def test_each_bad_record_is_dead_lettered_with_its_reason_and_good_ones_pass(
    backbone: Backbone,
) -> None:
    fra = backbone.adapter("FRA")
    max_bytes = backbone.settings.max_message_bytes
    outsider = generate_identity("XKX")
    good_ids: list[str] = []
    bad: dict[str, str] = {}

    async def good() -> None:
        header, record = fra.compose(["DEU"], BODY, now=now(), random_bytes=os.urandom)
        good_ids.append(header.message_id)
        await backbone.send(record)

    async def spoiled(reason: str, record: OutboundRecord) -> None:
        bad[(record.header("ce_id") or b"").decode()] = reason
        await backbone.send(record)

    def composed() -> OutboundRecord:
        return fra.compose(["DEU"], BODY, now=now(), random_bytes=os.urandom)[1]

    stranger = NcbAdapter(outsider, backbone.directory, backbone.settings.topics)
    wider = NcbAdapter(
        fra.identity,
        backbone.directory.with_identities([outsider.public()]),
        backbone.settings.topics,
    )
    await good()
    await spoiled("tampered", tamper_body(composed()))
    await good()
    await spoiled("tampered", tamper_header(composed()))
    await spoiled(
        "bad-signature", forge_signature(composed(), backbone.identities["DEU"], max_bytes)
    )
    await spoiled(
        "unknown-sender", stranger.compose(["DEU"], BODY, now=now(), random_bytes=os.urandom)[1]
    )
    await spoiled(
        "unknown-recipient",
        wider.compose(["DEU", "XKX"], BODY, now=now(), random_bytes=os.urandom)[1],
    )
    await spoiled("malformed", make_malformed(composed()))
    await spoiled("oversized", make_oversized(composed(), max_bytes))
    stale_at = now() - timedelta(seconds=2 * backbone.settings.freshness_seconds)
    await spoiled("stale", fra.compose(["DEU"], BODY, now=stale_at, random_bytes=os.urandom)[1])
    header, original = fra.compose(["DEU"], BODY, now=now(), random_bytes=os.urandom)
    good_ids.append(header.message_id)
    await backbone.send(original)
    await spoiled("replayed", original)
    await good()

    topics = backbone.settings.topics
    dead = await backbone.read([topics.deadletter], until=lambda rs: len(rs) >= len(bad))
    reasons = {
        (r.header("ce_id") or b"").decode(): (r.header("i247.dlq.reason") or b"").decode()
        for r in dead
    }
    assert reasons == bad
    for record in dead:
        assert record.header("i247.dlq.topic") == topics.inbound.encode()
        assert record.header("i247.dlq.detail")
    inboxes = await backbone.inboxes(["DEU"], until=lambda rs: len(rs) >= len(good_ids))
    assert sorted(opened_ids(inboxes["DEU"])) == sorted(good_ids)


async def test_a_record_keyed_by_another_bureau_is_refused_and_never_delivered(
    backbone: Backbone,
) -> None:
    fra = backbone.adapter("FRA")
    header, good = fra.compose(["DEU"], BODY, now=now(), random_bytes=os.urandom)
    as_deu_header, plain = fra.compose(["DEU"], BODY, now=now(), random_bytes=os.urandom)
    as_deu = key_as_another(
        plain,
        as_deu_header,
        BODY,
        sender=fra.identity,
        directory=backbone.directory,
        key=b"DEU",
    )
    rekeyed_header, signed = fra.compose(["DEU"], BODY, now=now(), random_bytes=os.urandom)
    rekeyed = dataclasses.replace(signed, key=b"ITA")
    for record in (as_deu, rekeyed, good):
        await backbone.send(record)

    topics = backbone.settings.topics
    dead = await backbone.read([topics.deadletter], until=lambda rs: len(rs) >= 2)
    by_id = {(r.header("ce_id") or b"").decode(): r for r in dead}
    assert set(by_id) == {as_deu_header.message_id, rekeyed_header.message_id}
    refused = by_id[as_deu_header.message_id]
    assert refused.header("i247.dlq.reason") == b"key-not-sender"
    assert b"record key 'DEU' is not the sender 'FRA'" in (refused.header("i247.dlq.detail") or b"")
    assert (refused.key, refused.value) == (b"DEU", as_deu.value)
    assert by_id[rekeyed_header.message_id].header("i247.dlq.reason") == b"tampered"
    inboxes = await backbone.inboxes(["DEU"], until=lambda rs: len(rs) >= 1)
    assert opened_ids(inboxes["DEU"]) == [header.message_id]


async def test_flash_is_assessed_flash_and_an_over_declared_routine_message_is_not(
    backbone: Backbone,
) -> None:
    ita = backbone.adapter("ITA")
    flash, flash_record = ita.compose(
        ["DEU", "ccc"],
        UrgentRequestBody(subject="Hostages", situation="hostage situation", text="Armed group"),
        now=now(),
        random_bytes=os.urandom,
        precedence=Precedence.FLASH,
        flags=[HeaderFlag.THREAT_TO_LIFE],
    )
    routine, routine_record = ita.compose(
        ["DEU"], BODY, now=now(), random_bytes=os.urandom, precedence=Precedence.FLASH
    )
    await backbone.send(flash_record)
    await backbone.send(routine_record)

    inboxes = await backbone.inboxes(["DEU"], until=lambda rs: len(rs) >= 2)

    assessed = {i.header.message_id: i.precedence for i in inboxes["DEU"] if isinstance(i, Opened)}
    assert assessed[flash.message_id] is Precedence.FLASH
    assert assessed[routine.message_id] is not Precedence.FLASH


async def test_restarting_the_hub_mid_stream_loses_nothing_and_delivers_nothing_twice(
    backbone: Backbone,
) -> None:
    codes = ["DEU", "ITA", "ESP", "NLD", "BEL"]
    sent: Counter[str] = Counter()
    for round_ in range(300):
        sender = codes[round_ % len(codes)]
        recipient = codes[(round_ + 1) % len(codes)]
        header, record = backbone.adapter(sender).compose(
            [recipient], BODY, now=now(), random_bytes=os.urandom
        )
        sent[f"{header.message_id}/{recipient}"] += 1
        await backbone.send(record)
        if round_ == 120:
            backbone.kill_hub()  # mid-stream, uncommitted work included
        if round_ == 200:
            backbone.start_hub()

    inboxes = await backbone.inboxes(
        codes,
        until=lambda rs: (
            len(
                {
                    (r.topic, r.key)
                    for r in rs
                    if r.header("ce_type") == b"int.interpol.i247.message.v1"
                }
            )
            >= len(sent)
        ),
        timeout=120,
    )

    delivered = Counter(
        f"{i.header.message_id}/{code}"
        for code in codes
        for i in inboxes[code]
        if isinstance(i, Opened) and i.header.message_type is MessageType.MESSAGE
    )
    assert delivered == sent
    assert not [i for items in inboxes.values() for i in items if isinstance(i, Unopened)]
    # what the killed hub delivered past its last reported position is fenced, not opened
    assert all(
        isinstance(i, (Opened, Duplicate, Fenced, Receipted))
        for items in inboxes.values()
        for i in items
    )


async def test_a_flash_message_is_not_stuck_behind_a_routine_backlog(
    settings: Settings,
    keys_dir: Path,
    keyring: tuple[Directory, dict[str, PrivateIdentity]],
    tmp_path: Path,
) -> None:
    async with running(settings, keys_dir, keyring, tmp_path, start_hub=False) as bb:
        assert bb.producer is not None
        senders = ["ITA", "ESP", "NLD", "BEL", "AUT", "PRT"]
        for index in range(1500):
            _, record = bb.adapter(senders[index % len(senders)]).compose(
                ["DEU", "POL", "CZE"], BODY, now=now(), random_bytes=os.urandom
            )
            await bb.producer.send(
                record.topic, record.value, key=record.key, headers=list(record.headers)
            )
        flash, record = bb.adapter("ITA").compose(
            ["DEU"],
            UrgentRequestBody(subject="Bomb threat", situation="terrorist attack", text="Now"),
            now=now(),
            random_bytes=os.urandom,
            precedence=Precedence.FLASH,
            flags=[HeaderFlag.MASS_CASUALTY],
        )
        await bb.send(record)  # the last record of the backlog
        bb.start_hub()
        deu = bb.settings.topics.inbox("DEU")
        records = await bb.read([deu], until=lambda rs: len(rs) >= 1501, timeout=240)
    keys = [r.key for r in records]
    position = keys.index(flash.message_id.encode())
    assert len(records) == 1501
    assert position < len(records) - 1, "the FLASH message was delivered after the whole backlog"


async def test_an_unacknowledged_flash_message_raises_one_breach_and_an_acknowledged_one_none(
    settings: Settings,
    keys_dir: Path,
    keyring: tuple[Directory, dict[str, PrivateIdentity]],
    tmp_path: Path,
) -> None:
    fra = "FRA"
    async with running(
        settings, keys_dir, keyring, tmp_path, clock_scale=120.0
    ) as bb:  # FLASH: 5 s

        def flash_to(recipient: str) -> tuple[RoutingHeader, OutboundRecord]:
            return bb.adapter(fra).compose(
                [recipient],
                UrgentRequestBody(subject="Hostages", situation="hostage situation", text="Now"),
                now=now(),
                random_bytes=os.urandom,
                precedence=Precedence.FLASH,
                flags=[HeaderFlag.THREAT_TO_LIFE],
            )

        ignored, record = flash_to("DEU")
        await bb.send(record)
        handled, record = flash_to("ITA")
        await bb.send(record)
        ita = await bb.inboxes(["ITA"], until=lambda rs: len(rs) >= 1)
        [opened] = [i for i in ita["ITA"] if isinstance(i, Opened)]
        await bb.send(bb.adapter("ITA").acknowledgement(opened, now=now(), random_bytes=os.urandom))
        control = bb.settings.topics.control
        await bb.read(
            [control], until=lambda rs: any(b"handling-breach" in r.value for r in rs), timeout=60
        )
        await asyncio.sleep(8)  # past the acknowledged message's deadline too
        events = await bb.read([control], until=lambda rs: False, timeout=2)
        beats = await bb.read([bb.settings.topics.heartbeat], until=lambda rs: len(rs) >= 5)
    breach_records = [r for r in events if b"handling-breach" in r.value]
    for event in events:  # every journal record is a CloudEvent too
        assert event.header("ce_specversion") == b"1.0"
        assert event.header("ce_id")
        assert (event.header("ce_source") or b"").startswith(b"/i247/hub:")
    breaches = [json.loads(r.value) for r in breach_records]
    heartbeats = [Heartbeat.model_validate_json(r.value) for r in beats]
    assert {h.site for h in heartbeats} == {"lyon"}
    assert [h.sequence for h in heartbeats] == sorted(h.sequence for h in heartbeats)
    assert bb.settings.topics.lane("lyon", Precedence.FLASH) in heartbeats[-1].lanes
    assert [b["message_id"] for b in breaches] == [ignored.message_id]
    assert breaches[0]["unacknowledged"] == ["DEU"]
    assert breaches[0]["precedence"] == "FLASH"
    assert handled.message_id not in {b["message_id"] for b in breaches}
