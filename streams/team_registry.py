"""What the CCC knows about response teams, folded from the deployment journal on ``i247.control``.

Theory of operation
-------------------
Every change to a deployment is journaled on the control topic as one event whose
``deployment`` field is the whole ``Deployment`` after the change (``TeamEvent`` names
them). A registry is the fold of those events: per request id it keeps the snapshot with
the longest journal, so a replayed, duplicated or late copy of an older snapshot changes
nothing, and every hub that reads the topic from its start ends with the same registry
whoever wrote the events. ``team-approved`` also carries the new team's public identity
(``PublicIdentity.to_json``): that is how hubs and NCB adapters learn a team's keys
(``fold`` returns the identities it learned, for the caller to add to its ``Directory``).
A closed snapshot revokes the team in ``roster`` (``TeamRoster``) from its ``closed_at``.

``teams_concerned(item, now)`` is the seam for the notices and stolen-vehicle desks: the
teams to copy an item to, by ``relevant_to_team``, minus teams revoked or past their end.

Worked example: the events ``team-requested`` (journal of 1 entry), ``team-approved``
(2 entries, with the identity of ``team:dvi-fra-nice-20260715``), ``team-dispatched`` (3)
folded in any order leave the en-route snapshot and the team's identity; folding the
``team-requested`` copy again changes nothing; a ``team-closed`` snapshot revokes the team
(for good: a revocation is never undone by a later fold).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from brokers.records import ReceivedRecord
from schemas.keys import KeyFileError, PublicIdentity
from schemas.teams import Concern, Deployment, DeploymentState, JournalEvent
from streams.clocks import as_utc
from streams.deployments import TeamRoster
from streams.team_relevance import relevant_to_team

__all__ = [
    "CE_TYPE_PREFIX",
    "SNAPSHOT_EVENT",
    "TeamEvent",
    "TeamRegistry",
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


class TeamRegistry:
    """Deployments by request id, team identities and revocations, as folded so far."""

    __slots__ = ("_by_team", "_deployments", "_identities", "roster")

    def __init__(self) -> None:
        self._deployments: dict[str, Deployment] = {}
        self._by_team: dict[str, str] = {}
        self._identities: dict[str, PublicIdentity] = {}
        self.roster = TeamRoster()

    # --- folding ------------------------------------------------------------------

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
            if deployment.state is DeploymentState.CLOSED and deployment.closed_at is not None:
                self.roster.revoke(deployment.team, at=deployment.closed_at, host=deployment.host)
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

        Raises ``ValueError`` (pydantic's ``ValidationError`` or ``KeyFileError``) for a
        team event that does not parse; events of other kinds are ignored.
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

    def fold_record(self, record: ReceivedRecord) -> list[PublicIdentity]:
        """``fold`` for a record of the control topic; skips non-team events unparsed."""
        kind = record.header("ce_type")
        if kind is not None and not kind.decode(errors="replace").startswith(CE_TYPE_PREFIX):
            return []
        try:
            event = json.loads(record.value)
        except ValueError:
            return []
        if not isinstance(event, dict):
            return []
        try:
            return self.fold(event)
        except (ValidationError, KeyFileError, KeyError, TypeError) as error:
            raise ValueError(
                f"team event at {record.origin} does not parse ({error}); it was skipped"
            ) from error

    # --- reading ------------------------------------------------------------------

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

    def is_revoked(self, team: str, at: datetime) -> bool:
        return self.roster.is_revoked(team, at)

    def teams_concerned(self, item: Concern, now: datetime) -> list[str]:
        """The teams that should receive ``item`` now, sorted: the notices desk's seam.

        En route or deployed teams whose region or host the item concerns (or every one,
        for a global item), not revoked at ``now`` and not past their ``ends_at``.
        """
        now = as_utc(now)
        return sorted(
            d.team
            for d in self._deployments.values()
            if d.team is not None
            and relevant_to_team(d, item)
            and not self.roster.is_revoked(d.team, now)
            and now < d.request.ends_at
        )

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
