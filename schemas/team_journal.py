"""The deployment journal's contract: team events on ``i247.control``, and their fold.

Theory of operation
-------------------
Every change to a deployment is journaled on the control topic as one event whose
``deployment`` field is the whole ``Deployment`` after the change (``TeamEvent`` names
them). ``DeploymentJournal`` folds those events: per request id it keeps the snapshot with
the longest journal (of two as long, the one folded last), so a replayed, duplicated or
late copy of an older snapshot changes nothing and every reader of the topic from its
start ends with the same view whoever wrote the events. ``team-approved`` also carries the
new team's public identity (``PublicIdentity.to_json``): that is how hubs and NCB
adapters learn a team's keys (``fold`` returns the identities it learned, for the caller
to add to its ``Directory``). Hubs extend the fold with revocation and relevance
(``streams.desks.team_registry.TeamRegistry``); the simulator uses it as is.

Worked example: ``team-requested`` (a journal of 1 entry), ``team-approved`` (2 entries,
with the identity of ``team:dvi-fra-nice-20260715``) and ``team-dispatched`` (3), folded
in any order, leave the en-route snapshot and the team's identity; folding the
``team-requested`` copy again changes nothing. ``team_counts`` turns the same events
into the summary's figures.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from schemas.keys import PublicIdentity
from schemas.teams import Deployment, JournalEvent

__all__ = [
    "CE_TYPE_PREFIX",
    "SNAPSHOT_EVENT",
    "DeploymentJournal",
    "TeamEvent",
    "parse_team_event",
    "team_counts",
]


class TeamEvent(StrEnum):
    """Journal events about teams on ``i247.control`` (the ``event`` field)."""

    REQUESTED = "team-requested"  # a request was received; deployment in "requested"
    DECLINED = "team-declined"
    APPROVED = "team-approved"  # the team exists: carries ``identity`` and ``inbox``
    DISPATCHED = "team-dispatched"
    ARRIVED = "team-arrived"
    CONVERTED = "team-converted"  # an IMEST became an IRT
    PHASE_COMPLETED = "team-phase-completed"
    CLOSED = "team-closed"  # from the snapshot's closed_at the team is revoked
    REPORT = "team-report"  # a report accepted (no snapshot unless it completed a phase)
    REFUSED = "team-refused"  # a team message the desk would not take, with the reason


SNAPSHOT_EVENT: dict[JournalEvent, TeamEvent] = {
    JournalEvent.REQUESTED: TeamEvent.REQUESTED,
    JournalEvent.DECLINED: TeamEvent.DECLINED,
    JournalEvent.APPROVED: TeamEvent.APPROVED,
    JournalEvent.DISPATCHED: TeamEvent.DISPATCHED,
    JournalEvent.ARRIVED: TeamEvent.ARRIVED,
    JournalEvent.CONVERTED: TeamEvent.CONVERTED,
    JournalEvent.PHASE_COMPLETED: TeamEvent.PHASE_COMPLETED,
    JournalEvent.CLOSED: TeamEvent.CLOSED,
}
"""The event that journals each state-machine step (its snapshot's last journal entry)."""

CE_TYPE_PREFIX = "int.interpol.i247.control.team-"
"""What the ``ce_type`` header of every team event starts with: readers skip the rest."""


def parse_team_event(value: bytes, ce_type: bytes | None = None) -> dict[str, Any] | None:
    """The JSON of a control-topic record if it is a team event, else None (unparsed
    when its ``ce_type`` header already says it is another event)."""
    if ce_type is not None and not ce_type.decode(errors="replace").startswith(CE_TYPE_PREFIX):
        return None
    try:
        event = json.loads(value)
    except ValueError:
        return None
    if not isinstance(event, dict) or not str(event.get("event", "")).startswith("team-"):
        return None
    return event


class DeploymentJournal:
    """Deployments by request id and team identities, as folded so far."""

    __slots__ = ("_by_team", "_deployments", "_identities")

    def __init__(self) -> None:
        self._deployments: dict[str, Deployment] = {}
        self._by_team: dict[str, str] = {}
        self._identities: dict[str, PublicIdentity] = {}

    def record(self, deployment: Deployment) -> bool:
        """Keep ``deployment`` unless a snapshot with a longer journal is already known.

        Of two snapshots as long (two hubs moved the same deployment at once) the one
        folded last wins, so every reader of the log ends on the same one.
        """
        known = self._deployments.get(deployment.request_id)
        if known is not None and len(known.journal) > len(deployment.journal):
            return False
        self._deployments[deployment.request_id] = deployment
        if deployment.team is not None:
            self._by_team[deployment.team] = deployment.request_id
        return True

    def learn(self, identity: PublicIdentity) -> bool:
        """Remember a team's public keys; True when they are new (or replaced)."""
        known = self._identities.get(identity.participant)
        if known is not None and known.to_json() == identity.to_json():
            return False
        self._identities[identity.participant] = identity
        return True

    def fold(self, event: Mapping[str, Any]) -> list[PublicIdentity]:
        """Apply one control-journal event; returns the team identities it taught us.

        Raises ``ValueError`` (pydantic's ``ValidationError``, ``KeyFileError``) or
        ``KeyError`` for a team event that does not parse; other events are ignored.
        """
        if not str(event.get("event", "")).startswith("team-"):
            return []
        snapshot = event.get("deployment")
        if snapshot is not None:
            self.record(Deployment.model_validate_json(json.dumps(snapshot)))
        identity = event.get("identity")
        team = event.get("team")
        if event.get("event") == TeamEvent.APPROVED and identity is not None and team:
            public = PublicIdentity.from_json(str(team), identity)
            if self.learn(public):
                return [public]
        return []

    def deployments(self) -> tuple[Deployment, ...]:
        """Every deployment known, closed and declined ones included (for the rules)."""
        return tuple(self._deployments.values())

    def get(self, request_id: str) -> Deployment | None:
        return self._deployments.get(request_id)

    def of_team(self, team: str) -> Deployment | None:
        """The deployment of ``team``, or None for a team id never issued."""
        request_id = self._by_team.get(team)
        return None if request_id is None else self._deployments[request_id]

    def identities(self) -> tuple[PublicIdentity, ...]:
        """The public keys of every team ever approved (closed teams' keys stay, for audit)."""
        return tuple(self._identities.values())

    def __len__(self) -> int:
        return len(self._deployments)


_COUNTED = {
    "requested": TeamEvent.REQUESTED,
    "declined": TeamEvent.DECLINED,
    "approved": TeamEvent.APPROVED,
    "arrived": TeamEvent.ARRIVED,
    "converted": TeamEvent.CONVERTED,
    "closed": TeamEvent.CLOSED,
}


def team_counts(events: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Distinct deployments per step, reports and refusals, from control-journal events.

    Counted by request id (reports and refusals by message id), so a step journaled twice,
    by two hubs around a handover, counts once. ``approved`` is the number of teams
    created (deployed, in the summary's words); ``arrived`` of teams on the ground.
    """
    seen: dict[str, set[str]] = {name: set() for name in (*_COUNTED, "reports", "refused")}
    by_event = {event: name for name, event in _COUNTED.items()}
    for event in events:
        kind = event.get("event")
        if kind in by_event:
            seen[by_event[kind]].add(str(event.get("request_id")))
        elif kind == TeamEvent.REPORT:
            seen["reports"].add(str(event.get("message_id")))
        elif kind == TeamEvent.REFUSED:
            seen["refused"].add(str(event.get("message_id")))
    return {name: len(ids) for name, ids in seen.items()}
