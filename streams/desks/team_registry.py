"""What a hub knows about response teams: the deployment journal, revocations, relevance.

Theory of operation
-------------------
``TeamRegistry`` is the fold of the team events on ``i247.control``
(``schemas.team_journal.DeploymentJournal``: snapshots by request id, team identities)
plus what a hub decides with it. A closed snapshot revokes the team in ``roster``
(``TeamRoster``) from its ``closed_at``, for good: no later fold undoes a revocation, and
intake refuses new traffic for the team (``recipient-revoked``). Every hub folds the
topic from its start on start (``HubRuntime``), so the registry survives a change of hub.

``teams_concerned(item, now)`` is the seam for the notices and stolen-vehicle desks: the
teams to copy an item to, by ``relevant_to_team``, minus teams revoked or past their end.

Worked example: a DVI team deployed at Nice (Europe) is concerned by a global item, a
regional alert for Europe, or an item naming FRA; not by one for the Americas naming only
BRA; nor by anything once its ``team-closed`` snapshot is folded.
"""

from __future__ import annotations

from datetime import datetime

from brokers.records import ReceivedRecord
from schemas.keys import KeyFileError, PublicIdentity
from schemas.registry import Region
from schemas.team_journal import DeploymentJournal, parse_team_event
from schemas.teams import Concern, Deployment, DeploymentState
from streams.core.clocks import as_utc
from streams.core.deployments import TeamRoster
from streams.core.team_relevance import RECEIVING_STATES, relevant_to_team

__all__ = ["TeamRegistry"]


class TeamRegistry(DeploymentJournal):
    """The deployment journal as folded by a hub, with revocations and the relevance seam."""

    __slots__ = ("roster",)

    def __init__(self) -> None:
        super().__init__()
        self.roster = TeamRoster()

    def record(self, deployment: Deployment) -> bool:
        """Keep the snapshot (``DeploymentJournal.record``); a closed one revokes the team."""
        if deployment.state is DeploymentState.CLOSED and deployment.team is not None:
            assert deployment.closed_at is not None  # the model guarantees it once closed
            self.roster.revoke(deployment.team, at=deployment.closed_at, host=deployment.host)
        return super().record(deployment)

    def fold_record(self, record: ReceivedRecord) -> list[PublicIdentity]:
        """``fold`` for a record of the control topic; other events are skipped unparsed."""
        event = parse_team_event(record.value, record.header("ce_type"))
        if event is None:
            return []
        try:
            return self.fold(event)
        except (ValueError, KeyFileError, KeyError, TypeError) as error:
            raise ValueError(
                f"team event at {record.origin} does not parse ({error}); it was skipped"
            ) from error

    def is_revoked(self, team: str, at: datetime) -> bool:
        return self.roster.is_revoked(team, at)

    def teams_in_scope(self, now: datetime) -> list[tuple[str, Region]]:
        """Teams en route or deployed, not revoked, before their end, with their region:
        the notices desk copies a worldwide notice to all of them, a regional one to its
        region's (``streams.core.notice_lifecycle.broadcast_recipients``)."""
        now = as_utc(now)
        return sorted(
            (d.team, d.region)
            for d in self.deployments()
            if d.team is not None
            and d.state in RECEIVING_STATES
            and not self.roster.is_revoked(d.team, now)
            and now < d.request.ends_at
        )

    def teams_concerned(self, item: Concern, now: datetime) -> list[str]:
        """The teams that should receive ``item`` now, sorted: the notices desk's seam.

        En route or deployed teams whose region or host the item concerns (or every one,
        for a global item), not revoked at ``now`` and not past their ``ends_at``.
        """
        now = as_utc(now)
        return sorted(
            d.team
            for d in self.deployments()
            if d.team is not None
            and relevant_to_team(d, item)
            and not self.roster.is_revoked(d.team, now)
            and now < d.request.ends_at
        )
