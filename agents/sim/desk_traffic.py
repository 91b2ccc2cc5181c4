"""The bureaus' and teams' dealings with the CCC's desks, for the simulator.

Theory of operation
-------------------
Beside the plain messages of ``agents.sim.traffic``, the demo's bureaus and teams:

* request notices, send diffusions, recall some and cancel some notices
  (``agents.sim.notice_traffic.NoticeTraffic``, one event every ``notice_every`` seconds), and
  renew a share of their notices when the CCC prompts them (``renew_share``);
* ask for response teams, and the teams report and are closed
  (``agents.sim.team_traffic.TeamTraffic``, stepped once a second);
* check documents: single checks and multi-country queries from bureaus, and an IMEST at
  a major event screening arriving flights (``agents.sim.check_traffic.check_traffic``, with a
  seeded share of real hits drawn from ``agents.sim.screening_sources.ScreeningWorld``);
* report stolen vehicles (``vehicle_every`` seconds; half of them registered in the host
  country of a deployed team, so the vehicle desk has a team to tell), drawn from the
  seeded SMV with a fresh plate;
* answer the CCC: a bureau that owns a hit confirms it, a bureau asked in a multi-country
  query replies (``CheckResponder``; a share stays silent, to show reminders, breaches and
  who did not reply).

``due(elapsed, now)`` returns what to send now (a second in: a Red Notice request, a
regional alert and a team request, so that every duty shows in a short run);
``on_opened(participant, opened, now)`` takes whatever a bureau or team opened (their
notice boards fold notices, diffusions and recalls; the world learns Red Notices) and
returns the answers to send. Every message
sent and opened is counted in ``books`` (``agents.sim.desk_books.DeskBooks``). No I/O here:
the simulator sends and reads.

Worked example: ``traffic.due(3.0, now)`` at the first notice step returns a sealed Red
Notice request from some bureau; later FRA opens a ``hit-confirmation-request`` it owns:
``on_opened("FRA", opened, now)`` returns FRA's sealed ``hit-confirmation`` to ``ccc``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from agents.ncb.adapter import NcbAdapter, Opened
from agents.ncb.notice_board import NoticeBoard
from agents.sim.check_traffic import CheckResponder, ScheduledCheck
from agents.sim.desk_books import DeskBooks
from agents.sim.notice_traffic import NoticeTraffic
from agents.sim.screening_sources import ScreeningWorld
from agents.sim.team_traffic import TeamTraffic
from brokers.record_headers import envelope_message_type
from brokers.records import OutboundRecord
from schemas.bodies import Body, NoticeActionBody, NoticeBody, RenewalPromptBody
from schemas.checks import StolenVehicleReport
from schemas.notices import NoticeAction
from schemas.participants import CCC, ParticipantKind, kind_of
from schemas.sealing import RandomBytes

__all__ = ["DeskTraffic", "kind_of_record"]


def kind_of_record(record: OutboundRecord) -> str:
    """The message type a sealed record declares in its CloudEvents type header."""
    return envelope_message_type(record.headers) or "unknown"


@dataclass
class DeskTraffic:
    """Notices, diffusions, teams and checks, sent and answered by the simulated side."""

    ncbs: Mapping[str, NcbAdapter]
    notices: NoticeTraffic
    teams: TeamTraffic
    books: DeskBooks
    rng: random.Random
    world: ScreeningWorld | None = None
    checks: Iterator[ScheduledCheck] | None = None
    imest: NcbAdapter | None = None  # the team screening arrivals, if any
    notice_every: float = 3.0
    vehicle_every: float = 4.0
    renew_share: float = 0.5
    silence: float = 0.1  # share of confirmations and query replies left unanswered
    random_bytes: RandomBytes = os.urandom
    boards: dict[str, NoticeBoard] = field(init=False)
    _responders: dict[str, CheckResponder] = field(init=False)
    _next_check: ScheduledCheck | None = field(default=None, init=False)
    _notice_due: float = field(init=False)
    _team_stepped: float = field(default=0.0, init=False)
    _vehicle_due: float = field(init=False)
    _opened: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.boards = {code: NoticeBoard(adapter) for code, adapter in self.ncbs.items()}
        self._responders = {code: CheckResponder(code, self.silence) for code in self.ncbs}
        self._notice_due = self.notice_every
        self._vehicle_due = self.vehicle_every
        if self.checks is not None:
            self._next_check = next(self.checks, None)

    # --- what to send -------------------------------------------------------------

    def due(self, elapsed: float, now: datetime) -> list[OutboundRecord]:
        """Everything due ``elapsed`` seconds into the run."""
        out: list[OutboundRecord] = []
        if not self._opened and elapsed >= 1.0:  # something of each duty early in a run
            self._opened = True
            opening = self.notices.opening(
                self.ncbs.__getitem__, now=now, random_bytes=self.random_bytes
            )
            out += self._counted([*opening, *self.teams.request(now)], now)
        while elapsed >= self._notice_due:
            self._notice_due += self.notice_every
            out += self._counted(
                self.notices.step(self.ncbs.__getitem__, now=now, random_bytes=self.random_bytes),
                now,
            )
        while elapsed >= self._vehicle_due and self.world is not None:
            self._vehicle_due += self.vehicle_every
            out.append(self._vehicle_report(now))
        if elapsed - self._team_stepped >= 1.0:
            out += self._counted(self.teams.step(now, elapsed - self._team_stepped), now)
            self._team_stepped = elapsed
        while self._next_check is not None and self._next_check.offset <= elapsed:
            check, self._next_check = self._next_check, next(self.checks or iter(()), None)
            adapter = self._sender(check.sender)
            if adapter is None:
                continue
            out.append(self._compose(adapter, check.body, now))
        return out

    def _vehicle_report(self, now: datetime) -> OutboundRecord:
        """A bureau reports a car stolen: a real SMV vehicle, re-registered in that country."""
        assert self.world is not None
        hosts = sorted(
            {d.host for d in self.teams.registry.deployments() if d.team is not None}
            & set(self.ncbs)
        )
        country = (
            self.rng.choice(hosts) if hosts and self.rng.random() < 0.5
            else self.rng.choice(sorted(self.ncbs))
        )  # fmt: skip
        car = self.world.databases.smv.sample(self.rng).model_copy(
            update={
                "registration_country": country,
                "reporting_ncb": country,
                "plate": f"{country}-{self.rng.randrange(10**6):06d}",
                "reported_on": now.date().isoformat(),
            }
        )
        return self._compose(
            self.ncbs[country], StolenVehicleReport(record=car, reported_at=now), now
        )

    def _sender(self, participant: str) -> NcbAdapter | None:
        if self.imest is not None and participant == self.imest.participant:
            return self.imest
        return self.ncbs.get(participant)

    def _compose(self, adapter: NcbAdapter, body: Body, now: datetime) -> OutboundRecord:
        _, record = adapter.compose([CCC], body, now=now, random_bytes=self.random_bytes)
        self.books.on_sent(str(body.type), now, body)
        return record

    def _counted(self, records: list[OutboundRecord], now: datetime) -> list[OutboundRecord]:
        for record in records:
            self.books.on_sent(kind_of_record(record), now)
        return records

    # --- what was opened ----------------------------------------------------------

    def on_opened(self, participant: str, opened: Opened, now: datetime) -> list[OutboundRecord]:
        """Fold one opened message; return the answers ``participant`` sends back."""
        body = opened.body
        self.books.on_opened(participant, opened.header, body, now)
        if kind_of(participant) is not ParticipantKind.NCB:
            return []
        board = self.boards.get(participant)
        if board is not None:
            board.take(opened)
        if isinstance(body, NoticeBody) and self.world is not None:
            self.world.learn(body.notice, now)
        adapter = self.ncbs[participant]
        if isinstance(body, RenewalPromptBody) and body.prompt.requester == participant:
            if self.rng.random() < self.renew_share:
                action = NoticeActionBody(
                    notice_id=body.prompt.notice_id,
                    action=NoticeAction.RENEW,
                    reason="the person is still sought",
                )
                return [self._compose(adapter, action, now)]
            return []
        answer = self._responders[participant].respond(body, now, self.rng)
        return [] if answer is None else [self._compose(adapter, answer, now)]
