"""Team contracts: ids, relevance of notices and vehicle records, model invariants."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.header import MessageType
from schemas.participants import ParticipantKind, kind_of
from schemas.registry import Region
from schemas.teams import (
    Concern,
    DeclineReason,
    DeploymentState,
    DviPhase,
    Place,
    TeamDecision,
    TeamKind,
    TeamReport,
    new_team_id,
)
from schemas.topics import TopicCatalog
from streams.core.team_relevance import relevant_to_team
from tests.unit.team_factories import NOW, make_deployment, make_request, registry

S = DeploymentState
AMERICAS, EUROPE = Region.AMERICAS, Region.EUROPE
LONGEST = "team:imest-civ-yamoussoukro-cote-d-ivoi-20260715"  # room left for a "-1000" counter

# Team ids


@pytest.mark.parametrize(
    ("kind", "country", "name", "expected"),
    [
        (TeamKind.IRT_DVI, "FRA", "Nice", "team:dvi-fra-nice-20260715"),
        (TeamKind.IMEST, "BRA", "Rio de Janeiro", "team:imest-bra-rio-de-janeiro-20260715"),
        (TeamKind.IRT_CRIME, "KEN", "Westgate, Nairobi", "team:irt-ken-westgate-nairobi-20260715"),
        (TeamKind.IMEST, "CIV", "Yamoussoukro – Côte d'Ivoire", LONGEST),  # cut to fit 48
        (TeamKind.IRT_DVI, "JPN", "東京", "team:dvi-jpn-20260715"),
    ],
)  # fmt: skip
def test_a_team_id_names_kind_country_place_and_start_day(
    kind: TeamKind, country: str, name: str, expected: str
) -> None:
    starts = NOW.replace(month=7, day=15)
    assert new_team_id(kind, Place(country=country, name=name), starts, set()) == expected


def test_a_taken_id_gets_the_next_counter() -> None:
    place = Place(country="FRA", name="Nice")
    taken = {"team:dvi-fra-nice-20260701", "team:dvi-fra-nice-20260701-2"}
    assert new_team_id(TeamKind.IRT_DVI, place, NOW, taken) == "team:dvi-fra-nice-20260701-3"


@given(
    kind=st.sampled_from(list(TeamKind)),
    name=st.text(min_size=1, max_size=256),
    taken_count=st.integers(0, 5),
)
def test_any_place_gives_a_valid_fresh_team_id(kind: TeamKind, name: str, taken_count: int) -> None:
    place = Place(country="FRA", name=name)
    taken: set[str] = set()
    for _ in range(taken_count):
        taken.add(new_team_id(kind, place, NOW, taken))
    fresh = new_team_id(kind, place, NOW, taken)
    assert fresh not in taken
    assert kind_of(fresh) is ParticipantKind.TEAM
    assert len(taken) == taken_count


def test_a_team_inbox_is_named_after_its_id() -> None:
    team = new_team_id(TeamKind.IRT_DVI, Place(country="FRA", name="Nice"), NOW, ())
    assert TopicCatalog().inbox(team) == "i247.team.dvi-fra-nice-20260701.inbox"


# Relevance: region and host country, while en route or deployed


# concern -> whether an IMEST deployed to Brazil (Americas) receives it
RELEVANCE: list[tuple[str, Concern, bool]] = [
    ("global red notice", Concern(), True),
    ("regional alert, team's region", Concern(region=AMERICAS), True),
    ("regional alert, other region", Concern(region=EUROPE), False),
    ("names the host country", Concern(region=EUROPE, countries=("DEU", "BRA")), True),
    ("names other countries only", Concern(countries=("DEU", "FRA")), False),
    ("stolen vehicle from a neighbour", Concern(region=AMERICAS, countries=("ARG",)), True),
    ("stolen vehicle from Europe", Concern(region=EUROPE, countries=("ITA",)), False),
    ("stolen vehicle from the host", Concern(region=AMERICAS, countries=("BRA",)), True),
]


@pytest.mark.parametrize(("case", "item", "relevant"), RELEVANCE, ids=[c[0] for c in RELEVANCE])
def test_a_deployed_team_receives_what_concerns_its_region_or_host(
    case: str, item: Concern, relevant: bool
) -> None:
    d = make_deployment(
        S.DEPLOYED,
        make_request(requester="BRA", place=Place(country="BRA", name="Rio de Janeiro")),
    )
    assert d.region is AMERICAS
    assert relevant_to_team(d, item) is relevant


@pytest.mark.parametrize(
    ("state", "receives"),
    [(S.REQUESTED, False), (S.APPROVED, False), (S.EN_ROUTE, True), (S.DEPLOYED, True),
     (S.CLOSED, False), (S.DECLINED, False)],
)  # fmt: skip
def test_only_a_team_en_route_or_deployed_receives_anything(
    state: DeploymentState, receives: bool
) -> None:
    assert relevant_to_team(make_deployment(state), Concern()) is receives


# Model invariants


def test_the_region_comes_from_the_registry() -> None:
    assert make_request().region(registry()) is EUROPE


def test_the_dvi_phases_are_the_four_of_the_seeds_in_order() -> None:
    assert [p.number for p in DviPhase] == [1, 2, 3, 4]
    assert [p.value for p in DviPhase] == [
        "scene-examination",
        "post-mortem-data-analysis",
        "ante-mortem-data-analysis",
        "reconciliation-of-information",
    ]


@pytest.mark.parametrize(
    "fields",
    [
        {"approved": True, "text": "t"},  # approved without a team
        {"approved": True, "team": "team:irt-x", "reasons": (DeclineReason.CAPACITY,), "text": "t"},
        {"approved": False, "text": "t"},  # declined without a reason
        {
            "approved": False,
            "team": "team:irt-x",
            "reasons": (DeclineReason.CAPACITY,),
            "text": "t",
        },
        {"approved": True, "team": "FRA", "text": "t"},  # not a team id
    ],
)
def test_a_decision_is_either_an_approval_with_a_team_or_a_decline_with_reasons(
    fields: dict[str, object],
) -> None:
    with pytest.raises(ValidationError):
        TeamDecision(**fields)  # type: ignore[arg-type]


def test_a_report_completes_only_a_phase_it_names() -> None:
    with pytest.raises(ValidationError, match="phase_complete needs the phase"):
        TeamReport(team="team:dvi-x", phase_complete=True, text="t")


def test_a_request_is_immutable_and_strict() -> None:
    request = make_request()
    with pytest.raises(ValidationError):
        request.kind = TeamKind.IRT_CRIME  # type: ignore[misc]
    with pytest.raises(ValidationError):
        make_request(size=0)
    with pytest.raises(ValidationError):
        make_request(surprise=True)


def test_a_thousand_teams_of_one_name_is_the_limit() -> None:
    place = Place(country="FRA", name="Nice")
    taken = {"team:dvi-fra-nice-20260701"} | {
        f"team:dvi-fra-nice-20260701-{n}" for n in range(2, 1001)
    }
    with pytest.raises(ValueError, match="pick another place name or date"):
        new_team_id(TeamKind.IRT_DVI, place, NOW, taken)


def test_the_wire_format_lists_every_body_kind() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "wire-format.md"
    section = doc.read_text(encoding="utf-8").split("## 9. Bodies", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([a-z-]+)` \|", section, flags=re.MULTILINE)
    assert listed[1:] == [t.value for t in MessageType]  # after the heading row
