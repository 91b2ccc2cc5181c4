"""Response-team traffic for the simulator: requests from host NCBs, reports, closings.

Theory of operation
-------------------
``TeamTraffic`` plays the host NCBs and the teams. It follows the control journal
(``on_control``, fed by a ``TopicTail`` on ``i247.control``: ``follow_control``) and
folds the team events into a ``DeploymentJournal``: that is how it learns each approved team's
public keys, which it adds to every NCB adapter's directory, and when a team has landed.
A team's private keys are the ones the approving hub wrote under ``keys_dir/private``
(the hand-over of keys to the team), so the simulator must share the hubs' keys
directory, as the demo does.

``step(now)`` returns the records to send now:

* now and then (``request_every`` seconds on average) a host NCB asks for a team: an
  IRT (crime or DVI) starting now, or an IMEST for a named event two days ahead;
* every deployed team reports every ``report_every`` seconds: a DVI team one phase at a
  time, in order, each report completing its phase; other teams without a phase;
* when a DVI team has completed its four phases, or another team has sent
  ``reports_before_closing`` reports, its host NCB sends ``deployment-closed``.

Worked example: ``TeamTraffic(adapters, keys_dir, topics, random.Random(7))``; the
simulator calls ``step(now)`` once a second and sends what it returns; the hub approves
FRA's DVI request; once ``team-arrived`` is folded, the team sends four reports (scene
examination ... reconciliation), then FRA closes the deployment.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import structlog

from agents.ncb.adapter import NcbAdapter
from brokers.records import OutboundRecord, ReceivedRecord
from brokers.tail import TopicTail
from schemas.bodies import DeploymentClosedBody, TeamReportBody, TeamRequestBody
from schemas.keys import KeyFileError, load_identity
from schemas.sealing import RandomBytes
from schemas.team_journal import DeploymentJournal, parse_team_event
from schemas.teams import (
    DVI_PHASES,
    DeploymentState,
    Place,
    TeamKind,
    TeamReport,
    TeamRequest,
)
from schemas.topics import TopicCatalog

__all__ = ["TeamTraffic", "follow_control"]

log = structlog.get_logger("i247.simulator")

_PLACES = ("Harbour", "Airport", "Old Town", "Stadium", "Central Station", "Riverside")
_EVENTS = ("Summer Games", "Heads of State Summit", "Football Championship", "World Expo")
_INCIDENTS = {
    TeamKind.IRT_CRIME: "a coordinated attack on a transport hub",
    TeamKind.IRT_DVI: "a passenger aircraft crashed on approach",
}


@dataclass
class TeamTraffic:
    """Host NCBs asking for teams, and the teams reporting back, for the simulator."""

    adapters: Mapping[str, NcbAdapter]  # the simulated NCBs, by code
    keys_dir: Path  # where the hubs write the teams' private keys
    topics: TopicCatalog
    rng: random.Random
    random_bytes: RandomBytes = os.urandom
    request_every: float = 20.0  # seconds between team requests, on average
    report_every: float = 2.0  # seconds between a deployed team's reports
    reports_before_closing: int = 3  # for crime teams and IMESTs
    registry: DeploymentJournal = field(default_factory=DeploymentJournal)
    _teams: dict[str, NcbAdapter] = field(default_factory=dict)
    _reports: dict[str, int] = field(default_factory=dict)
    _last_report: dict[str, datetime] = field(default_factory=dict)
    _closing_sent: set[str] = field(default_factory=set)
    _sent: dict[str, int] = field(default_factory=dict)  # records sent, by message type

    # --- the journal --------------------------------------------------------------

    def on_control(self, record: ReceivedRecord) -> None:
        """Fold one control-topic record; teach every adapter a newly approved team's keys."""
        event = parse_team_event(record.value, record.header("ce_type"))
        learned = self.registry.fold(event) if event is not None else []
        if not learned:
            return
        for adapter in (*self.adapters.values(), *self._teams.values()):
            adapter.directory = adapter.directory.with_identities(learned)
        log.info("team-keys-learned", teams=[i.participant for i in learned])

    def team_adapters(self) -> list[NcbAdapter]:
        """An adapter for every team approved so far whose keys are readable (its inbox)."""
        teams = {d.team for d in self.registry.deployments() if d.team is not None}
        return [a for a in (self._team(t) for t in sorted(teams)) if a is not None]

    @property
    def sent(self) -> Mapping[str, int]:
        """How many requests, reports and closings this traffic has produced."""
        return dict(self._sent)

    # --- the traffic --------------------------------------------------------------

    def step(self, now: datetime, elapsed: float = 1.0) -> list[OutboundRecord]:
        """What to send at ``now``, ``elapsed`` seconds after the previous step."""
        out: list[OutboundRecord] = []
        if self.rng.random() < elapsed / self.request_every:
            out += self.request(now)
        for d in self.registry.deployments():
            if d.state is not DeploymentState.DEPLOYED or d.team is None:
                continue
            if d.team in self._closing_sent:
                continue
            done = self._reports.get(d.team, 0)
            finished = done >= (
                len(DVI_PHASES) if d.kind is TeamKind.IRT_DVI else self.reports_before_closing
            )
            if finished:
                out += self._close(d.host, d.team, now)
                continue
            last = self._last_report.get(d.team)
            if last is None or now - last >= timedelta(seconds=self.report_every):
                out += self._report(d.team, d.kind, done, now)
        return out

    def request(self, now: datetime) -> list[OutboundRecord]:
        """One host NCB asks for a team at one of its places."""
        host = self.rng.choice(sorted(self.adapters))
        kind = self.rng.choice(list(TeamKind))
        place = Place(country=host, name=self.rng.choice(_PLACES))
        if kind is TeamKind.IMEST:
            starts = now + timedelta(days=2)
            request = TeamRequest(
                requester=host,
                kind=kind,
                place=place,
                starts_at=starts,
                ends_at=starts + timedelta(days=10),
                event=self.rng.choice(_EVENTS),
            )
        else:
            request = TeamRequest(
                requester=host,
                kind=kind,
                place=place,
                starts_at=now,
                ends_at=now + timedelta(days=30),
                incident=_INCIDENTS[kind],
            )
        return self._compose(self.adapters[host], TeamRequestBody(request=request), now)

    def _report(self, team: str, kind: TeamKind, done: int, now: datetime) -> list[OutboundRecord]:
        adapter = self._team(team)
        if adapter is None:
            return []
        phase = DVI_PHASES[done] if kind is TeamKind.IRT_DVI else None
        report = TeamReport(
            team=team,
            phase=phase,
            phase_complete=phase is not None,
            text=f"report {done + 1} from the field",
            counts={"database_checks": self.rng.randrange(50, 2_000)},
        )
        self._reports[team] = done + 1
        self._last_report[team] = now
        return self._compose(adapter, TeamReportBody(report=report), now)

    def _close(self, host: str, team: str, now: datetime) -> list[OutboundRecord]:
        self._closing_sent.add(team)
        body = DeploymentClosedBody(team=team, closed_at=now, reason="the operation is over")
        return self._compose(self.adapters[host], body, now)

    def _team(self, team: str) -> NcbAdapter | None:
        """The team's adapter, with the keys its hub wrote; None until they are readable."""
        if team not in self._teams:
            try:
                identity = load_identity(self.keys_dir, team)
            except KeyFileError:
                log.warning("team-keys-missing", team=team, keys_dir=str(self.keys_dir))
                return None
            directory = next(iter(self.adapters.values())).directory
            self._teams[team] = NcbAdapter(identity, directory, self.topics)
        return self._teams[team]

    def _compose(
        self, adapter: NcbAdapter, body: TeamRequestBody | TeamReportBody | DeploymentClosedBody,
        now: datetime,
    ) -> list[OutboundRecord]:  # fmt: skip
        _, record = adapter.compose(["ccc"], body, now=now, random_bytes=self.random_bytes)
        self._sent[body.type] = self._sent.get(body.type, 0) + 1
        return [record]


def follow_control(bootstrap: str, topics: TopicCatalog, traffic: TeamTraffic) -> TopicTail:
    """A tail of the control topic that feeds ``traffic`` (start it, and stop it after)."""
    return TopicTail(bootstrap, [topics.control], traffic.on_control)
