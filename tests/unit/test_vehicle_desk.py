"""The stolen-vehicle desk: a report reaches the teams whose area it concerns, and no one else."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from agents.ncb import NcbAdapter
from brokers.records import OutboundRecord, ReceivedRecord
from brokers.settings import Settings
from schemas.checks import StolenVehicleReport, StolenVehicleUpdate, VehicleRecord
from schemas.keys import generate_identity
from schemas.registry import Region
from schemas.sealing import open_sealed, parse_envelope
from schemas.teams import DeploymentState, Place
from streams.hub_state import HubState
from streams.roster import DutyRoster
from streams.team_registry import TeamRegistry
from streams.vehicle_desk import VehicleDesk, vehicle_concern
from tests.unit.keyring import small_keyring
from tests.unit.team_factories import NOW, make_deployment, make_request, registry

TEAM = "team:imest-fra-paris-20260726"


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


def received(record: OutboundRecord) -> ReceivedRecord:
    return ReceivedRecord(record.topic, 0, 0, 0, record.key, record.value, record.headers)


@pytest.fixture
def desk(tmp_path: Path) -> tuple[VehicleDesk, dict[str, NcbAdapter]]:
    directory, ids = small_keyring()
    team, brazil = generate_identity(TEAM), generate_identity("BRA")
    directory = directory.with_identities([team.public(), brazil.public()])
    ids = {**ids, "BRA": brazil}
    state = HubState(
        settings=Settings(data_dir=tmp_path),
        site="lyon",
        bootstrap="localhost:9092",
        directory=directory,
        identity=ids["hub:lyon"],
        roster=DutyRoster(),
        clock=lambda: NOW,
    )
    teams = TeamRegistry()
    request = make_request(place=Place(country="FRA", name="Paris"), starts_at=NOW)
    teams.record(make_deployment(DeploymentState.DEPLOYED, request, team=TEAM))
    adapters = {p: NcbAdapter(i, directory, state.settings.topics) for p, i in ids.items()}
    adapters[TEAM] = NcbAdapter(team, directory, state.settings.topics)
    return VehicleDesk(state, teams), adapters


def report(
    adapters: dict[str, NcbAdapter], sender: str, record: VehicleRecord
) -> list[OutboundRecord]:
    desk_input = adapters[sender].compose(
        ["ccc"], StolenVehicleReport(record=record, reported_at=NOW), now=NOW,
        random_bytes=lambda n: b"\x01" * n,
    )[1]  # fmt: skip
    return [desk_input]


def handle(
    desk: VehicleDesk, adapters: dict[str, NcbAdapter], sender: str, record: VehicleRecord
) -> list[OutboundRecord]:
    [sent] = report(adapters, sender, record)
    opened = open_sealed(
        parse_envelope(sent.value, max_bytes=1 << 20),
        topic=desk.state.settings.topics.inbound,
        key=sent.key or b"",
        directory=desk.state.directory,
        identity=desk.state.identity,
    )
    return desk.handle(opened, received(sent), NOW + timedelta(seconds=1))


def journal(out: list[OutboundRecord], desk: VehicleDesk) -> list[dict[str, object]]:
    return [json.loads(r.value) for r in out if r.topic == desk.state.settings.topics.control]


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
    desk: tuple[VehicleDesk, dict[str, NcbAdapter]],
    registered: str,
    reporter: str,
    reaches_team: bool,
) -> None:
    vehicles, adapters = desk
    out = handle(vehicles, adapters, reporter, vehicle(registered, reporter))
    [event] = journal(out, vehicles)
    assert event["event"] == "vehicle-circulated"
    assert event["teams"] == ([TEAM] if reaches_team else [])
    copies = [r for r in out if r.topic == vehicles.state.settings.topics.inbox(TEAM)]
    assert len(copies) == (1 if reaches_team else 0)
    for copy in copies:
        opened = adapters[TEAM].receive(received(copy))
        assert isinstance(opened.body, StolenVehicleUpdate)  # type: ignore[union-attr]
        assert opened.body.record.registration_country == registered  # type: ignore[union-attr]


def test_a_report_for_another_bureaus_record_is_refused(
    desk: tuple[VehicleDesk, dict[str, NcbAdapter]],
) -> None:
    vehicles, adapters = desk
    out = handle(vehicles, adapters, "DEU", vehicle("FRA", "FRA"))
    [event] = journal(out, vehicles)
    assert event["event"] == "vehicle-report-refused"
    assert "FRA is not the sender" in str(event["reason"])
    assert all(r.topic == vehicles.state.settings.topics.control for r in out)


def test_the_concern_names_the_region_and_both_countries() -> None:
    concern = vehicle_concern(
        StolenVehicleReport(record=vehicle("ARG", "BRA"), reported_at=NOW), registry()
    )
    assert concern.region is Region.AMERICAS
    assert concern.countries == ("ARG", "BRA")
