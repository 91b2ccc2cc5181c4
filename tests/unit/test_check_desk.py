"""The checks desk (answers, FLASH escalations, confirmation clocks, multi-country windows)
and the nominal feed from the notices topic, over small real databases. The desk's effects
are compared; the hub's shell carries them out (folds, sealed bodies for ``ccc``)."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from brokers.records import ReceivedRecord
from brokers.settings import Settings
from schemas.bodies import MessageBody
from schemas.checks import (
    CheckAnswer,
    CheckRequest,
    ConsolidatedAnswer,
    HitConfirmation,
    HitConfirmationRequest,
    MultiCountryQuery,
    MultiCountryReply,
    Person,
    PersonItem,
    TravelDocumentItem,
)
from schemas.header import HeaderFlag, Language, MessageType, Precedence, RoutingHeader
from schemas.keys import Directory, PrivateIdentity
from schemas.notices import Notice, NoticeColour, NoticeState, PersonSubject
from schemas.sealing import OpenedMessage
from streams.core.roster import DutyRoster
from streams.databases import Databases, open_databases
from streams.databases import sltd as sltd_module
from streams.databases import smv as smv_module
from streams.databases import works_of_art as woa_module
from streams.databases.nominal import NominalIndex
from streams.desks.check_desk import CheckDesk
from streams.desks.effects import Effect, Journal, Send
from streams.desks.hub_state import HubState
from streams.desks.nominal_feed import FeedOutcome, NominalFeed, notice_record
from streams.desks.shell import DeskShell

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # Lyon on duty
DUPONT = Person(family_name="Dupont", forenames="Jean", date_of_birth="1970-01-31")
Keyring = tuple[Directory, dict[str, PrivateIdentity]]


def at(seconds: float) -> datetime:
    return NOON + timedelta(seconds=seconds)


def red_notice(n: int, *, version: int = 1, state: NoticeState = NoticeState.PUBLISHED) -> Notice:
    return Notice(
        notice_id=f"red-2026-{n:06d}", request_id="9b0f3c52-8a47-4f5e-9b1f-24a7c0c1e247",
        colour=NoticeColour.RED, state=state, requester="BEL",
        subject=PersonSubject(family_name="Dupont", forenames="Jean", date_of_birth="1970-01-31"),
        facts="f", version=version, published_at=NOON,
    )  # fmt: skip


@pytest.fixture(scope="module")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    opened = open_databases(
        tmp_path_factory.mktemp("data"), sltd_size=10_000, smv_size=2_000, works_of_art_size=500
    )
    yield opened
    opened.close()


def hub_state(keyring: Keyring) -> HubState:
    directory, identities = keyring
    return HubState(
        settings=Settings(clock_scale=60.0),
        site="lyon",
        bootstrap="localhost:9092",
        directory=directory,
        identity=identities["hub:lyon"],
        roster=DutyRoster(),
        clock=lambda: NOON,
        random_bytes=os.urandom,
    )


class Checks:
    """A checks desk on hub:lyon whose effects the hub's shell carries out."""

    def __init__(self, keyring: Keyring, databases: Databases) -> None:
        self.shell = DeskShell(hub_state(keyring))
        self.desk = CheckDesk(databases)

    def handle(self, opened: OpenedMessage, now: datetime) -> list[Effect]:
        return self._carry(self.desk.handle(self.shell.context(now), opened), now)

    def tick(self, now: datetime) -> list[Effect]:
        return self._carry(self.desk.tick(self.shell.context(now)), now)

    def _carry(self, effects: list[Effect], now: datetime) -> list[Effect]:
        self.shell.carry_out(effects, now)
        return effects


def to_ccc(sender: str, body: Any) -> OpenedMessage:
    header = RoutingHeader(
        message_id="5a0f3c52-8a47-4f5e-9b1f-24a7c0c1e247",
        sender=sender,
        recipients=["ccc"],
        message_type=MessageType(body.type),
        precedence=Precedence.ROUTINE,
        created_at=NOON,
        language=Language.EN,
        trace_id="0" * 32,
    )
    return OpenedMessage(header, body)


def events(effects: list[Effect], name: str) -> list[dict[str, Any]]:
    """The journal events ``name`` among ``effects``, as written on ``i247.control``."""
    found = [json.loads(e.event.to_json_bytes()) for e in effects if isinstance(e, Journal)]
    return [e for e in found if e["event"] == name]


def sent_to(effects: list[Effect], participant: str) -> list[Send]:
    return [e for e in effects if isinstance(e, Send) and participant in e.to]


def desk_with_hits(keyring: Keyring, databases: Databases) -> tuple[Checks, CheckRequest, str]:
    databases.nominal.upsert("red-2026-000001", DUPONT, issuing_ncb="BEL")
    document = databases.sltd.sample(random.Random(3))
    request = CheckRequest(
        correlation_id="flight-AF1234",
        asker="FRA",
        items=(
            PersonItem(family_name="Martin", forenames="Paul", date_of_birth="1980-02-02"),
            TravelDocumentItem(number=document.number, issuing_country=document.issuing_country),
            PersonItem(family_name="Dupont", forenames="Jean", date_of_birth="1970-01-31"),
        ),
    )
    return Checks(keyring, databases), request, document.owner


def test_a_batched_check_answers_the_asker_and_escalates_each_hit_flash(
    keyring: Keyring, databases: Databases
) -> None:
    desk, request, document_owner = desk_with_hits(keyring, databases)
    out = desk.handle(to_ccc("FRA", request), NOON)

    answers = sent_to(out, "FRA")
    answer = next(a for a in answers if isinstance(a.body, CheckAnswer))
    assert answer.correlation_id == "flight-AF1234"
    assert isinstance(answer.body, CheckAnswer)
    assert [r.hit for r in answer.body.results] == [False, True, True]

    flashes = [a for a in answers if isinstance(a.body, MessageBody)]
    assert {a.precedence for a in flashes} == {Precedence.FLASH}
    assert {f for a in flashes for f in a.flags} == {
        HeaderFlag.STOLEN_DOCUMENT_HIT,
        HeaderFlag.WANTED_PERSON_HIT,
    }
    for owner, flag in ((document_owner, "stolen-document-hit"), ("BEL", "wanted-person-hit")):
        owner_mail = sent_to(out, owner)
        assert any(flag in [f.value for f in m.flags] for m in owner_mail)
        assert any(isinstance(m.body, HitConfirmationRequest) for m in owner_mail)

    escalated = events(out, "check-hit-escalated")
    assert sorted(e["flag"] for e in escalated) == ["stolen-document-hit", "wanted-person-hit"]
    assert {e["hub_on_duty"] for e in escalated} == {"hub:lyon"}
    (answered,) = events(out, "check-answered")
    assert (answered["items"], answered["hits"], answered["escalations"]) == (3, 2, 2)
    assert len(events(out, "hit-confirmation-requested")) == 2


def test_a_confirmation_in_time_closes_the_clock(keyring: Keyring, databases: Databases) -> None:
    desk, request, _ = desk_with_hits(keyring, databases)
    out = desk.handle(to_ccc("FRA", request), NOON)
    (asked,) = [e for e in events(out, "hit-confirmation-requested") if e["owner"] == "BEL"]
    confirmation = HitConfirmation(
        confirmation_id=asked["confirmation_id"], owner="BEL", confirmed=True, confirmed_at=at(1)
    )
    (confirmed,) = events(desk.handle(to_ccc("BEL", confirmation), at(1)), "hit-confirmed")
    assert confirmed["in_time"] is True
    later = desk.tick(at(3600))  # scale 60: urgent deadline 10 s
    owners = {e["owner"] for e in events(later, "hit-confirmation-breach")}
    assert "BEL" not in owners
    assert len(owners) == 1


def test_an_unanswered_confirmation_is_reminded_then_escalated(
    keyring: Keyring, databases: Databases
) -> None:
    desk, request, owner = desk_with_hits(keyring, databases)
    desk.handle(to_ccc("FRA", request), NOON)
    assert desk.tick(at(4)) == []
    reminders = desk.tick(at(5))  # half of 10 s
    assert {e["owner"] for e in events(reminders, "hit-confirmation-reminder")} == {"BEL", owner}
    resent = sent_to(reminders, "BEL")
    assert [type(m.body) for m in resent] == [HitConfirmationRequest]
    assert resent[0].body.owner == "BEL"  # type: ignore[union-attr]
    breaches = desk.tick(at(11.5))  # past the deadline and the journal's settle (1 s)
    assert {e["owner"] for e in events(breaches, "hit-confirmation-breach")} == {"BEL", owner}
    told = sent_to(breaches, "FRA")
    assert all(isinstance(m.body, MessageBody) for m in told)
    assert len(told) == 2
    assert desk.tick(at(60)) == []


def test_a_multi_country_query_names_the_silent_target(
    keyring: Keyring, databases: Databases
) -> None:
    desk = Checks(keyring, databases)
    query = MultiCountryQuery(
        query_id="q-1", asker="FRA", targets=("DEU", "ITA"), question="Known to you?"
    )
    out = desk.handle(to_ccc("FRA", query), NOON)
    assert sent_to(out, "DEU") == [Send(("DEU", "ITA"), query, correlation_id="q-1")]
    reply = MultiCountryReply(query_id="q-1", responder="DEU", answer="No record", replied_at=NOON)
    (counted,) = events(desk.handle(to_ccc("DEU", reply), at(0.5)), "multi-country-reply")
    assert counted["outcome"] == "accepted"
    assert desk.tick(at(0.9)) == []  # scale 60: a 1 s window
    assert desk.tick(at(1.9)) == []  # the window has closed; the journal's lag is allowed
    due = desk.tick(at(2.1))  # past the window and the settle (1 s)
    (consolidated,) = sent_to(due, "FRA")
    assert isinstance(consolidated.body, ConsolidatedAnswer)
    assert consolidated.body.answers == {"DEU": "No record"}
    assert consolidated.body.silent == ("ITA",)
    (event,) = events(due, "multi-country-consolidated")
    assert event["silent"] == ["ITA"]


@pytest.mark.parametrize(
    ("sender", "body"),
    [
        ("DEU", CheckRequest(correlation_id="c", asker="FRA", items=(PersonItem(
            family_name="A", forenames="B"),))),
        ("DEU", HitConfirmation(confirmation_id="x", owner="BEL", confirmed=True,
                                confirmed_at=NOON)),
        ("ITA", MultiCountryReply(query_id="q", responder="DEU", answer="a", replied_at=NOON)),
    ],
)  # fmt: skip
def test_a_sender_speaking_for_someone_else_is_refused(
    keyring: Keyring, databases: Databases, sender: str, body: Any
) -> None:
    out = Checks(keyring, databases).handle(to_ccc(sender, body), NOON)
    assert [type(e) for e in out] == [Journal]
    assert [e["sender"] for e in events(out, "check-desk-refused")] == [sender]


def test_the_nominal_feed_follows_the_newest_version_of_each_red_notice(
    keyring: Keyring, databases: Databases
) -> None:
    directory, identities = keyring
    feed_index = NominalIndex()
    feed = NominalFeed(
        feed_index, identity=identities["hub:singapore"], directory=directory, max_bytes=1 << 20
    )

    def record(notice: Notice) -> ReceivedRecord:
        out = notice_record(
            notice,
            ["BEL"],
            hub=identities["hub:lyon"],
            directory=directory,
            topics=Settings().topics,
            now=NOON,
            random_bytes=os.urandom,
        )
        return ReceivedRecord(out.topic, 0, 0, 0, out.key, out.value, out.headers)

    published = record(red_notice(1))
    cancelled = record(red_notice(1, version=2, state=NoticeState.CANCELLED))
    assert feed.apply(published, NOON) is FeedOutcome.UPSERTED
    assert [r.issuing_ncb for r in feed_index.lookup("jean DUPONT")] == ["BEL"]
    assert feed.apply(cancelled, NOON) is FeedOutcome.REMOVED
    assert feed.apply(published, NOON) is FeedOutcome.STALE
    assert feed_index.lookup("Jean Dupont") == ()
    assert feed.apply(record(red_notice(2)), NOON) is FeedOutcome.UPSERTED
    tombstone = ReceivedRecord("t.notices", 0, 9, 0, b"red-2026-000002", b"")
    assert feed.apply(tombstone, NOON) is FeedOutcome.REMOVED
    garbage = ReceivedRecord("t.notices", 0, 10, 0, b"k", b"not an envelope")
    assert feed.apply(garbage, NOON) is FeedOutcome.SKIPPED
    assert len(feed_index) == 0


def test_a_notice_the_hub_cannot_open_is_skipped(keyring: Keyring) -> None:
    directory, identities = keyring
    out = notice_record(
        red_notice(3),
        ["BEL"],
        hub=identities["hub:lyon"],
        directory=directory,
        topics=Settings().topics,
        now=NOON,
        random_bytes=os.urandom,
    )
    moved = ReceivedRecord(out.topic, 0, 0, 0, b"another-key", out.value, ())  # AD mismatch
    feed = NominalFeed(
        NominalIndex(), identity=identities["hub:lyon"], directory=directory, max_bytes=1 << 20
    )
    assert feed.apply(moved, NOON) is FeedOutcome.SKIPPED
    assert len(feed.index) == 0


def test_settings_full_sizes_are_the_databases_defaults() -> None:
    assert Settings().database_sizes == {
        "sltd": sltd_module.DEFAULT_SIZE,
        "smv": smv_module.DEFAULT_SIZE,
        "works_of_art": woa_module.DEFAULT_SIZE,
    }
    assert Settings(db_scale=0.01).database_sizes["sltd"] == 10_000
