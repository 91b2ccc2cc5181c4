"""Database checks: answers and FLASH escalations, hit confirmations, multi-country replies,
IMEST screening traffic."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice

import pytest

from agents.sim.screening import arriving_travellers
from schemas.checks import (
    ArtworkItem,
    CheckRequest,
    Database,
    Person,
    PersonItem,
    TravelDocumentItem,
    TravelDocumentRecord,
    Urgency,
    VehicleItem,
)
from schemas.header import HeaderFlag, Precedence
from schemas.participants import hub_id
from streams.core.checks import answer_check
from streams.core.roster import DutyRoster
from streams.databases import Databases, open_databases

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
