"""Database checks: answers and FLASH escalations, hit confirmations, multi-country replies,
IMEST screening traffic."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice

import pytest

from agents.screening import arriving_travellers
from schemas.checks import (
    ArtworkItem,
    CheckRequest,
    Database,
    DocumentStatus,
    DocumentType,
    HitConfirmation,
    HitConfirmationRequest,
    MultiCountryQuery,
    MultiCountryReply,
    Person,
    PersonItem,
    TravelDocumentItem,
    TravelDocumentRecord,
    Urgency,
    VehicleItem,
)
from schemas.header import HeaderFlag, Precedence
from schemas.participants import hub_id
from streams.checks import answer_check
from streams.databases import Databases, open_databases
from streams.hit_confirmation import Breach, HitConfirmations, Reminder
from streams.multi_country import MultiCountryCollector, ReplyOutcome
from streams.roster import DutyRoster

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ROSTER = DutyRoster()


def at(seconds: float) -> datetime:
    return NOON + timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    opened = open_databases(
        tmp_path_factory.mktemp("data"),
        seed=5,
        sltd_size=10_000,
        smv_size=2_000,
        works_of_art_size=2_000,
    )
    opened.nominal.upsert(
        "2026/RED/1",
        Person(family_name="Dupont", forenames="Jean", date_of_birth="1970-01-31"),
        issuing_ncb="BEL",
    )
    yield opened
    opened.close()


def stolen_document(databases: Databases, owner_other_than: str) -> TravelDocumentRecord:
    rng = random.Random(0)
    while (record := databases.sltd.sample(rng)).reporting_ncb == owner_other_than:
        pass
    return record


# --- answer_check ---


def test_a_batch_with_a_document_hit_and_a_red_notice_hit_escalates_both_flash(
    databases: Databases,
) -> None:
    document = stolen_document(databases, owner_other_than="FRA")
    request = CheckRequest(
        correlation_id="flight-AF1234",
        asker="FRA",
        items=(
            PersonItem(family_name="DUPONT", forenames="jean", date_of_birth="1970-01-31"),
            TravelDocumentItem(number=document.number, issuing_country=document.issuing_country),
            PersonItem(family_name="Martin", forenames="Claire"),
            TravelDocumentItem(number="QQ0000000", issuing_country="FRA"),
        ),
    )
    outcome = answer_check(request, databases, NOON, roster=ROSTER)
    on_duty = hub_id(ROSTER.hub_on_duty(NOON))

    results = outcome.answer.results
    assert [r.hit for r in results] == [True, True, False, False]
    assert results[0].hits[0].database is Database.NOMINAL
    assert results[1].hits == (document,)
    assert outcome.answer.answered_at == NOON
    assert outcome.answer.correlation_id == "flight-AF1234"

    wanted, stolen = outcome.escalations
    assert wanted.recipients == (on_duty, "FRA", "BEL")
    assert wanted.flag is HeaderFlag.WANTED_PERSON_HIT
    assert stolen.recipients == (on_duty, "FRA", document.reporting_ncb)
    assert stolen.flag is HeaderFlag.STOLEN_DOCUMENT_HIT
    assert {e.precedence for e in outcome.escalations} == {Precedence.FLASH}
    assert [e.item_index for e in outcome.escalations] == [0, 1]

    owners = [(c.owner, c.urgency) for c in outcome.confirmations]
    assert owners == [("BEL", Urgency.URGENT), (document.reporting_ncb, Urgency.URGENT)]


def test_an_asker_who_owns_the_record_is_named_once(databases: Databases) -> None:
    request = CheckRequest(
        correlation_id="c",
        asker="BEL",
        items=(PersonItem(family_name="Dupont", forenames="Jean"),),
    )
    (escalation,) = answer_check(request, databases, NOON, roster=ROSTER).escalations
    assert escalation.recipients == (hub_id(ROSTER.hub_on_duty(NOON)), "BEL")


def test_vehicle_and_artwork_hits_are_answered_without_escalation(databases: Databases) -> None:
    vehicle = databases.smv.sample(random.Random(1))
    work = databases.works_of_art.sample(random.Random(1))
    request = CheckRequest(
        correlation_id="c",
        asker="team:imest-2026-01",
        items=(
            VehicleItem(vin=vehicle.vin),
            VehicleItem(plate=vehicle.plate, country=vehicle.registration_country),
            ArtworkItem(keywords=(work.title, work.artist)),
        ),
    )
    outcome = answer_check(request, databases, NOON, roster=ROSTER)
    assert outcome.answer.results[0].hits == (vehicle,)
    assert vehicle in outcome.answer.results[1].hits
    assert work in outcome.answer.results[2].hits
    assert outcome.escalations == ()
    assert {c.urgency for c in outcome.confirmations} == {Urgency.ROUTINE}


def test_the_same_hit_gets_the_same_confirmation_id(databases: Databases) -> None:
    request = CheckRequest(
        correlation_id="c", asker="FRA", items=(PersonItem(family_name="Dupont", forenames="Jean"),)
    )
    first = answer_check(request, databases, NOON, roster=ROSTER).confirmations
    again = answer_check(request, databases, at(5), roster=ROSTER).confirmations
    assert first[0].confirmation_id == again[0].confirmation_id


# --- hit confirmation ---


def confirmation_request(urgency: Urgency, cid: str = "h1") -> HitConfirmationRequest:
    return HitConfirmationRequest(
        confirmation_id=cid,
        correlation_id="c",
        asker="FRA",
        owner="ITA",
        record=TravelDocumentRecord(
            number="AA1234567",
            issuing_country="ITA",
            document_type=DocumentType.PASSPORT,
            status=DocumentStatus.STOLEN,
            reported_on="2024-01-01",
            reporting_ncb="ITA",
        ),
        urgency=urgency,
        requested_at=NOON,
    )


def confirmation(seconds: float, owner: str = "ITA", cid: str = "h1") -> HitConfirmation:
    return HitConfirmation(
        confirmation_id=cid, owner=owner, confirmed=True, confirmed_at=at(seconds)
    )


@pytest.mark.parametrize(
    ("urgency", "scale", "half", "deadline"),
    [
        (Urgency.URGENT, 1.0, 300, 600),
        (Urgency.ROUTINE, 1.0, 1800, 3600),
        (Urgency.URGENT, 60.0, 5, 10),
        (Urgency.ROUTINE, 60.0, 30, 60),
    ],
)
def test_an_unconfirmed_hit_is_reminded_at_half_time_and_breached_after_the_deadline(
    urgency: Urgency, scale: float, half: float, deadline: float
) -> None:
    exchanges = HitConfirmations(scale=scale)
    exchanges.open(confirmation_request(urgency), NOON)
    assert exchanges.due(at(half - 0.001)) == []
    (reminder,) = exchanges.due(at(half))
    assert isinstance(reminder, Reminder)
    assert reminder.owner == "ITA"
    assert exchanges.due(at(deadline)) == []  # a confirmation at the deadline is in time
    (breach,) = exchanges.due(at(deadline + 1))
    assert isinstance(breach, Breach)
    assert (breach.owner, breach.asker, breach.late_seconds) == ("ITA", "FRA", 1.0)
    assert exchanges.due(at(deadline * 10)) == []
    assert exchanges.open_count == 0


def test_a_confirmation_before_half_time_owes_nothing() -> None:
    exchanges = HitConfirmations(scale=60)
    exchanges.open(confirmation_request(Urgency.URGENT), NOON)
    assert exchanges.confirm(confirmation(5), at(5)) is True  # exactly at half time
    assert exchanges.due(at(100)) == []


def test_a_confirmation_after_half_time_stops_the_breach_but_not_the_reminder() -> None:
    exchanges = HitConfirmations(scale=60)
    exchanges.open(confirmation_request(Urgency.URGENT), NOON)
    assert exchanges.confirm(confirmation(7), at(7)) is True
    owed = exchanges.due(at(100))
    assert [type(o) for o in owed] == [Reminder]


def test_one_late_poll_returns_the_reminder_then_the_breach() -> None:
    exchanges = HitConfirmations(scale=60)
    exchanges.open(confirmation_request(Urgency.URGENT), NOON)
    assert [type(o) for o in exchanges.due(at(100))] == [Reminder, Breach]


@pytest.mark.parametrize(
    ("owner", "cid", "seconds"),
    [("ITA", "h1", 11), ("DEU", "h1", 3), ("ITA", "other", 3)],
    ids=["late", "not-the-owner", "unknown"],
)
def test_a_late_foreign_or_unknown_confirmation_changes_nothing(
    owner: str, cid: str, seconds: float
) -> None:
    exchanges = HitConfirmations(scale=60)
    exchanges.open(confirmation_request(Urgency.URGENT), NOON)
    assert exchanges.confirm(confirmation(seconds, owner, cid), at(seconds)) is False
    assert [type(o) for o in exchanges.due(at(100))] == [Reminder, Breach]


# --- multi-country queries ---


def query(window: float = 60.0) -> MultiCountryQuery:
    return MultiCountryQuery(
        query_id="q1", asker="ESP", targets=("DEU", "FRA", "ITA"), question="Known?",
        window_seconds=window,
    )  # fmt: skip


def reply(responder: str, seconds: float) -> MultiCountryReply:
    return MultiCountryReply(
        query_id="q1", responder=responder, answer=f"{responder}: no trace", replied_at=at(seconds)
    )


def test_when_everyone_replies_early_the_answer_comes_at_once_and_only_once() -> None:
    collector = MultiCountryCollector()
    collector.open(query(), NOON)
    for responder, seconds in (("FRA", 5), ("DEU", 20), ("ITA", 40)):
        assert collector.add_reply(reply(responder, seconds), at(seconds)) is ReplyOutcome.ACCEPTED
    (answer,) = collector.due(at(41))
    assert answer.complete
    assert sorted(answer.answers) == ["DEU", "FRA", "ITA"]
    assert answer.consolidated_at == at(40)
    assert collector.due(at(1000)) == []


def test_targets_that_never_reply_are_named_when_the_window_ends() -> None:
    collector = MultiCountryCollector(scale=2)  # a 30 s window
    collector.open(query(), NOON)
    collector.add_reply(reply("FRA", 5), at(5))
    assert collector.due(at(30)) == []  # a reply at the window's end would still count
    (answer,) = collector.due(at(31))
    assert answer.silent == ("DEU", "ITA")
    assert answer.answers == {"FRA": "FRA: no trace"}
    assert answer.consolidated_at == at(30)
    assert answer.asker == "ESP"


def test_a_reply_after_consolidation_is_late_not_lost() -> None:
    collector = MultiCountryCollector()
    collector.open(query(), NOON)
    collector.add_reply(reply("FRA", 5), at(5))
    collector.due(at(61))
    assert collector.add_reply(reply("ITA", 65), at(65)) is ReplyOutcome.LATE
    assert collector.due(at(70)) == []


def test_a_reply_after_the_window_counts_as_late_even_before_the_poll() -> None:
    collector = MultiCountryCollector()
    collector.open(query(), NOON)
    assert collector.add_reply(reply("ITA", 61), at(61)) is ReplyOutcome.LATE
    (answer,) = collector.due(at(62))
    assert answer.silent == ("DEU", "FRA", "ITA")


@pytest.mark.parametrize(
    ("responder", "query_id", "expected"),
    [
        ("GBR", "q1", ReplyOutcome.NOT_TARGETED),
        ("FRA", "q9", ReplyOutcome.UNKNOWN),
    ],
)
def test_replies_from_strangers_or_to_unknown_queries_are_refused(
    responder: str, query_id: str, expected: ReplyOutcome
) -> None:
    collector = MultiCountryCollector()
    collector.open(query(), NOON)
    stray = reply(responder, 1).model_copy(update={"query_id": query_id})
    assert collector.add_reply(stray, at(1)) is expected


def test_a_second_reply_from_the_same_target_does_not_replace_the_first() -> None:
    collector = MultiCountryCollector()
    collector.open(query(), NOON)
    collector.add_reply(reply("FRA", 1), at(1))
    second = reply("FRA", 2).model_copy(update={"answer": "changed"})
    assert collector.add_reply(second, at(2)) is ReplyOutcome.DUPLICATE
    (answer,) = collector.due(at(61))
    assert answer.answers["FRA"] == "FRA: no trace"


# --- IMEST screening traffic ---


def test_screening_traffic_hits_exactly_where_it_says(databases: Databases) -> None:
    flights = list(islice(arriving_travellers(random.Random(7), 50.0, 0.05, databases), 3))
    offsets = [flight.offset for flight in flights]
    assert offsets == sorted(offsets)
    assert sum(len(f.expected_hits) for f in flights) > 0
    for flight in flights:
        answer = answer_check(flight.request, databases, NOON, roster=ROSTER).answer
        assert [r.index for r in answer.results if r.hit] == list(flight.expected_hits)


def test_screening_traffic_is_deterministic(databases: Databases) -> None:
    def first_flight(seed: int) -> CheckRequest:
        return next(arriving_travellers(random.Random(seed), 50.0, 0.05, databases)).request

    assert first_flight(1) == first_flight(1)
    assert first_flight(1) != first_flight(2)
