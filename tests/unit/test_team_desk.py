"""The team desk and registry: requests, team creation, time, reports, closing, revocation."""

from __future__ import annotations

import json
import os
import stat
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agents.ncb.adapter import NcbAdapter
from brokers.records import ReceivedRecord
from brokers.settings import Settings
from schemas.bodies import (
    Body,
    DeploymentClosedBody,
    MessageBody,
    TeamConversionBody,
    TeamDecisionBody,
    TeamReportBody,
    TeamRequestBody,
)
from schemas.errors import RejectReason
from schemas.header import MessageType
from schemas.keys import PrivateIdentity, generate_identity, load_identity
from schemas.registry import Region
from schemas.sealing import OpenedMessage
from schemas.team_journal import TeamEvent, team_counts
from schemas.teams import (
    Concern,
    DeclineReason,
    DeploymentState,
    DviPhase,
    Place,
    TeamKind,
    TeamReport,
)
from streams.core.dedup import SeenMessages
from streams.core.deployments import DeploymentError
from streams.core.intake import Admitted, IntakePolicy, Refused, admit
from streams.core.roster import DutyRoster
from streams.desks.context import DeskContext
from streams.desks.effects import AdmitTeam, Effect, Journal, Send
from streams.desks.hub_state import HubState
from streams.desks.shell import DeskShell
from streams.desks.team_desk import TeamDesk, keyring_issuer
from streams.desks.team_registry import TeamRegistry
from tests.unit.factories import make_header
from tests.unit.keyring import small_keyring
from tests.unit.team_factories import NOW, make_request

NICE = Place(country="FRA", name="Nice")
DVI = make_request(
    kind=TeamKind.IRT_DVI, place=NICE, starts_at=NOW, ends_at=NOW + timedelta(days=5)
)
TEAM = "team:dvi-fra-nice-20260701"
SCALE = 43_200.0  # 12-24 h become 1-2 s


@dataclass
class Rig:
    """A team desk on hub:lyon with a clock the test moves, and every output it produced."""

    tmp: Path
    now: datetime = NOW
    acting: bool = True
    issued: dict[str, PrivateIdentity] = field(default_factory=dict)
    out: list[Effect] = field(default_factory=list)

    def __post_init__(self) -> None:
        directory, ids = small_keyring()
        self.ids = dict(ids)
        settings = Settings(data_dir=self.tmp, keys_dir=self.tmp / "keys", clock_scale=SCALE)
        self.state = HubState(
            settings=settings,
            site="lyon",
            bootstrap="localhost:9092",
            directory=directory,
            identity=ids["hub:lyon"],
            roster=DutyRoster(),
            clock=lambda: self.now,
        )
        self.shell = DeskShell(self.state)
        self.registry = TeamRegistry()
        self.desk = TeamDesk(self.registry, self._issue, acting=lambda: self.acting)

    def _issue(self, team: str) -> Any:
        self.issued[team] = generate_identity(team)
        self.ids[team] = self.issued[team]
        return self.issued[team].public()

    def ctx(self) -> DeskContext:
        return self.shell.context(self.now)

    def carry(self, effects: list[Effect]) -> list[Effect]:
        """Carry ``effects`` out as the hub would (keys, inboxes), and keep them."""
        self.shell.carry_out(effects, self.now)
        self.out += effects
        return effects

    def send(self, sender: str, body: Body) -> list[Effect]:
        header = make_header(
            sender=sender,
            recipients=["ccc"],
            message_type=MessageType(body.type),
            created_at=self.now,
        )
        return self.carry(self.desk.handle(self.ctx(), OpenedMessage(header, body)))

    def tick(self, at: datetime) -> list[Effect]:
        self.now = at
        return self.carry(self.desk.tick(self.ctx()))

    def request(self, body: Body | None = None, sender: str = "FRA") -> list[Effect]:
        return self.send(sender, body or TeamRequestBody(request=DVI))

    def deployed(self) -> str:
        """Request the DVI team and let it arrive; returns its id."""
        self.request()
        d = self.registry.of_team(TEAM)
        assert d is not None
        assert d.expected_arrival is not None
        self.tick(d.expected_arrival)
        return TEAM

    def report(self, phase: DviPhase | None, complete: bool = False) -> list[Effect]:
        body = TeamReportBody(
            report=TeamReport(team=TEAM, phase=phase, phase_complete=complete, text="field")
        )
        return self.send(TEAM, body)


def events(out: list[Effect]) -> list[dict[str, Any]]:
    """The journal events among ``out``, as written on ``i247.control``."""
    return [json.loads(e.event.to_json_bytes()) for e in out if isinstance(e, Journal)]


def names(out: list[Effect]) -> list[str]:
    return [e["event"] for e in events(out)]


def opened(rig: Rig, out: list[Effect], participant: str) -> list[Body]:
    """Every body sent to ``participant`` (the shell's tests check the sealing)."""
    return [e.body for e in out if isinstance(e, Send) and participant in e.to]


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


# --- requests -------------------------------------------------------------------------


def test_an_approved_request_creates_the_team_and_answers_the_requester(rig: Rig) -> None:
    out = rig.request()

    assert names(out) == ["team-requested", "team-approved", "team-dispatched"]
    [decision] = opened(rig, out, "FRA")
    assert isinstance(decision, TeamDecisionBody)
    assert decision.decision.approved
    assert decision.decision.team == TEAM
    admitted = [e.identity.to_json() for e in out if isinstance(e, AdmitTeam)]
    assert admitted == [rig.issued[TEAM].public().to_json()]
    assert TEAM in rig.state.directory
    assert rig.shell.take_new_inboxes() == ["i247.team.dvi-fra-nice-20260701.inbox"]
    assert rig.shell.take_new_inboxes() == []
    approved = events(out)[1]
    assert approved["identity"] == rig.issued[TEAM].public().to_json()
    d = rig.registry.of_team(TEAM)
    assert d is not None
    assert d.state is DeploymentState.EN_ROUTE
    assert d.expected_arrival is not None
    assert NOW + timedelta(seconds=1) <= d.expected_arrival <= NOW + timedelta(seconds=2)


@pytest.mark.parametrize(
    ("sender", "asked", "reasons"),
    [
        ("DEU", DVI.model_copy(update={"requester": "DEU"}), [DeclineReason.NOT_HOST_NCB]),
        (
            "FRA",
            DVI.model_copy(update={"incident": None, "starts_at": NOW - timedelta(hours=2)}),
            [DeclineReason.STARTS_IN_PAST, DeclineReason.INCIDENT_MISSING],
        ),
        (
            "FRA",
            DVI.model_copy(update={"place": Place(country="XXX", name="Nowhere")}),
            [DeclineReason.UNKNOWN_COUNTRY, DeclineReason.NOT_HOST_NCB],
        ),
    ],
)
def test_a_declined_request_is_answered_with_every_reason_and_creates_nothing(
    rig: Rig, sender: str, asked: Any, reasons: list[DeclineReason]
) -> None:
    out = rig.request(TeamRequestBody(request=asked), sender=sender)

    assert names(out) == ["team-requested", "team-declined"]
    [decision] = opened(rig, out, sender)
    assert isinstance(decision, TeamDecisionBody)
    assert list(decision.decision.reasons) == reasons
    assert not any(isinstance(e, AdmitTeam) for e in out)
    assert rig.shell.take_new_inboxes() == []
    assert not any(str(p).startswith("team:") for p in rig.state.directory.identities)


def test_a_request_naming_another_requester_is_refused_back(rig: Rig) -> None:
    out = rig.request(TeamRequestBody(request=DVI), sender="DEU")

    assert names(out) == ["team-refused"]
    [refusal] = opened(rig, out, "DEU")
    assert isinstance(refusal, MessageBody)
    assert "send it as yourself" in refusal.text
    assert len(rig.registry) == 0


def test_the_same_request_delivered_twice_is_decided_once(rig: Rig) -> None:
    header = make_header(sender="FRA", recipients=["ccc"], message_type=MessageType.TEAM_REQUEST)
    first = rig.desk.handle(rig.ctx(), OpenedMessage(header, TeamRequestBody(request=DVI)))
    again = rig.desk.handle(rig.ctx(), OpenedMessage(header, TeamRequestBody(request=DVI)))
    assert [type(e) for e in first] == [Journal, AdmitTeam, Journal, Journal, Send]
    assert again == []


def test_a_second_team_for_the_same_place_is_a_duplicate(rig: Rig) -> None:
    rig.request()
    out = rig.request()
    [decision] = opened(rig, out, "FRA")
    assert isinstance(decision, TeamDecisionBody)
    assert decision.decision.reasons == (DeclineReason.DUPLICATE,)


# --- time -----------------------------------------------------------------------------


def test_only_the_acting_hub_lands_teams_and_only_when_due(rig: Rig) -> None:
    rig.request()
    d = rig.registry.of_team(TEAM)
    assert d is not None
    assert d.expected_arrival is not None
    assert rig.tick(d.expected_arrival - timedelta(milliseconds=1)) == []
    rig.acting = False
    assert rig.tick(d.expected_arrival) == []
    rig.acting = True
    assert names(rig.tick(d.expected_arrival)) == ["team-arrived"]
    assert rig.registry.of_team(TEAM).state is DeploymentState.DEPLOYED  # type: ignore[union-attr]


def test_a_deployment_closes_itself_at_its_end_and_says_so(rig: Rig) -> None:
    rig.deployed()
    out = rig.tick(DVI.ends_at)
    assert names(out) == ["team-closed"]
    for party in ("FRA", TEAM):
        [closed] = opened(rig, out, party)
        assert isinstance(closed, DeploymentClosedBody)
        assert closed.closed_at == DVI.ends_at
    assert rig.registry.is_revoked(TEAM, DVI.ends_at)


# --- reports --------------------------------------------------------------------------


def test_dvi_reports_follow_the_phases_and_an_early_one_is_refused_with_the_reason(
    rig: Rig,
) -> None:
    rig.deployed()

    early = rig.report(DviPhase.POST_MORTEM)
    assert names(early) == ["team-refused"]
    [why] = opened(rig, early, TEAM)
    assert isinstance(why, MessageBody)
    assert "scene-examination" in why.text

    done = rig.report(DviPhase.SCENE_EXAMINATION, complete=True)
    assert names(done) == ["team-report", "team-phase-completed"]
    assert names(rig.report(DviPhase.POST_MORTEM)) == ["team-report"]
    d = rig.registry.of_team(TEAM)
    assert d is not None
    assert d.dvi_complete == (DviPhase.SCENE_EXAMINATION,)


def test_a_team_en_route_cannot_report_yet(rig: Rig) -> None:
    rig.request()
    [why] = opened(rig, rig.report(DviPhase.SCENE_EXAMINATION), TEAM)
    assert isinstance(why, MessageBody)
    assert "deployed teams only" in why.text


# --- conversion and closing -----------------------------------------------------------


def test_the_host_converts_its_imest_and_host_and_team_are_told(rig: Rig) -> None:
    rig.request(TeamRequestBody(request=make_request()))
    team = "team:imest-fra-paris-20260726"
    body = TeamConversionBody(team=team, to_kind=TeamKind.IRT_CRIME, crisis="a bomb in the crowd")

    refused = rig.send("DEU", body)
    assert names(refused) == ["team-refused"]

    out = rig.send("FRA", body)
    assert names(out) == ["team-converted"]
    assert rig.registry.of_team(team).kind is TeamKind.IRT_CRIME  # type: ignore[union-attr]
    for party in ("FRA", team):
        assert opened(rig, out, party) == [body]


def test_the_ccc_cannot_convert_a_disaster_team(rig: Rig) -> None:
    rig.request()
    with pytest.raises(DeploymentError, match="only an IMEST converts"):
        rig.desk.convert(rig.ctx(), TEAM, TeamKind.IRT_CRIME, "crisis")


def test_the_host_closes_a_deployment_and_the_team_is_revoked_from_then(rig: Rig) -> None:
    rig.deployed()
    rig.now = closing = NOW + timedelta(days=1)
    body = DeploymentClosedBody(team=TEAM, closed_at=closing, reason="operation over")

    assert names(rig.send("ITA", body)) == ["team-refused"]
    out = rig.send("FRA", body)

    assert names(out) == ["team-closed"]
    assert not rig.registry.is_revoked(TEAM, closing - timedelta(seconds=1))
    assert rig.registry.is_revoked(TEAM, closing)
    assert rig.registry.teams_concerned(Concern(), closing) == []
    assert names(rig.send("FRA", body)) == ["team-refused"]  # closing twice


def test_intake_refuses_traffic_for_a_closed_team_and_admits_it_before(rig: Rig) -> None:
    rig.deployed()
    sender = NcbAdapter(rig.ids["DEU"], rig.state.directory, rig.state.settings.topics)

    def intake(at: datetime) -> object:
        _, out = sender.compose(
            [TEAM], MessageBody(subject="s", text="t"), now=at, random_bytes=os.urandom
        )
        received = ReceivedRecord(out.topic, 0, 0, 0, out.key, out.value, out.headers)
        return admit(
            received,
            now=at,
            directory=rig.state.directory,
            seen=SeenMessages(),
            roster=DutyRoster(),
            topics=rig.state.settings.topics,
            policy=IntakePolicy(),
            revocations=rig.registry.roster,
        )

    assert isinstance(intake(rig.now), Admitted)
    rig.carry(rig.desk.close_deployment(rig.ctx(), TEAM, "called off"))
    refused = intake(rig.now)
    assert isinstance(refused, Refused)
    assert refused.reason is RejectReason.RECIPIENT_REVOKED
    assert "address the host NCB 'FRA'" in refused.detail


# --- the registry: fold, seam, counts -------------------------------------------------


def test_another_hub_folding_the_journal_knows_the_same_teams_in_any_order(rig: Rig) -> None:
    rig.deployed()
    rig.report(DviPhase.SCENE_EXAMINATION, complete=True)
    journal = events(rig.out)

    for order in (journal, list(reversed(journal)), journal + journal[:2]):
        other = TeamRegistry()
        learned = [i.participant for e in order for i in other.fold(e)]
        assert learned == [TEAM]
        assert other.deployments() == rig.registry.deployments()


def test_a_closed_team_stays_revoked_whatever_is_folded_after(rig: Rig) -> None:
    rig.deployed()
    rig.carry(rig.desk.close_deployment(rig.ctx(), TEAM, "over"))
    other = TeamRegistry()
    for event in events(rig.out)[::-1]:
        other.fold(event)
    assert other.is_revoked(TEAM, rig.now)


@pytest.mark.parametrize(
    ("concern", "concerned"),
    [
        (Concern(), [TEAM]),  # global
        (Concern(region=Region.EUROPE), [TEAM]),  # Nice is in Europe
        (Concern(region=Region.AMERICAS, countries=("FRA", "BRA")), [TEAM]),  # names the host
        (Concern(region=Region.AMERICAS), []),
        (Concern(countries=("DEU",)), []),
    ],
)
def test_teams_concerned_is_the_relevance_rule_over_the_known_teams(
    rig: Rig, concern: Concern, concerned: list[str]
) -> None:
    rig.request()
    assert rig.registry.teams_concerned(concern, rig.now) == concerned
    assert rig.registry.teams_concerned(concern, DVI.ends_at) == []  # past its end


def test_an_approved_team_not_yet_dispatched_is_concerned_by_nothing(rig: Rig) -> None:
    rig.acting = False
    rig.request()
    d = rig.registry.of_team(TEAM)
    assert d is not None
    before = TeamRegistry()
    before.fold(events(rig.out)[1])  # up to team-approved only
    assert before.teams_concerned(Concern(), rig.now) == []


def test_team_counts_count_each_deployment_once_per_step(rig: Rig) -> None:
    rig.deployed()
    rig.request(TeamRequestBody(request=DVI.model_copy(update={"requester": "DEU"})), "DEU")
    rig.report(DviPhase.POST_MORTEM)
    rig.report(DviPhase.SCENE_EXAMINATION, complete=True)
    rig.carry(rig.desk.close_deployment(rig.ctx(), TEAM, "over"))
    journal = events(rig.out)
    assert team_counts(journal + journal) == {
        "requested": 2,
        "declined": 1,
        "approved": 1,
        "arrived": 1,
        "converted": 0,
        "closed": 1,
        "reports": 1,
        "refused": 1,
    }


def test_keyring_issuer_writes_the_private_keys_readable_by_the_owner_only(
    tmp_path: Path,
) -> None:
    team = f"team:irt-fra-lyon-{uuid.uuid4().hex[:6]}"
    public = keyring_issuer(tmp_path)(team)
    path = tmp_path / "private" / f"{team.replace(':', '_')}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_identity(tmp_path, team).public().to_json() == public.to_json()


def test_team_events_are_named_for_the_journal() -> None:
    assert {e.value for e in TeamEvent} >= {"team-requested", "team-approved", "team-closed"}
