"""The stolen-vehicle desk: a report reaches the teams whose area it concerns, and no one else."""

from __future__ import annotations

from datetime import timedelta

import pytest

from schemas.checks import StolenVehicleReport, StolenVehicleUpdate, VehicleRecord
from schemas.header import MessageType, Precedence
from schemas.journal import VehicleCirculated, VehicleReportRefused
from schemas.keys import Directory, generate_identity
from schemas.registry import Region
from schemas.sealing import OpenedMessage
from schemas.teams import DeploymentState, Place
from streams.desks.effects import Effect, Journal, Send
from streams.desks.team_registry import TeamRegistry
from streams.desks.vehicle_desk import VehicleDesk, vehicle_concern
from tests.unit.desk_rig import HUB, desk_context
from tests.unit.factories import make_header
from tests.unit.keyring import small_keyring
from tests.unit.team_factories import NOW, make_deployment, make_request, registry

TEAM = "team:imest-fra-paris-20260726"
LATER = NOW + timedelta(seconds=1)


def vehicle(registered: str, reporter: str) -> VehicleRecord:
    return VehicleRecord(
        vin="1M8GDM9AXKP042788",
        plate="AB-123-CD",
        registration_country=registered,
        make="Renault",
        model="Clio",
        colour="grey",
        reported_on="2026-06-30",
        reporting_ncb=reporter,
    )


@pytest.fixture
def directory() -> Directory:
    directory, _ = small_keyring()
    return directory.with_identities(
        [generate_identity(TEAM).public(), generate_identity("BRA").public()]
    )


@pytest.fixture
def desk() -> VehicleDesk:
    teams = TeamRegistry()
    request = make_request(place=Place(country="FRA", name="Paris"), starts_at=NOW)
    teams.record(make_deployment(DeploymentState.DEPLOYED, request, team=TEAM))
    return VehicleDesk(teams)


def report(sender: str, record: VehicleRecord) -> OpenedMessage:
    header = make_header(
        sender=sender,
        recipients=["ccc"],
        message_type=MessageType.STOLEN_VEHICLE_REPORT,
        created_at=NOW,
    )
    return OpenedMessage(header, StolenVehicleReport(record=record, reported_at=NOW))


def handle(desk: VehicleDesk, directory: Directory, message: OpenedMessage) -> list[Effect]:
    return desk.handle(desk_context(LATER, directory), message)


@pytest.mark.parametrize(
    ("registered", "reporter", "reaches_team"),
    [
        ("FRA", "FRA", True),  # the team's host country
        ("DEU", "DEU", True),  # same region (Europe)
        ("ITA", "ESP", True),
        ("BRA", "BRA", False),  # the Americas
    ],
)
def test_a_report_reaches_the_team_only_where_it_works(
    desk: VehicleDesk, directory: Directory, registered: str, reporter: str, reaches_team: bool
) -> None:
    message = report(reporter, vehicle(registered, reporter))
    message_id = message.header.message_id
    teams = (TEAM,) if reaches_team else ()
    update = StolenVehicleUpdate(
        record=vehicle(registered, reporter), reported_at=NOW, circulated_at=LATER
    )
    circulated = VehicleCirculated(
        hub=HUB,
        time=LATER,
        message_id=message_id,
        vin="1M8GDM9AXKP042788",
        reporter=reporter,
        registration_country=registered,
        teams=teams,
        unreachable=(),
    )
    sent: list[Effect] = (
        [Send(teams, update, Precedence.PRIORITY, correlation_id=message_id)] if teams else []
    )
    assert handle(desk, directory, message) == [*sent, Journal(circulated, message_id)]


def test_a_team_whose_keys_the_hub_lacks_is_named_unreachable(desk: VehicleDesk) -> None:
    directory, _ = small_keyring()
    message = report("FRA", vehicle("FRA", "FRA"))
    [journal] = handle(desk, directory, message)
    assert isinstance(journal, Journal)
    assert isinstance(journal.event, VehicleCirculated)
    assert (journal.event.teams, journal.event.unreachable) == ((), (TEAM,))


def test_a_report_for_another_bureaus_record_is_refused(
    desk: VehicleDesk, directory: Directory
) -> None:
    message = report("DEU", vehicle("FRA", "FRA"))
    message_id = message.header.message_id
    refused = VehicleReportRefused(
        hub=HUB,
        time=LATER,
        message_id=message_id,
        sender="DEU",
        reason="reporting NCB FRA is not the sender",
    )
    assert handle(desk, directory, message) == [Journal(refused, message_id)]


def test_the_concern_names_the_region_and_both_countries() -> None:
    concern = vehicle_concern(
        StolenVehicleReport(record=vehicle("ARG", "BRA"), reported_at=NOW), registry()
    )
    assert concern.region is Region.AMERICAS
    assert concern.countries == ("ARG", "BRA")
