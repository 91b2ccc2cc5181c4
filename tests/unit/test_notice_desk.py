"""The CCC's notice and diffusion desks without a broker: the effects they return, and the
records the hub's shell makes of them where another hub or a board reads them."""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from agents.ncb.adapter import NcbAdapter, Opened
from agents.ncb.notice_board import NoticeBoard
from agents.sim.notice_traffic import NoticeTraffic, political_request, red_notice, red_notice_id
from brokers.records import OutboundRecord, ReceivedRecord
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
    RenewalPromptBody,
)
from schemas.errors import NotARecipient
from schemas.header import MessageType, Precedence
from schemas.journal import (
    DiffusionRecalled,
    DiffusionRecorded,
    NoticeDecided,
    NoticeRequested,
    parse_desk_event,
)
from schemas.keys import generate_identity
from schemas.notices import (
    DiffusionRecall,
    NoticeAction,
    NoticeColour,
    NoticeRequest,
    NoticeState,
    ReasonCode,
    RecallReason,
    ReviewDecision,
)
from schemas.participants import CCC
from schemas.registry import MemberRegistry, Region, default_registry
from schemas.sealing import OpenedMessage, open_sealed, parse_envelope, seal
from schemas.topics import TopicCatalog
from streams.core.notice_lifecycle import NoticeLifecycle
from streams.core.roster import DutyRoster
from streams.desks.context import DeskContext
from streams.desks.diffusion_desk import DiffusionDesk
from streams.desks.effects import Effect, Journal, PublishNotice, Send
from streams.desks.hub_state import HubState
from streams.desks.notice_desk import NoticeDesk, notice_id_for
from streams.desks.shell import DeskShell
from tests.unit.factories import T0, make_header, small_keyring

TOPICS = TopicCatalog(prefix="t")
WORLD = default_registry()
# four members: FRA and DEU in Europe, ITA and ESP moved to Africa for a regional split
REGISTRY = MemberRegistry(
    [WORLD.get("FRA"), WORLD.get("DEU")]
    + [WORLD.get(c).model_copy(update={"region": Region.AFRICA}) for c in ("ITA", "ESP")]
)
NCBS = ("DEU", "ESP", "FRA", "ITA")


class Said(list[Effect]):
    """What a desk said (its effects, which the tests compare), and ``records``: what the
    hub's shell made of them, for what only records show (the compacted topic, the journal
    as another hub's tail reads it)."""

    records: list[OutboundRecord]


class Hub:
    """One hub's notice and diffusion desks; their effects are carried out by the hub's
    shell, as a hub does, so other hubs and boards can read the records."""

    def __init__(self, hub: str, *, scale: float, on_duty: bool) -> None:
        directory, identities = small_keyring()
        state = HubState(
            settings=Settings(topic_prefix="t", clock_scale=scale),
            site=hub.removeprefix("hub:"),
            bootstrap="localhost:9092",
            directory=directory,
            identity=identities[hub],
            roster=DutyRoster(),
            clock=lambda: T0,
            random_bytes=os.urandom,
        )
        self.shell = DeskShell(state)
        self.desk = NoticeDesk(
            registry=REGISTRY,
            lifecycle=NoticeLifecycle(scale=scale),
            open_stored=self.shell.open_stored,
            on_duty=lambda: on_duty,
        )
        self.diffusions = DiffusionDesk(REGISTRY)
        self.lifecycle = self.desk.lifecycle
        self.ledger = self.diffusions.ledger
        self.notices, self.in_force, self.restore = (
            self.desk.notices,
            self.desk.in_force,
            self.desk.restore,
        )
        self.fold_journal = self.diffusions.fold_journal

    def context(self, now: datetime) -> DeskContext:
        return self.shell.context(now)

    def carry(self, effects: list[Effect], now: datetime) -> Said:
        said = Said(effects)
        said.records = self.shell.carry_out(effects, now)
        return said

    def handle(self, opened: OpenedMessage, at: datetime) -> Said:
        to = self.desk if opened.header.message_type in self.desk.handles else self.diffusions
        return self.carry(to.handle(self.context(at), opened), at)

    def tick(self, at: datetime) -> Said:
        return self.carry(self.desk.tick(self.context(at)), at)

    def recall_diffusion(self, recall: DiffusionRecall, at: datetime) -> Said:
        return self.carry(self.diffusions.recall_diffusion(self.context(at), recall), at)


def desk(hub: str = "hub:lyon", *, scale: float = 1.0, on_duty: bool = True) -> Hub:
    return Hub(hub, scale=scale, on_duty=on_duty)


def message(sender: str, body: Body, recipients: Sequence[str] = (CCC,)) -> OpenedMessage:
    header = make_header(
        sender=sender, recipients=list(recipients), message_type=MessageType(body.type)
    )
    return OpenedMessage(header, body)


def handle(d: Hub, sender: str, body: Body, *, at: Any = T0) -> Said:
    return d.handle(message(sender, body), at)


def events(out: Said) -> list[dict[str, Any]]:
    """The journal events the desk said, as written on the control topic."""
    return [json.loads(e.event.to_json_bytes()) for e in out if isinstance(e, Journal)]


def diffusion_events(out: Said) -> list[DiffusionRecorded | DiffusionRecalled]:
    """The diffusion events among ``out``, read as a hub's journal tail reads them."""
    read = [parse_desk_event(r.value) for r in out.records if r.topic == TOPICS.control]
    return [e for e in read if isinstance(e, DiffusionRecorded | DiffusionRecalled)]


def opened(out: Said, code: str) -> list[Body]:
    """What the desk sent ``code`` (the shell's tests check each copy opens for it alone)."""
    return [e.body for e in out if isinstance(e, Send) and code in e.to]


def compacted(out: Said) -> list[ReceivedRecord]:
    """The records written on the compacted notices topic, as a reader of it gets them."""
    return [
        ReceivedRecord(r.topic, 0, i, 0, r.key, r.value, r.headers)
        for i, r in enumerate(out.records)
        if r.topic == TOPICS.notices
    ]


def request(**changes: Any) -> NoticeRequest:
    base = red_notice("FRA", str(uuid.uuid4()), random.Random(5))
    return base.model_copy(update=changes)


def test_a_sound_request_is_published_answered_and_broadcast_to_every_member() -> None:
    d, req = desk(), request()
    out = handle(d, "FRA", NoticeRequestBody(request=req))

    notice_id = notice_id_for(req)
    [answer] = [b for b in opened(out, "FRA") if isinstance(b, NoticeDecisionBody)]
    assert answer.outcome.decision is ReviewDecision.PUBLISHED
    assert answer.notice_id == notice_id
    for code in NCBS:
        [copy] = [b for b in opened(out, code) if isinstance(b, NoticeBody)]
        assert (copy.notice.notice_id, copy.notice.version) == (notice_id, 3)
        assert copy.notice.state is NoticeState.PUBLISHED
    [stored] = compacted(out)
    assert stored.key == notice_id.encode()
    names = [e["event"] for e in events(out)]
    assert names == ["notice-requested", "notice-transition", "notice-decided",
                     "notice-transition", "notice-broadcast"]  # fmt: skip
    assert events(out)[-1]["recipients"] == 4
    assert set(d.notices()) == {notice_id}


def test_the_compacted_copy_opens_for_recipients_and_hubs_only() -> None:
    directory, identities = small_keyring()
    out = handle(desk(), "FRA", NoticeRequestBody(request=request()))
    [stored] = compacted(out)
    sealed = parse_envelope(stored.value, max_bytes=1 << 20)
    for holder in ("DEU", "hub:singapore", "auditor"):
        body = open_sealed(sealed, topic=TOPICS.notices, key=stored.key or b"",
                           directory=directory, identity=identities[holder]).body  # fmt: skip
        assert isinstance(body, NoticeBody)
    with pytest.raises(NotARecipient):
        open_sealed(sealed, topic=TOPICS.notices, key=stored.key or b"", directory=directory,
                    identity=generate_identity("XKX"))  # fmt: skip


def test_a_regional_alert_goes_to_its_region_and_its_requester() -> None:
    req = request(colour=NoticeColour.YELLOW, region=Region.AFRICA, offence_category=None,
                  judicial_basis=None)  # fmt: skip
    out = handle(desk(), "FRA", NoticeRequestBody(request=req))
    reached = {c for c in NCBS if any(isinstance(b, NoticeBody) for b in opened(out, c))}
    assert reached == {"ITA", "ESP", "FRA"}  # Africa, plus FRA which asked for it


@pytest.mark.parametrize(
    ("sender", "req", "code"),
    [
        ("DEU", request(), ReasonCode.NOT_REQUESTER),  # DEU asks in FRA's name
        ("FRA", political_request("FRA", str(uuid.uuid4()), random.Random(1)),
         ReasonCode.ARTICLE_3_CATEGORY),
    ],
)  # fmt: skip
def test_a_refusal_goes_to_the_sender_with_its_reason_and_nothing_circulates(
    sender: str, req: NoticeRequest, code: ReasonCode
) -> None:
    d = desk()
    out = handle(d, sender, NoticeRequestBody(request=req))
    [answer] = opened(out, sender)
    assert isinstance(answer, NoticeDecisionBody)
    assert answer.outcome.decision is ReviewDecision.REFUSED
    assert code in {r.code for r in answer.outcome.reasons}
    assert not compacted(out)
    assert [e["decision"] for e in events(out) if e["event"] == "notice-decided"] == ["refused"]
    assert d.notices() == {}


def test_a_returned_request_completed_is_the_same_notice_and_a_repeat_gets_one_answer() -> None:
    d, complete = desk(), request()
    incomplete = complete.model_copy(update={"judicial_basis": None})
    first = handle(d, "FRA", NoticeRequestBody(request=incomplete))
    [returned] = opened(first, "FRA")
    assert isinstance(returned, NoticeDecisionBody)
    assert returned.outcome.decision is ReviewDecision.RETURNED

    second = handle(d, "FRA", NoticeRequestBody(request=complete))
    [notice] = d.notices().values()
    assert (notice.state, notice.version) == (NoticeState.PUBLISHED, 5)  # 3 after the return

    again = handle(d, "FRA", NoticeRequestBody(request=complete))
    [answer] = opened(again, "FRA")
    assert isinstance(answer, NoticeDecisionBody)
    assert answer.notice_id == notice.notice_id
    assert not compacted(again)
    assert compacted(second)


def test_only_the_requester_acts_and_only_as_the_lifecycle_allows() -> None:
    d, req = desk(), request()
    handle(d, "FRA", NoticeRequestBody(request=req))
    notice_id = notice_id_for(req)

    def act(sender: str, action: NoticeAction) -> Said:
        return handle(d, sender, NoticeActionBody(notice_id=notice_id, action=action))

    for sender, action, why in (
        ("DEU", NoticeAction.CANCEL, "only FRA"),
        ("FRA", NoticeAction.REINSTATE, "cannot reinstate"),
    ):
        out = act(sender, action)
        [reply] = opened(out, sender)
        assert isinstance(reply, MessageBody)
        assert why in reply.text
        assert [e["event"] for e in events(out)] == ["notice-action-refused"]
    unknown = handle(d, "FRA", NoticeActionBody(notice_id="red-nope", action=NoticeAction.CANCEL))
    assert [e["event"] for e in events(unknown)] == ["notice-action-refused"]

    out = act("FRA", NoticeAction.CANCEL)
    for code in NCBS:
        [copy] = opened(out, code)
        assert isinstance(copy, NoticeBody)
        assert (copy.notice.state, copy.notice.version) == (NoticeState.CANCELLED, 4)
    assert d.notices()[notice_id].state is NoticeState.CANCELLED
    assert d.in_force() == ()


def test_another_hub_rebuilds_the_notices_from_the_compacted_topic_and_carries_on() -> None:
    lyon, req = desk(), request()
    written = compacted(handle(lyon, "FRA", NoticeRequestBody(request=req)))
    directory, identities = small_keyring()
    forged_header = make_header(sender="FRA", recipients=["DEU", CCC],
                                message_type=MessageType.NOTICE)  # fmt: skip
    [genuine] = lyon.notices().values()
    key = genuine.notice_id.encode()
    forged = seal(forged_header, NoticeBody(notice=genuine), sender=identities["FRA"],
                  directory=directory, topic=TOPICS.notices, key=key)  # fmt: skip
    forged_record = ReceivedRecord(TOPICS.notices, 0, 9, 0, genuine.notice_id.encode(),
                                   forged.to_bytes())  # fmt: skip

    singapore = desk("hub:singapore")
    assert not singapore.restore(forged_record)  # sealed by an NCB: not the CCC's record
    assert [singapore.restore(r) for r in written] == [True]
    assert singapore.notices() == lyon.notices()
    out = handle(singapore, "FRA", NoticeActionBody(notice_id=genuine.notice_id,
                                                    action=NoticeAction.SUSPEND))  # fmt: skip
    assert singapore.notices()[genuine.notice_id].version == 4
    assert lyon.restore(compacted(out)[0])  # lyon follows singapore's write
    assert lyon.notices()[genuine.notice_id].state is NoticeState.SUSPENDED
    # a duplicate request is refused now that singapore knows the notice
    dup = handle(singapore, "FRA", NoticeRequestBody(request=request(request_id=str(uuid.uuid4()))))
    [answer] = opened(dup, "FRA")
    assert isinstance(answer, NoticeDecisionBody)
    assert ReasonCode.DUPLICATE in {r.code for r in answer.outcome.reasons}


def test_the_clock_prompts_the_requester_then_expires_the_notice_on_duty_only() -> None:
    scale = 525_960.0  # a year a minute: valid ~5 min, prompted ~30 s before
    d, idle = desk(scale=scale), desk("hub:singapore", scale=scale, on_duty=False)
    written = compacted(handle(d, "FRA", NoticeRequestBody(request=request())))
    idle.restore(written[0])
    [notice] = d.notices().values()
    assert notice.expires_at is not None
    before_prompt = notice.expires_at - d.lifecycle.prompt_lead - timedelta(seconds=1)
    assert d.tick(before_prompt) == []

    prompt_time = notice.expires_at - d.lifecycle.prompt_lead
    assert idle.tick(prompt_time) == []
    out = d.tick(prompt_time)
    [prompt] = opened(out, "FRA")
    assert isinstance(prompt, RenewalPromptBody)
    assert opened(out, "DEU") == []  # the prompt is the requester's business
    assert len(compacted(out)) == 1
    assert [e["event"] for e in events(out)] == ["renewal-prompted"]
    assert d.tick(prompt_time + timedelta(seconds=1)) == []  # once per validity period

    out = d.tick(notice.expires_at)
    for code in NCBS:
        [copy] = opened(out, code)
        assert isinstance(copy, NoticeBody)
        assert copy.notice.state is NoticeState.EXPIRED


def test_a_diffusion_is_recorded_and_its_recall_reaches_every_original_recipient() -> None:
    d = desk()
    body = DiffusionBody(subject="s", text="t", purpose="p")
    header = make_header(sender="FRA", recipients=["DEU", "ITA", CCC],
                         message_type=MessageType.DIFFUSION)  # fmt: skip
    out = d.handle(OpenedMessage(header, body), T0)
    assert [(e["event"], e["recipients"]) for e in events(out)] == [("diffusion-recorded", 2)]

    recall = DiffusionRecall(diffusion_id=header.message_id, reason=RecallReason.SENDER_WITHDREW)
    refused = handle(d, "DEU", DiffusionRecallBody(recall=recall))
    assert [e["event"] for e in events(refused)] == ["diffusion-recall-refused"]
    out = handle(d, "FRA", DiffusionRecallBody(recall=recall))
    for code in ("DEU", "ITA", "FRA"):
        assert opened(out, code) == [DiffusionRecallBody(recall=recall)]
    assert opened(out, "ESP") == []
    assert [e["event"] for e in events(out)] == ["diffusion-recalled"]
    again = d.recall_diffusion(recall, T0)  # the CCC's own, too late
    assert [e["event"] for e in events(again)] == ["diffusion-recall-refused"]
    assert d.ledger.recalled() == (header.message_id,)


def test_a_request_redelivered_to_a_successor_is_answered_published_not_duplicate() -> None:
    lyon, buenos_aires = desk("hub:lyon"), desk("hub:buenos-aires")
    req = request()
    out = handle(lyon, "FRA", NoticeRequestBody(request=req))
    for record in compacted(out):
        buenos_aires.restore(record)  # B.A. follows the notices topic; Lyon then dies
    again = handle(buenos_aires, "FRA", NoticeRequestBody(request=req))  # lane redelivery
    [decision] = opened(again, "FRA")
    assert isinstance(decision, NoticeDecisionBody)
    assert decision.outcome.decision is ReviewDecision.PUBLISHED
    assert decision.notice_id == red_notice_id(req)
    assert compacted(again) == []  # nothing broadcast twice
    assert opened(again, "DEU") == []
    decided = [e for e in events(again) if e["event"] == "notice-decided"]
    assert [e["decision"] for e in decided] == ["published"]
    other = request()  # a different request for the same person is still a duplicate
    refused = handle(buenos_aires, "FRA", NoticeRequestBody(request=other))
    [answer] = opened(refused, "FRA")
    assert isinstance(answer, NoticeDecisionBody)
    assert answer.outcome.decision is ReviewDecision.REFUSED


def test_a_diffusion_recorded_by_one_hub_is_recalled_through_another() -> None:
    lyon, singapore = desk("hub:lyon"), desk("hub:singapore")
    header = make_header(sender="FRA", recipients=["DEU", "ITA", CCC],
                         message_type=MessageType.DIFFUSION)  # fmt: skip
    body = DiffusionBody(subject="s", text="t", purpose="p")
    for event in diffusion_events(lyon.handle(OpenedMessage(header, body), T0)):
        singapore.fold_journal(event)  # Singapore follows the journal; Lyon then fails

    recall = DiffusionRecall(diffusion_id=header.message_id, reason=RecallReason.SENDER_WITHDREW)
    refused = handle(singapore, "DEU", DiffusionRecallBody(recall=recall))
    assert [e["event"] for e in events(refused)] == ["diffusion-recall-refused"]  # not DEU's
    out = handle(singapore, "FRA", DiffusionRecallBody(recall=recall))
    for code in ("DEU", "ITA", "FRA"):
        assert opened(out, code) == [DiffusionRecallBody(recall=recall)]
    assert [e["event"] for e in events(out)] == ["diffusion-recalled"]

    for event in diffusion_events(out):
        lyon.fold_journal(event)  # Lyon, back, knows it was recalled elsewhere
    again = handle(lyon, "FRA", DiffusionRecallBody(recall=recall))
    assert [e["event"] for e in events(again)] == ["diffusion-recall-refused"]


def test_the_ccc_recalls_a_diffusion_after_a_compliance_finding() -> None:
    d = desk()
    header = make_header(sender="ESP", recipients=["FRA", CCC], message_type=MessageType.DIFFUSION)
    d.handle(OpenedMessage(header, DiffusionBody(subject="s", text="t", purpose="p")), T0)
    recall = DiffusionRecall(diffusion_id=header.message_id, reason=RecallReason.COMPLIANCE_FINDING)
    out = d.recall_diffusion(recall, T0)
    assert opened(out, "FRA") == opened(out, "ESP") == [DiffusionRecallBody(recall=recall)]
    assert events(out)[0]["by"] == "ccc"


def test_a_board_keeps_notices_from_hubs_only_and_skips_what_it_cannot_open() -> None:
    directory, identities = small_keyring()
    d, req = desk(), request(region=Region.AFRICA)
    out = handle(d, "FRA", NoticeRequestBody(request=req))
    deu = NoticeBoard(NcbAdapter(identities["DEU"], directory, TOPICS))
    ita = NoticeBoard(NcbAdapter(identities["ITA"], directory, TOPICS))
    [stored] = compacted(out)
    assert not deu.take_compacted(stored)
    assert deu.counts["compacted.not-ours"] == 1
    assert ita.take_compacted(stored)
    assert set(ita.view.in_force()) == {notice_id_for(req)}
    [copy] = opened(out, "ITA")
    assert isinstance(copy, NoticeBody)
    fake = Opened(make_header(sender="DEU", recipients=["ITA"], message_type=MessageType.NOTICE),
                  copy, Precedence.ROUTINE, None)  # fmt: skip
    fresh = NoticeBoard(ita.adapter)
    assert not fresh.take(fake)  # a notice from an NCB is no notice


def test_the_traffic_names_notices_as_the_desk_does_and_is_seeded() -> None:
    req = request()
    assert red_notice_id(req) == notice_id_for(req)
    directory, identities = small_keyring()
    keys = {code: identities[code] for code in NCBS}
    adapters = {c: NcbAdapter(k, directory, TOPICS) for c, k in keys.items()}

    def run(seed: int) -> list[str]:
        traffic = NoticeTraffic(random.Random(seed), registry=REGISTRY)
        sent = []
        for _ in range(40):
            for record in traffic.step(adapters.__getitem__, now=T0, random_bytes=os.urandom):
                sealed = parse_envelope(record.value, max_bytes=1 << 20)
                sent.append(sealed.header.message_type.value)
        return sent

    kinds = run(11)
    assert kinds == run(11)
    assert {"notice-request", "diffusion"} <= set(kinds)


def test_a_published_notice_is_sent_and_published_to_the_same_recipients_as_effects() -> None:
    d, req = desk(), request()
    opened_request = message("FRA", NoticeRequestBody(request=req))
    effects = d.desk.handle(d.context(T0), opened_request)

    notice_id = notice_id_for(req)
    assert effects[0] == Journal(
        NoticeRequested(
            hub="hub:lyon",
            time=T0,
            notice_id=notice_id,
            request_id=req.request_id,
            requester="FRA",
            sender="FRA",
            colour=req.colour.value,
            region=req.region.value if req.region else None,
        ),
        notice_id,
    )
    [copies] = [e for e in effects if isinstance(e, Send) and isinstance(e.body, NoticeBody)]
    [published] = [e for e in effects if isinstance(e, PublishNotice)]
    assert sorted(copies.to) == sorted(published.recipients) == sorted(NCBS)
    assert copies.body == NoticeBody(notice=published.notice)
    assert (published.notice.notice_id, published.notice.version) == (notice_id, 3)
    [answer] = [e for e in effects if isinstance(e, Send) and e.to == ("FRA",)]
    assert answer.correlation_id == opened_request.header.message_id
    assert answer.body == NoticeDecisionBody(outcome=answer.body.outcome, notice_id=notice_id)  # type: ignore[union-attr]
    decided = [e for e in effects if isinstance(e, Journal) and e.fold]
    assert [e.event.event_name for e in decided] == ["notice-decided"]


def test_a_refused_request_is_journaled_and_answered_to_its_sender_as_effects() -> None:
    d, req = desk(), request()
    opened_request = message("DEU", NoticeRequestBody(request=req))
    requested, decided, answer = d.desk.handle(d.context(T0), opened_request)

    assert isinstance(requested, Journal)
    assert isinstance(requested.event, NoticeRequested)
    assert decided == Journal(
        NoticeDecided(
            hub="hub:lyon",
            time=T0,
            notice_id=notice_id_for(req),
            request_id=req.request_id,
            requester="DEU",
            decision="refused",
            reasons=("not-requester",),
        ),
        notice_id_for(req),
        fold=True,
    )
    assert isinstance(answer, Send)
    assert (answer.to, answer.correlation_id) == (("DEU",), opened_request.header.message_id)
    assert isinstance(answer.body, NoticeDecisionBody)
    assert answer.body.outcome.decision is ReviewDecision.REFUSED
