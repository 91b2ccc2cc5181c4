"""Notices and diffusions through a real hub: review, broadcast, updates, catch-up, recall."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest

from agents.ncb.adapter import NcbAdapter, Opened
from agents.ncb.notice_board import NoticeBoard
from agents.sim.notice_traffic import political_request, red_notice, red_notice_id, regional_alert
from brokers.records import ReceivedRecord
from brokers.settings import Settings
from schemas.bodies import (
    Body,
    DiffusionBody,
    DiffusionRecallBody,
    MessageBody,
    NoticeActionBody,
    NoticeBody,
    NoticeDecisionBody,
    NoticeRequestBody,
)
from schemas.errors import NotARecipient
from schemas.header import MessageType
from schemas.keys import Directory, PrivateIdentity, generate_identity
from schemas.notice_view import NoticeView
from schemas.notices import (
    DiffusionRecall,
    NoticeAction,
    NoticeState,
    ReasonCode,
    RecallReason,
    ReviewDecision,
)
from schemas.participants import CCC
from schemas.registry import Region, default_registry
from schemas.sealing import open_sealed, parse_envelope
from tests.integration.harness import Backbone, now, running

pytestmark = pytest.mark.integration

REGISTRY = default_registry()
ALL = REGISTRY.codes()


@pytest.fixture
async def backbone(
    settings: Settings,
    keys_dir: Path,
    keyring: tuple[Directory, dict[str, PrivateIdentity]],
    tmp_path: Path,
) -> AsyncIterator[Backbone]:
    async with running(settings, keys_dir, keyring, tmp_path) as rig:
        yield rig


async def send(bb: Backbone, sender: str, recipients: list[str], body: Body) -> str:
    header, record = bb.adapter(sender).compose(
        recipients, body, now=now(), random_bytes=os.urandom
    )
    await bb.send(record)
    return header.message_id


def bodies(items: Iterable[object]) -> list[Body]:
    return [i.body for i in items if isinstance(i, Opened)]


def notices_in(items: Iterable[object], notice_id: str) -> list[int]:
    """The versions of ``notice_id`` in one inbox, as received."""
    return [
        b.notice.version
        for b in bodies(items)
        if isinstance(b, NoticeBody) and b.notice.notice_id == notice_id
    ]


def per_inbox(bb: Backbone, at_least: dict[str, int]) -> Any:
    """An ``until`` for ``bb.inboxes``: each named inbox holds at least so many records."""
    topics = {bb.settings.topics.inbox(c): n for c, n in at_least.items()}

    def enough(records: list[ReceivedRecord]) -> bool:
        seen: dict[str, int] = {}
        for record in records:
            seen[record.topic] = seen.get(record.topic, 0) + 1
        return all(seen.get(t, 0) >= n for t, n in topics.items())

    return enough


def of_type(bb: Backbone, codes: Iterable[str], message_type: MessageType) -> Any:
    """An ``until``: each named inbox holds a record of ``message_type`` (by its ce_type)."""
    topics = {bb.settings.topics.inbox(c) for c in codes}
    ce_type = f"int.interpol.i247.{message_type.value}.v1".encode()

    def arrived(records: list[ReceivedRecord]) -> bool:
        return topics <= {r.topic for r in records if r.header("ce_type") == ce_type}

    return arrived


async def compacted(bb: Backbone) -> list[ReceivedRecord]:
    return await bb.read([bb.settings.topics.notices], until=lambda rs: False, timeout=1.0)


def open_as(bb: Backbone, record: ReceivedRecord, identity: PrivateIdentity) -> Body:
    """Open a record as ``identity``, for the topic and key it says it was sealed for."""
    sealed = parse_envelope(record.value, max_bytes=bb.settings.max_message_bytes)
    return open_sealed(
        sealed,
        topic=(record.header("i247-sealed-topic") or b"").decode(),
        key=record.header("i247-sealed-key") or b"",
        directory=bb.directory,
        identity=identity,
    ).body


async def test_a_red_notice_reaches_all_196_and_its_updates_converge(backbone: Backbone) -> None:
    bb = backbone
    request = red_notice("FRA", str(uuid.uuid4()), random.Random(1))
    notice_id = red_notice_id(request)
    await send(bb, "FRA", [CCC], NoticeRequestBody(request=request))

    wanted = dict.fromkeys(ALL, 1)
    decided = of_type(bb, ["FRA"], MessageType.NOTICE_DECISION)  # FRA also has a receipt
    first = await bb.inboxes(
        ALL, until=lambda rs: per_inbox(bb, wanted)(rs) and decided(rs), timeout=120
    )
    for code in ALL:
        assert notices_in(first[code], notice_id) == [3], code  # open, review, publish
    [decision] = [b for b in bodies(first["FRA"]) if isinstance(b, NoticeDecisionBody)]
    assert decision.outcome.decision is ReviewDecision.PUBLISHED
    assert decision.notice_id == notice_id

    raw = await bb.read(
        [bb.settings.topics.inbox("DEU")], until=lambda rs: len(rs) >= 1, timeout=10
    )
    outsider = generate_identity("XKX")
    with pytest.raises(NotARecipient):
        open_as(bb, raw[0], outsider)  # an inbox copy, sealed for DEU among others
    [published] = await compacted(bb)
    assert published.key == notice_id.encode()
    with pytest.raises(NotARecipient):
        open_as(bb, published, outsider)

    for action in (NoticeAction.SUSPEND, NoticeAction.CANCEL):
        await send(bb, "FRA", [CCC], NoticeActionBody(notice_id=notice_id, action=action))
    wanted = dict.fromkeys(ALL, 3) | {"FRA": 4}  # FRA also has its decision
    final = await bb.inboxes(ALL, until=per_inbox(bb, wanted), timeout=120)
    for code in ALL:
        view = NoticeView(b.notice for b in bodies(final[code]) if isinstance(b, NoticeBody))
        latest = view.latest(notice_id)
        assert latest is not None, code
        assert (latest.version, latest.state) == (5, NoticeState.CANCELLED), code
        assert sorted(notices_in(final[code], notice_id)) == [3, 4, 5], code

    records = [r for r in await compacted(bb) if r.key == notice_id.encode()]
    latest_body = open_as(bb, records[-1], bb.identities["JPN"])
    assert isinstance(latest_body, NoticeBody)
    assert (latest_body.notice.version, latest_body.notice.state) == (5, NoticeState.CANCELLED)
    events = await bb.journal(
        until=lambda es: sum(e.get("event") == "notice-broadcast" for e in es) >= 3, timeout=10
    )
    broadcasts = [e for e in events if e.get("event") == "notice-broadcast"]
    assert [e["recipients"] for e in broadcasts] == [196, 196, 196]


async def test_a_regional_alert_stays_in_its_region_and_a_political_request_is_refused(
    backbone: Backbone,
) -> None:
    bb = backbone
    rng = random.Random(2)
    africa = [m.iso3 for m in REGISTRY.in_region(Region.AFRICA)]
    requester = africa[0]
    alert = regional_alert(requester, str(uuid.uuid4()), Region.AFRICA, rng)
    await send(bb, requester, [CCC], NoticeRequestBody(request=alert))
    await send(
        bb,
        "FRA",
        [CCC],
        NoticeRequestBody(request=political_request("FRA", str(uuid.uuid4()), rng)),
    )

    # the alert reaches Africa (its requester gets a decision too); the refusal reaches FRA
    wanted = dict.fromkeys(africa, 1) | {requester: 2, "FRA": 1}
    seen = await bb.inboxes(ALL, until=per_inbox(bb, wanted), timeout=120)
    alert_id = red_notice_id(alert)
    reached = {c for c in ALL if notices_in(seen[c], alert_id)}
    assert reached == set(africa)
    [refusal] = [b for b in bodies(seen["FRA"]) if isinstance(b, NoticeDecisionBody)]
    assert refusal.outcome.decision is ReviewDecision.REFUSED
    assert ReasonCode.ARTICLE_3_CATEGORY in {r.code for r in refusal.outcome.reasons}
    assert refusal.notice_id is None
    assert not any(isinstance(b, NoticeBody) for b in bodies(seen["FRA"]))


async def test_a_late_board_catches_up_on_exactly_the_notices_in_force(backbone: Backbone) -> None:
    bb = backbone
    rng = random.Random(3)
    africa_member = REGISTRY.in_region(Region.AFRICA)[1].iso3
    kept = red_notice("DEU", str(uuid.uuid4()), rng)
    dropped = red_notice("ITA", str(uuid.uuid4()), rng)
    alert = regional_alert(africa_member, str(uuid.uuid4()), Region.AFRICA, rng)
    for sender, request in (("DEU", kept), ("ITA", dropped), (africa_member, alert)):
        await send(bb, sender, [CCC], NoticeRequestBody(request=request))
    await send(
        bb,
        "ITA",
        [CCC],
        NoticeActionBody(notice_id=red_notice_id(dropped), action=NoticeAction.CANCEL),
    )
    events = await bb.journal(
        until=lambda es: sum(e.get("event") == "notice-broadcast" for e in es) >= 4, timeout=90
    )
    assert sum(e.get("event") == "notice-broadcast" for e in events) == 4

    expected = {
        "ESP": {red_notice_id(kept)},
        africa_member: {red_notice_id(kept), red_notice_id(alert)},
    }
    not_ours: dict[str, int] = {}
    for code, in_force in expected.items():
        board = NoticeBoard(NcbAdapter(bb.identities[code], bb.directory, bb.settings.topics))
        await board.start(bb.bootstrap, follow_inbox=False)  # the compacted topic only

        def caught_up(board: NoticeBoard = board, in_force: set[str] = in_force) -> bool:
            return set(board.view.in_force()) == in_force

        try:
            await board.wait_until(caught_up, 30)
            assert set(board.view.in_force()) == in_force, code
            cancelled = board.view.latest(red_notice_id(dropped))
            assert cancelled is not None
            assert cancelled.state is NoticeState.CANCELLED
            not_ours[code] = board.counts["compacted.not-ours"]
        finally:
            await board.stop()
    assert not_ours == {"ESP": 1, africa_member: 0}  # only Africa opens the regional alert


async def test_a_recalled_diffusion_is_purged_everywhere_and_journaled(backbone: Backbone) -> None:
    bb = backbone
    recipients = ["DEU", "ESP", "ITA"]
    body = DiffusionBody(subject="Stolen car ring", text="VIN list attached", purpose="seize")
    diffusion_id = await send(bb, "FRA", [*recipients, CCC], body)
    await bb.inboxes(recipients, until=per_inbox(bb, dict.fromkeys(recipients, 1)), timeout=60)

    recall = DiffusionRecall(diffusion_id=diffusion_id, reason=RecallReason.SENDER_WITHDREW)
    await send(bb, "DEU", [CCC], DiffusionRecallBody(recall=recall))  # not DEU's to recall
    await send(bb, "FRA", [CCC], DiffusionRecallBody(recall=recall))
    told = [*recipients, "FRA"]
    recalled, answered = (
        of_type(bb, told, MessageType.DIFFUSION_RECALL),
        of_type(bb, ["DEU"], MessageType.MESSAGE),
    )
    seen = await bb.inboxes(
        [*told, "PRT"], until=lambda rs: recalled(rs) and answered(rs), timeout=60
    )

    for code in told:
        recalls = [b for b in bodies(seen[code]) if isinstance(b, DiffusionRecallBody)]
        assert [r.recall.diffusion_id for r in recalls] == [diffusion_id], code
    for code in recipients:
        board = NoticeBoard(bb.adapter(code))
        held = [board.take(i) for i in seen[code]]
        assert any(held), code
        assert board.view.diffusions() == {}, code
    assert seen["PRT"] == []
    refusals = [b for b in bodies(seen["DEU"]) if isinstance(b, MessageBody)]
    assert [m.subject for m in refusals] == [f"recall refused: {diffusion_id}"]

    events = await bb.journal(
        until=lambda es: any(e.get("event") == "diffusion-recalled" for e in es), timeout=30
    )
    [recorded] = [e for e in events if e.get("event") == "diffusion-recorded"]
    [recalled] = [e for e in events if e.get("event") == "diffusion-recalled"]
    [refused] = [e for e in events if e.get("event") == "diffusion-recall-refused"]
    assert (recorded["diffusion_id"], recorded["recipients"]) == (diffusion_id, 3)
    assert (recalled["by"], recalled["recipients"], recalled["reason"]) == (
        "FRA",
        3,
        "sender-withdrew",
    )
    assert refused["by"] == "DEU"
