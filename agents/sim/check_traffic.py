"""Check traffic for the simulator: NCB checks, IMEST screening, and NCBs answering the CCC.

Theory of operation
-------------------
* ``check_traffic(rng, databases, ncbs=..., team=..., rate=..., hit_share=...)`` yields
  ``ScheduledCheck``s forever, in offset order: flights screened by an IMEST
  (``agents.sim.screening.arriving_travellers``, sent by ``team``) interleaved with single
  travel-document checks from random NCBs and, one time in twenty, a multi-country query
  from an NCB to three others. The caller seals each ``body`` as ``sender`` to ``ccc``
  (``NcbAdapter.compose(["ccc"], body, ...)``) at ``offset`` seconds after its start.
* ``CheckResponder(code, silence)`` is an NCB's side of the exchange: ``respond(body, now,
  rng)`` answers a ``hit-confirmation-request`` (confirmed) or a ``multi-country-query``
  (a reply), or stays silent with probability ``silence``; the body goes to ``ccc``.
* A team is not in the shared keyring: ``enrol_team(keys_dir, team)`` adds its keys to the
  directory hubs load at start, and ``provision_team_inbox`` creates its inbox topic. Do
  both before the hubs start.

Worked example::

    enrol_team(keys_dir, "team:imest-event")
    await provision_team_inbox(settings, "team:imest-event")
    dbs = open_configured(settings, nominal)       # nominal: a NominalIndex kept by a
    for check in check_traffic(random.Random(7), dbs, ncbs=("FRA", "DEU"),  # NominalFeed
                               team="team:imest-event", rate=20.0, hit_share=0.02):
        ...  # at check.offset: adapters[check.sender].compose(["ccc"], check.body, ...)
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from agents.sim.screening import ScreeningSources, arriving_travellers
from brokers.provisioning import ProvisionReport, provision
from brokers.settings import Settings
from schemas.bodies import Body
from schemas.checks import (
    CheckRequest,
    HitConfirmation,
    HitConfirmationRequest,
    MultiCountryQuery,
    MultiCountryReply,
    TravelDocumentItem,
)
from schemas.keys import PrivateIdentity, init_keyring, load_directory, load_identity

__all__ = [
    "CheckResponder",
    "ScheduledCheck",
    "check_traffic",
    "enrol_team",
    "provision_team_inbox",
]

_QUERY_SHARE = 0.05


@dataclass(frozen=True, slots=True)
class ScheduledCheck:
    """A body to seal as ``sender`` to ``ccc``, ``offset`` seconds after the start."""

    offset: float
    sender: str
    body: CheckRequest | MultiCountryQuery


def check_traffic(
    rng: random.Random,
    databases: ScreeningSources,
    *,
    ncbs: Sequence[str],
    team: str,
    rate: float,
    hit_share: float,
    flight_size: tuple[int, int] = (20, 60),
) -> Iterator[ScheduledCheck]:
    """Endless check traffic, about ``rate`` checked items a second (half from the IMEST)."""
    if len(ncbs) < 4:
        raise ValueError("check traffic needs at least four NCBs (queries go to three)")
    flights = arriving_travellers(
        rng, rate / 4, hit_share, databases, asker=team, flight_size=flight_size
    )
    singles = _ncb_checks(rng, databases, ncbs, rate / 2, hit_share)
    merged = heapq.merge(
        (ScheduledCheck(f.offset, team, f.request) for f in flights),
        singles,
        key=lambda check: check.offset,
    )
    yield from merged


def _ncb_checks(
    rng: random.Random,
    databases: ScreeningSources,
    ncbs: Sequence[str],
    rate: float,
    hit_share: float,
) -> Iterator[ScheduledCheck]:
    offset = 0.0
    serial = 0
    while True:
        serial += 1
        offset += rng.expovariate(rate)
        sender = rng.choice(ncbs)
        if rng.random() < _QUERY_SHARE:
            targets = tuple(rng.sample([c for c in ncbs if c != sender], 3))
            yield ScheduledCheck(
                offset,
                sender,
                MultiCountryQuery(
                    query_id=f"mcq-{sender}-{serial}",
                    asker=sender,
                    targets=targets,
                    question="Is the subject of our case file known to your services?",
                ),
            )
            continue
        if rng.random() < hit_share:
            record = databases.sltd.sample(rng)
            number, country = record.number, record.issuing_country
        else:
            number, country = f"Z{rng.randrange(10**9):09d}", rng.choice(ncbs)
        yield ScheduledCheck(
            offset,
            sender,
            CheckRequest(
                correlation_id=f"chk-{sender}-{serial}",
                asker=sender,
                items=(TravelDocumentItem(number=number, issuing_country=country),),
            ),
        )


@dataclass(frozen=True, slots=True)
class CheckResponder:
    """An NCB answering the CCC's hit-confirmation requests and multi-country queries."""

    code: str
    silence: float = 0.1  # share of requests and queries left unanswered

    def respond(self, body: Body, now: datetime, rng: random.Random) -> Body | None:
        """The answer to send to ``ccc``, or None: not for us, or silent this time."""
        if isinstance(body, HitConfirmationRequest) and body.owner == self.code:
            if rng.random() < self.silence:
                return None
            return HitConfirmation(
                confirmation_id=body.confirmation_id,
                owner=self.code,
                confirmed=True,
                note="record verified against the national file",
                confirmed_at=now,
            )
        if isinstance(body, MultiCountryQuery) and self.code in body.targets:
            if rng.random() < self.silence:
                return None
            return MultiCountryReply(
                query_id=body.query_id,
                responder=self.code,
                answer=f"{self.code}: no record of the subject in the national files",
                replied_at=now,
            )
        return None


def enrol_team(keys_dir: Path, team: str) -> PrivateIdentity:
    """Keys for ``team`` beside the others, in the directory hubs load (idempotent)."""
    present = list(load_directory(keys_dir).identities)
    init_keyring(keys_dir, [*present, team] if team not in present else present)
    return load_identity(keys_dir, team)


async def provision_team_inbox(settings: Settings, team: str) -> ProvisionReport:
    """Create ``team``'s inbox topic (idempotent)."""
    if not settings.bootstrap:
        raise ValueError("provisioning a team inbox needs a broker: set I247_BOOTSTRAP")
    topics = settings.topics
    return await provision(settings.bootstrap, topics.inboxes([team]), settings.replication_factor)
