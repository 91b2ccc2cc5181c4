"""decide_team_request: the CCC approves or declines a team request by the written rules."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.teams import (
    DeclineReason,
    Deployment,
    DeploymentState,
    Place,
    TeamKind,
    TeamRequest,
)
from streams.core.team_approval import (
    HORIZON,
    IMEST_LEAD,
    MAX_CONCURRENT,
    MAX_LENGTH,
    RULES,
    START_TOLERANCE,
    ApprovalRule,
    decide_team_request,
)
from tests.unit.team_factories import NOW, make_deployment, make_request, registry

DOC = Path(__file__).resolve().parents[2] / "docs" / "team-approval.md"
R = DeclineReason
S = DeploymentState
IMEST, CRIME, DVI = TeamKind.IMEST, TeamKind.IRT_CRIME, TeamKind.IRT_DVI
H, DAY = timedelta(hours=1), timedelta(days=1)


def decide(request: TeamRequest, deployments: tuple[Deployment, ...] = ()) -> Any:
    return decide_team_request(request, deployments=deployments, now=NOW, registry=registry())


def active_elsewhere(n: int) -> tuple[Deployment, ...]:
    """``n`` deployed IRTs, each at its own place in Germany."""
    return tuple(
        make_deployment(
            S.DEPLOYED,
            make_request(requester="DEU", kind=CRIME, place=Place(country="DEU", name=f"Ort {i}")),
            team=f"team:irt-deu-ort-{i}",
        )
        for i in range(n)
    )


# what the request changes, deployments known -> the decline reasons, in table order
DECLINES: list[tuple[str, dict[str, Any], tuple[Deployment, ...], tuple[DeclineReason, ...]]] = [
    ("host not a member", {"place": Place(country="PRK", name="Pyongyang"), "requester": "PRK"},
     (), (R.UNKNOWN_COUNTRY,)),
    ("another country's NCB", {"requester": "DEU"}, (), (R.NOT_HOST_NCB,)),
    ("a team cannot ask", {"requester": "team:irt-fra-x-20260101"}, (), (R.NOT_HOST_NCB,)),
    ("the auditor cannot ask", {"requester": "auditor"}, (), (R.NOT_HOST_NCB,)),
    ("an IRT wanted yesterday", {"kind": CRIME, "starts_at": NOW - DAY, "ends_at": NOW + DAY},
     (), (R.STARTS_IN_PAST,)),
    ("end before start", {"ends_at": NOW + 24 * DAY}, (), (R.ENDS_BEFORE_START,)),
    ("end at start", {"ends_at": NOW + 25 * DAY}, (), (R.ENDS_BEFORE_START,)),
    ("91 days", {"ends_at": NOW + 25 * DAY + MAX_LENGTH + H}, (), (R.TOO_LONG,)),
    ("two years ahead", {"starts_at": NOW + 730 * DAY, "ends_at": NOW + 731 * DAY}, (),
     (R.TOO_FAR_AHEAD,)),
    ("IMEST without event", {"event": None}, (), (R.EVENT_MISSING,)),
    ("IMEST 18 h ahead", {"starts_at": NOW + 18 * H, "ends_at": NOW + 5 * DAY}, (),
     (R.IMEST_TOO_LATE,)),
    ("crime IRT without incident", {"kind": CRIME, "incident": None}, (),
     (R.INCIDENT_MISSING,)),
    ("DVI IRT without disaster", {"kind": DVI, "incident": None}, (), (R.INCIDENT_MISSING,)),
    ("same event, any case", {"event": "TOUR DE FRANCE FINALE"},
     (make_deployment(S.EN_ROUTE),), (R.DUPLICATE,)),
    ("same IRT place", {"kind": DVI, "place": Place(country="FRA", name="paris")},
     (make_deployment(S.APPROVED, make_request(kind=DVI)),), (R.DUPLICATE,)),
    ("capacity reached", {}, active_elsewhere(MAX_CONCURRENT), (R.CAPACITY,)),
    ("everything wrong at once",
     {"requester": "DEU", "event": None, "starts_at": NOW + 18 * H, "ends_at": NOW},
     (), (R.NOT_HOST_NCB, R.ENDS_BEFORE_START, R.EVENT_MISSING, R.IMEST_TOO_LATE)),
]  # fmt: skip


@pytest.mark.parametrize(("case", "changes", "deployments", "reasons"), DECLINES,
                         ids=[c[0] for c in DECLINES])  # fmt: skip
def test_each_broken_rule_declines_with_its_reason(
    case: str,
    changes: dict[str, Any],
    deployments: tuple[Deployment, ...],
    reasons: tuple[DeclineReason, ...],
) -> None:
    decision = decide(make_request(**changes), deployments)
    assert not decision.approved
    assert decision.team is None
    assert decision.reasons == reasons
    for reason in reasons:
        assert reason.value in decision.text


def test_every_decline_reason_is_reached_by_a_case() -> None:
    assert {r for case in DECLINES for r in case[3]} == set(DeclineReason)


# request changes, deployments -> the team id approved
APPROVALS: list[tuple[str, dict[str, Any], tuple[Deployment, ...], str]] = [
    ("IMEST by the host NCB", {}, (), "team:imest-fra-paris-20260726"),
    ("crime IRT, now", {"kind": CRIME, "starts_at": NOW, "ends_at": NOW + 7 * DAY}, (),
     "team:irt-fra-paris-20260701"),
    ("DVI IRT filed by a hub", {"kind": DVI, "requester": "hub:lyon", "starts_at": NOW - H / 2,
     "ends_at": NOW + 60 * DAY}, (), "team:dvi-fra-paris-20260701"),
    ("IMEST exactly IMEST_LEAD ahead, exactly MAX_LENGTH long",
     {"starts_at": NOW + IMEST_LEAD, "ends_at": NOW + IMEST_LEAD + MAX_LENGTH}, (),
     "team:imest-fra-paris-20260702"),
    ("start exactly HORIZON ahead", {"starts_at": NOW + HORIZON, "ends_at": NOW + HORIZON + DAY},
     (), "team:imest-fra-paris-20270701"),
    ("IRT start exactly START_TOLERANCE ago",
     {"kind": CRIME, "starts_at": NOW - START_TOLERANCE, "ends_at": NOW + DAY}, (),
     "team:irt-fra-paris-20260701"),
    ("one below capacity", {}, active_elsewhere(MAX_CONCURRENT - 1),
     "team:imest-fra-paris-20260726"),
    ("same event, but that team is closed: its id is not reused", {},
     (make_deployment(S.CLOSED),), "team:imest-fra-paris-20260726-2"),
    ("same place, other kind", {"kind": DVI},
     (make_deployment(S.DEPLOYED, make_request(kind=CRIME), team="team:irt-fra-paris-1"),),
     "team:dvi-fra-paris-20260726"),
    ("a declined request holds no place", {}, (make_deployment(S.DECLINED),),
     "team:imest-fra-paris-20260726"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "changes", "deployments", "team"), APPROVALS,
                         ids=[c[0] for c in APPROVALS])  # fmt: skip
def test_a_request_that_keeps_every_rule_is_approved_with_a_new_team(
    case: str, changes: dict[str, Any], deployments: tuple[Deployment, ...], team: str
) -> None:
    decision = decide(make_request(**changes), deployments)
    assert decision.approved, decision.text
    assert decision.team == team
    assert decision.reasons == ()


def test_every_kind_can_be_approved() -> None:
    kinds = {make_request(**case[1]).kind for case in APPROVALS}
    assert kinds == set(TeamKind)


def test_a_team_id_in_use_is_never_issued_again() -> None:
    first = make_deployment(
        S.DEPLOYED, make_request(kind=CRIME), team="team:irt-fra-paris-20260701"
    )
    elsewhere = make_request(kind=CRIME, place=Place(country="FRA", name="Paris "),
                             starts_at=NOW, ends_at=NOW + DAY)  # fmt: skip
    decision = decide(elsewhere, (first,))
    assert decision.team == "team:irt-fra-paris-20260701-2"


# The document is the operators' copy of the table: checked row for row.


def kinds_cell(rule: ApprovalRule) -> str:
    if rule.kinds == frozenset(TeamKind):
        return "all"
    return ", ".join(k.value for k in TeamKind if k in rule.kinds)


def doc_row(rule: ApprovalRule) -> str:
    cells = [rule.id, f"`{rule.reason.value}`", rule.title, kinds_cell(rule), rule.advice]
    return "| " + " | ".join(cells) + " |"


def test_the_documented_rule_table_is_the_code_table_row_for_row() -> None:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    documented = [line for line in lines if re.match(r"^\| A\d+ \|", line)]
    assert documented == [doc_row(rule) for rule in RULES]


def spelled(delta: timedelta) -> str:
    if delta % timedelta(days=1) == timedelta(0) and delta >= timedelta(days=2):
        return f"{delta.days} days"
    return f"{delta // timedelta(hours=1)} h"


FIGURES = {
    "START_TOLERANCE": spelled(START_TOLERANCE),
    "MAX_LENGTH": spelled(MAX_LENGTH),
    "HORIZON": spelled(HORIZON),
    "IMEST_LEAD": spelled(IMEST_LEAD),
    "MAX_CONCURRENT": str(MAX_CONCURRENT),
}


def test_the_documented_figures_are_the_code_figures() -> None:
    text = DOC.read_text(encoding="utf-8").split("## The figures", 1)[1].split("\n## ", 1)[0]
    documented = dict(re.findall(r"^\| ([A-Z_]+) \| ([^|]+) \|", text, flags=re.MULTILINE))
    assert documented == FIGURES


def example_rows() -> list[list[str]]:
    text = DOC.read_text(encoding="utf-8").split("## Examples", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines[1:]]


def offset(cell: str) -> timedelta:
    if cell == "now":
        return timedelta(0)
    number, unit = cell.replace("−", "-").split()
    return int(number) * (DAY if unit == "days" else H)


def test_the_document_has_examples_of_approval_and_decline() -> None:
    decisions = [row[-1].split()[0] for row in example_rows()]
    assert "approved" in decisions
    assert "declined" in decisions


@pytest.mark.parametrize("row", example_rows(), ids=lambda row: " ".join(row[:2]))
def test_every_documented_example_is_what_the_code_decides(row: list[str]) -> None:
    requester, kind, host, start, event, incident, decided = row
    starts_at = NOW + offset(start)
    request = TeamRequest(
        requester=requester,
        kind=TeamKind(kind),
        place=Place(country=host, name="Paris"),
        starts_at=starts_at,
        ends_at=starts_at + 5 * DAY,
        event=None if event == "–" else event,
        incident=None if incident == "–" else incident,
    )
    decision = decide(request)
    verdict, rest = decided.split(" ", 1)
    named = [cell.strip(" `") for cell in rest.split(",")]
    assert decision.approved == (verdict == "approved")
    if decision.approved:
        assert [decision.team] == named
    else:
        assert [r.value for r in decision.reasons] == named
