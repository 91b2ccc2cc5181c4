"""The demo's duty traffic and its books, without a broker: what is sent, answered, counted."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agents.ncb.adapter import NcbAdapter, Opened
from agents.sim.desk_books import DeskBooks
from agents.sim.desk_traffic import DeskTraffic, kind_of_record
from agents.sim.notice_traffic import NoticeTraffic, red_notice
from agents.sim.team_traffic import TeamTraffic
from brokers.records import OutboundRecord
from brokers.settings import Settings
from schemas.bodies import Body, MessageBody, NoticeActionBody, NoticeBody, RenewalPromptBody
from schemas.checks import (
    CheckAnswer,
    CheckRequest,
    ConsolidatedAnswer,
    DocumentStatus,
    DocumentType,
    HitConfirmation,
    HitConfirmationRequest,
    ItemResult,
    MultiCountryQuery,
    TravelDocumentItem,
    TravelDocumentRecord,
    Urgency,
)
from schemas.header import (
    HeaderFlag,
    Language,
    MessageType,
    Precedence,
    RoutingHeader,
    format_timestamp,
)
from schemas.journal import JournalEventModel, UnknownEvent, control_event_of
from schemas.notices import Notice, NoticeAction, NoticeState, RenewalPrompt
from schemas.registry import MemberRegistry, default_registry
from schemas.sealing import OpenedMessage, open_sealed, parse_envelope
from tests.unit.keyring import NCBS, small_keyring

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
SETTINGS = Settings()
WORLD = default_registry()
REGISTRY = MemberRegistry([WORLD.get(c) for c in NCBS])


def header(sender: str, kind: MessageType, *, flags: tuple[HeaderFlag, ...] = ()) -> RoutingHeader:
    return RoutingHeader(
        message_id=str(uuid.uuid4()),
        sender=sender,
        recipients=["FRA"],
        message_type=kind,
        precedence=Precedence.ROUTINE,
        created_at=NOW,
        language=Language.EN,
        trace_id="ab" * 16,
        flags=list(flags),
    )


def opened(sender: str, body: Body, *, flags: tuple[HeaderFlag, ...] = ()) -> Opened:
    return Opened(
        header(sender, MessageType(body.type), flags=flags), body, Precedence.ROUTINE, None
    )


def as_ccc(record: OutboundRecord) -> OpenedMessage:
    directory, ids = small_keyring()
    return open_sealed(
        parse_envelope(record.value, max_bytes=1 << 20),
        topic=SETTINGS.topics.inbound,
        key=record.key or b"",
        directory=directory,
        identity=ids["hub:lyon"],
    )


def document() -> TravelDocumentRecord:
    return TravelDocumentRecord(
        number="P1234567",
        issuing_country="FRA",
        document_type=DocumentType.PASSPORT,
        status=DocumentStatus.STOLEN,
        reported_on="2026-01-02",
        reporting_ncb="FRA",
    )


@pytest.fixture
def traffic(tmp_path: Path) -> DeskTraffic:
    directory, ids = small_keyring()
    adapters = {c: NcbAdapter(ids[c], directory, SETTINGS.topics) for c in NCBS}
    return DeskTraffic(
        ncbs=adapters,
        notices=NoticeTraffic(random.Random(7), registry=REGISTRY),
        teams=TeamTraffic(adapters, tmp_path, SETTINGS.topics, random.Random(7)),
        books=DeskBooks(),
        rng=random.Random(7),
        silence=0.0,
        renew_share=1.0,
    )


# --- what the traffic sends -------------------------------------------------------


def test_a_run_opens_with_a_red_notice_a_regional_alert_and_a_team_request(
    traffic: DeskTraffic,
) -> None:
    assert traffic.due(0.5, NOW) == []
    records = traffic.due(1.0, NOW)
    kinds = [kind_of_record(r) for r in records]
    assert kinds == ["notice-request", "notice-request", "team-request"]
    colours = [as_ccc(r).body.request.colour.value for r in records[:2]]  # type: ignore[union-attr]
    assert colours == ["red", "yellow"]
    assert traffic.books.sent == {"notice-request": 2, "team-request": 1}
    assert traffic.due(1.5, NOW) == []  # the opening is sent once


def test_notice_events_come_every_notice_every_seconds(traffic: DeskTraffic) -> None:
    traffic.due(1.0, NOW)
    before = sum(traffic.books.sent.values())
    traffic.due(traffic.notice_every * 4 + 0.1, NOW)  # four notice steps were due
    counted = sum(traffic.books.sent.values()) - before
    assert counted >= 1  # a step may send nothing (a recall not sent), never more than one each
    assert counted <= 4 + 1  # and a team step at most one request


def test_the_owner_confirms_a_hit_and_nobody_else_answers(traffic: DeskTraffic) -> None:
    request = HitConfirmationRequest(
        confirmation_id="conf-1",
        correlation_id="chk-1",
        asker="DEU",
        owner="FRA",
        record=document(),
        urgency=Urgency.URGENT,
        requested_at=NOW,
    )
    assert traffic.on_opened("DEU", opened("hub:lyon", request), NOW) == []
    [answer] = traffic.on_opened("FRA", opened("hub:lyon", request), NOW)
    message = as_ccc(answer)
    assert message.header.sender == "FRA"
    assert isinstance(message.body, HitConfirmation)
    assert message.body.confirmation_id == "conf-1"
    assert message.body.confirmed
    assert traffic.books.sent["hit-confirmation"] == 1


def test_a_prompted_requester_renews_its_notice(traffic: DeskTraffic) -> None:
    prompt = RenewalPrompt(
        notice_id="red-abc", requester="ITA", version=2, expires_at=NOW + timedelta(days=1)
    )
    body = RenewalPromptBody(prompt=prompt)
    assert traffic.on_opened("FRA", opened("hub:lyon", body), NOW) == []  # not FRA's notice
    [action] = traffic.on_opened("ITA", opened("hub:lyon", body), NOW)
    renewal = as_ccc(action).body
    assert isinstance(renewal, NoticeActionBody)
    assert (renewal.notice_id, renewal.action) == ("red-abc", NoticeAction.RENEW)


def test_a_bureau_board_follows_the_notices_it_opens(traffic: DeskTraffic) -> None:
    request = red_notice("ITA", "5b3c1f9e-6a2d-4e1f-9c3b-2d4e6f8a0b1c", random.Random(1))
    notice = Notice(
        notice_id="red-5b3c1f9e-6a2d-4e1f-9c3b-2d4e6f8a0b1c",
        request_id=request.request_id,
        requester="ITA",
        colour=request.colour,
        state=NoticeState.PUBLISHED,
        subject=request.subject,
        offence_category=request.offence_category,
        facts=request.facts,
        published_at=NOW,
        expires_at=NOW + timedelta(days=1800),
    )
    traffic.on_opened("FRA", opened("hub:lyon", NoticeBody(notice=notice)), NOW)
    assert set(traffic.boards["FRA"].view.in_force()) == {notice.notice_id}
    assert traffic.boards["DEU"].view.in_force() == {}


# --- the books --------------------------------------------------------------------


def journal(*events: dict[str, Any]) -> list[JournalEventModel | UnknownEvent]:
    """The typed events of these journal records (written by lyon at ``NOW``)."""
    stamp = format_timestamp(NOW)
    return [control_event_of({"hub": "hub:lyon", "time": stamp, **e}) for e in events]


def test_journal_events_count_once_whichever_hubs_wrote_them() -> None:
    requested = {
        "request_id": "q",
        "requester": "FRA",
        "sender": "FRA",
        "colour": "red",
        "region": None,
    }
    decided = {"request_id": "q", "requester": "FRA"}
    escalated = {
        "database": "sltd",
        "owner": "DEU",
        "hub_on_duty": "hub:lyon",
        "recipients": ["FRA"],
        "flag": "stolen-document-hit",
        "precedence": "FLASH",
    }
    confirmation = {"confirmation_id": "k-1", "owner": "DEU", "urgency": "urgent"}
    events = journal(
        {"event": "notice-requested", "notice_id": "red-1", **requested},
        {"event": "notice-requested", "notice_id": "red-1", **requested},  # the successor too
        {"event": "notice-requested", "notice_id": "red-2", **requested},
        {"event": "notice-decided", "notice_id": "red-1", "decision": "published", **decided},
        {"event": "notice-decided", "notice_id": "red-2", "decision": "refused", **decided},
        {"event": "notice-broadcast", "notice_id": "red-1", "version": 1, "state": "published",
         "recipients": 196, "region": None},
        {"event": "notice-broadcast", "notice_id": "red-1", "version": 1, "state": "published",
         "recipients": 196, "region": None},
        {"event": "notice-broadcast", "notice_id": "red-1", "version": 2, "state": "cancelled",
         "recipients": 196, "region": None},
        {"event": "diffusion-recorded", "diffusion_id": "d-1", "sender": "FRA", "recipients": 3,
         "reached": ["DEU"]},
        {"event": "diffusion-recalled", "diffusion_id": "d-1", "reason": "error", "by": "FRA",
         "sender": "FRA", "recipients": 3},
        {"event": "check-hit-escalated", "correlation_id": "c-1", "item_index": 3, **escalated},
        {"event": "check-hit-escalated", "correlation_id": "c-1", "item_index": 3, **escalated},
        {"event": "check-hit-escalated", "correlation_id": "c-1", "item_index": 5, **escalated},
        {"event": "hit-confirmation-requested", "correlation_id": "c-1",
         "deadline": format_timestamp(NOW), **confirmation},
        {"event": "hit-confirmation-breach", "asker": "FRA", "late_seconds": 1.0,
         "hub_on_duty": "hub:lyon", **confirmation},
        {"event": "an-event-added-later", "unit": "intake"},  # unknown: skipped
    )  # fmt: skip
    summary = DeskBooks().summary(events)
    notices = summary["notices"]
    assert (notices["requested"], notices["published"], notices["refused"]) == (2, 1, 1)
    assert notices["broadcasts"] == 2
    assert notices["broadcast_recipients"] == 392
    assert notices["states"] == {"published": 1, "cancelled": 1}
    assert summary["diffusions"]["recorded"] == summary["diffusions"]["recalled"] == 1
    checks = summary["checks"]
    assert checks["escalations"] == 2
    assert (checks["confirmations_requested"], checks["breaches"], checks["confirmed"]) == (1, 1, 0)
    assert summary["teams"]["requested"] == 0


def test_answers_hits_escalations_and_silences_are_counted_as_opened() -> None:
    books = DeskBooks()
    item = TravelDocumentItem(number="P1234567", issuing_country="FRA")
    books.on_sent(
        "check-request", NOW, CheckRequest(correlation_id="c-1", asker="DEU", items=(item, item))
    )
    answer = CheckAnswer(
        correlation_id="c-1",
        asker="DEU",
        results=(
            ItemResult(index=0, item=item, hits=(document(),)),
            ItemResult(index=1, item=item),
        ),
        answered_at=NOW,
    )
    late = NOW + timedelta(milliseconds=250)
    first = opened("hub:lyon", answer)
    books.on_opened("DEU", first.header, answer, late)
    books.on_opened("DEU", first.header, answer, late + timedelta(seconds=5))  # a second copy
    flash = opened("hub:lyon", MessageBody(subject="FLASH", text="{}"),
                   flags=(HeaderFlag.STOLEN_DOCUMENT_HIT,))  # fmt: skip
    for recipient in ("DEU", "FRA"):
        books.on_opened(recipient, flash.header, flash.body, late)
    plain = opened("ITA", MessageBody(subject="hello", text="hi"))
    books.on_opened("FRA", plain.header, plain.body, late)
    consolidated = ConsolidatedAnswer(
        query_id="q-1", asker="FRA", answers={"DEU": "no"}, silent=("ESP", "ITA"),
        consolidated_at=NOW,
    )  # fmt: skip
    books.on_opened("FRA", opened("hub:lyon", consolidated).header, consolidated, late)

    checks = books.summary([])["checks"]
    assert (checks["asked"], checks["items_asked"], checks["answered"], checks["hits"]) == (
        1, 2, 1, 1,
    )  # fmt: skip
    assert checks["answer_ms"] == {"p50": 250.0, "p99": 250.0}
    assert checks["escalations_opened"] == 2
    assert checks["multi_country"]["consolidated"] == 1
    assert checks["multi_country"]["not_replied"] == 2


def test_a_drain_waits_for_every_answer_and_every_consolidation() -> None:
    books = DeskBooks()
    item = TravelDocumentItem(number="P1", issuing_country="FRA")
    books.on_sent(
        "check-request", NOW, CheckRequest(correlation_id="c-1", asker="DEU", items=(item,))
    )
    query = MultiCountryQuery(query_id="q-1", asker="FRA", targets=("DEU",), question="known?")
    books.on_sent("multi-country-query", NOW, query)
    assert not books.settled()  # the check is unanswered
    answer = CheckAnswer(
        correlation_id="c-1",
        asker="DEU",
        results=(ItemResult(index=0, item=item),),
        answered_at=NOW,
    )
    books.on_opened("DEU", opened("hub:lyon", answer).header, answer, NOW)
    assert not books.settled()  # the query is not consolidated yet (a failover keeps it)
    consolidated = ConsolidatedAnswer(
        query_id="q-1", asker="FRA", answers={}, silent=("DEU",), consolidated_at=NOW
    )
    books.on_opened("FRA", opened("hub:lyon", consolidated).header, consolidated, NOW)
    assert books.settled()
