"""Response teams as contracts: requests, decisions, deployments, reports, team ids.

Theory of operation
-------------------
An NCB asks the CCC for a team with a ``TeamRequest`` (kind, place, dates, the named event
for an IMEST, the incident for an IRT). The CCC answers with a ``TeamDecision``: approved
with a new team id, or declined with reason codes and a sentence saying what to change
(``streams.core.team_approval``). An approved request becomes a ``Deployment``, one record per
team, moved through its states by ``streams.core.deployments``::

    requested -> approved -> en_route -> deployed -> closed
             \\-> declined          (approved, en_route and deployed may also close early)

A team is a participant of its own, ``team:<slug>`` (``new_team_id``), with an inbox
topic (``TopicCatalog.inbox``) and keys (``schemas.keys.generate_identity``). The id is
chosen once and kept: an IMEST converted to an IRT keeps it, and a closed team's id is
never reused, since its keys are revoked for new traffic.

A disaster team (``irt-dvi``) reports by DVI phase, in the order of ``DVI_PHASES``:
scene examination, post-mortem data analysis, ante-mortem data analysis, reconciliation
of information (the seeds' names). A phase is *complete* once the team has sent one
report for it with ``phase_complete`` set; a report for a later phase is refused until
then (``streams.core.deployments.accept_report``).

Worked example: FRA asks for a DVI team at Nice from 2026-07-15; approved, it becomes
``team:dvi-fra-nice-20260715``, inbox ``i247.team.dvi-fra-nice-20260715.inbox``. A second
team for the same place and day gets ``team:dvi-fra-nice-20260715-2``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from schemas.header import MessageId, UtcTimestamp
from schemas.participants import ParticipantId, ParticipantKind, kind_of
from schemas.registry import MemberRegistry, Region

__all__ = [
    "ACTIVE_STATES",
    "DVI_PHASES",
    "Concern",
    "DeclineReason",
    "Deployment",
    "DeploymentState",
    "DviPhase",
    "JournalEntry",
    "JournalEvent",
    "Place",
    "TeamDecision",
    "TeamId",
    "TeamKind",
    "TeamReport",
    "TeamRequest",
    "new_team_id",
]

Iso3 = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Line = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=60_000)]
CountName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
_TEAM = re.compile(r"^team:[a-z0-9][a-z0-9-]{1,47}$")


TeamId = Annotated[str, StringConstraints(pattern=_TEAM.pattern)]


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


class TeamKind(StrEnum):
    """The three teams the CCC deploys (seed 001: crime team, disaster team, IMEST)."""

    IRT_CRIME = "irt-crime"  # Incident Response Team: investigative support
    IRT_DVI = "irt-dvi"  # Incident Response Team: disaster victim identification
    IMEST = "imest"  # Major Event Support Team

    @property
    def is_irt(self) -> bool:
        return self is not TeamKind.IMEST

    @property
    def slug(self) -> str:
        """The kind's word in team ids: ``irt``, ``dvi``, ``imest``."""
        return _KIND_SLUG[self]


_KIND_SLUG = {TeamKind.IRT_CRIME: "irt", TeamKind.IRT_DVI: "dvi", TeamKind.IMEST: "imest"}


class DviPhase(StrEnum):
    """The four phases of disaster victim identification, in the order they are done."""

    SCENE_EXAMINATION = "scene-examination"
    POST_MORTEM = "post-mortem-data-analysis"
    ANTE_MORTEM = "ante-mortem-data-analysis"
    RECONCILIATION = "reconciliation-of-information"

    @property
    def number(self) -> int:
        """1 for the scene examination up to 4 for reconciliation."""
        return DVI_PHASES.index(self) + 1


DVI_PHASES: tuple[DviPhase, ...] = tuple(DviPhase)


class Place(_Model):
    """Where a team works: the host country (its NCB's code) and a place name."""

    country: Iso3
    name: Line


class TeamRequest(_Model):
    """An NCB (or a CCC hub on its behalf) asks for a team; ``requester`` is the header's sender.

    ``starts_at`` is when the team is wanted on the ground (for an IMEST, the event's
    start), not when an incident happened.
    """

    requester: ParticipantId
    kind: TeamKind
    place: Place
    starts_at: UtcTimestamp
    ends_at: UtcTimestamp
    event: Line | None = None  # the named major event; an IMEST needs one
    incident: Text | None = None  # what happened; an IRT needs one (for DVI: the disaster)
    size: Annotated[int, Field(ge=1, le=60)] = 6
    specialities: Annotated[tuple[Line, ...], Field(max_length=20)] = ()

    @property
    def host(self) -> str:
        """The host country's NCB participant id."""
        return self.place.country

    def region(self, registry: MemberRegistry) -> Region:
        """The host's INTERPOL region (raises ``UnknownMember`` for a non-member)."""
        return registry.get(self.place.country).region


class DeclineReason(StrEnum):
    """Why a team request is declined; docs/team-approval.md explains each."""

    UNKNOWN_COUNTRY = "unknown-country"
    NOT_HOST_NCB = "not-host-ncb"
    STARTS_IN_PAST = "starts-in-past"
    ENDS_BEFORE_START = "ends-before-start"
    TOO_LONG = "too-long"
    TOO_FAR_AHEAD = "too-far-ahead"
    EVENT_MISSING = "event-missing"
    IMEST_TOO_LATE = "imest-too-late"
    INCIDENT_MISSING = "incident-missing"
    DUPLICATE = "duplicate-deployment"
    CAPACITY = "capacity"


class TeamDecision(_Model):
    """The CCC's answer: approved with the new team's id, or declined with reasons."""

    approved: bool
    team: TeamId | None = None
    reasons: tuple[DeclineReason, ...] = ()
    text: Text

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.approved and (self.team is None or self.reasons):
            raise ValueError("an approval names its team and gives no decline reasons")
        if not self.approved and (self.team is not None or not self.reasons):
            raise ValueError("a decline names no team and gives at least one reason")
        return self


class DeploymentState(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    EN_ROUTE = "en_route"
    DEPLOYED = "deployed"
    CLOSED = "closed"
    DECLINED = "declined"


ACTIVE_STATES = frozenset(
    {DeploymentState.APPROVED, DeploymentState.EN_ROUTE, DeploymentState.DEPLOYED}
)
"""States in which a team exists and holds live keys; they count against the cap."""


class JournalEvent(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    DECLINED = "declined"
    DISPATCHED = "dispatched"
    ARRIVED = "arrived"
    CONVERTED = "converted"
    PHASE_COMPLETED = "phase-completed"
    CLOSED = "closed"


class JournalEntry(_Model):
    """One thing that happened to a deployment, for the audit trail."""

    at: UtcTimestamp
    event: JournalEvent
    detail: Line


class Deployment(_Model):
    """One team's life, from the request to its closing; moved by ``streams.core.deployments``.

    ``request_id`` (the team-request message id) is the key throughout; ``team`` is set
    from approval on. ``kind`` starts as the request's and changes once if an IMEST is
    converted to an IRT.
    """

    request_id: MessageId
    request: TeamRequest
    kind: TeamKind
    region: Region
    state: DeploymentState
    team: TeamId | None = None
    requested_at: UtcTimestamp
    approved_at: UtcTimestamp | None = None
    arrival_earliest: UtcTimestamp | None = None  # the window the CCC announces
    arrival_latest: UtcTimestamp | None = None
    expected_arrival: UtcTimestamp | None = None  # the simulation's draw inside the window
    arrived_at: UtcTimestamp | None = None
    closed_at: UtcTimestamp | None = None
    incident: Text | None = None  # the request's, or the crisis that converted an IMEST
    declined: tuple[DeclineReason, ...] = ()
    dvi_complete: tuple[DviPhase, ...] = ()  # always a prefix of DVI_PHASES
    journal: tuple[JournalEntry, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        teamed = self.state in ACTIVE_STATES or self.state is DeploymentState.CLOSED
        if teamed and (self.team is None or self.approved_at is None):
            raise ValueError(f"a deployment in state {self.state} has a team and approved_at")
        if not teamed and self.team is not None:
            raise ValueError(f"a deployment in state {self.state} has no team yet")
        if self.dvi_complete != DVI_PHASES[: len(self.dvi_complete)]:
            raise ValueError("completed DVI phases must be the first ones, in order")
        return self

    @property
    def host(self) -> str:
        """The host country's NCB."""
        return self.request.place.country

    @property
    def place(self) -> Place:
        return self.request.place

    @property
    def event(self) -> str | None:
        return self.request.event

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


class TeamReport(_Model):
    """A team's report from the field; a DVI team's names its phase."""

    team: TeamId
    phase: DviPhase | None = None
    phase_complete: bool = False  # the team declares ``phase`` finished with this report
    text: Text
    counts: Annotated[dict[CountName, Annotated[int, Field(ge=0)]], Field(max_length=32)] = Field(
        default_factory=dict
    )  # e.g. {"database_checks": 1200, "victims_identified": 14}

    @model_validator(mode="after")
    def _phase_flag(self) -> Self:
        if self.phase_complete and self.phase is None:
            raise ValueError("phase_complete needs the phase it completes")
        return self


class Concern(_Model):
    """Where an item (a notice, a stolen-vehicle record) matters, for team relevance.

    ``region`` None and no ``countries`` means the item is global.
    """

    region: Region | None = None
    countries: Annotated[tuple[Iso3, ...], Field(max_length=256)] = ()

    @property
    def is_global(self) -> bool:
        return self.region is None and not self.countries


_SLUG_MAX = 48  # characters after "team:" (schemas.participants)
_SUFFIX_MAX = 1_000


def _slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


def new_team_id(kind: TeamKind, place: Place, starts_at: datetime, taken: Collection[str]) -> str:
    """A fresh ``team:<kind>-<country>-<place>-<yyyymmdd>[-n]`` not in ``taken``.

    ``taken`` must hold every team id ever issued, closed ones included, since a closed
    team's id stays revoked. The place is transliterated to ASCII and shortened so the id
    fits the 48-character slug; a place with no Latin letters is left out.
    """
    head = f"{kind.slug}-{place.country.lower()}"
    day = starts_at.strftime("%Y%m%d")
    room = _SLUG_MAX - len(head) - len(day) - len("--") - len(f"-{_SUFFIX_MAX}")
    place_slug = _slugify(place.name)[:room].strip("-")
    base = "-".join(part for part in (head, place_slug, day) if part)
    for n in range(1, _SUFFIX_MAX + 1):
        candidate = f"team:{base}" if n == 1 else f"team:{base}-{n}"
        if candidate not in taken:
            assert kind_of(candidate) is ParticipantKind.TEAM  # our bug if the form is wrong
            return candidate
    raise ValueError(
        f"{_SUFFIX_MAX} teams already named team:{base}; pick another place name or date"
    )
