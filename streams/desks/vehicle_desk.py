"""The stolen-vehicle desk: a bureau's report circulated in real time to the teams it concerns.

Theory of operation
-------------------
An NCB sends a ``stolen-vehicle-report`` to ``ccc`` (the record's ``reporting_ncb`` must
be the sender). The vehicle concerns the region of its registration country and the two
countries it names (registration and reporting); ``TeamRegistry.teams_concerned`` picks
the teams en route or deployed there (``streams.core.team_relevance``: global, same region, or
naming the team's host). Each gets a ``stolen-vehicle-update`` sealed by the hub; the
journal says ``vehicle-circulated`` with the teams reached (none is a valid answer: no
team works there). A report the desk will not take is journaled ``vehicle-report-refused``.

The report is circulated, not added to the seeded SMV database the checks consult; the
lanes keep it for audit and replay.

Worked example: an IMEST deployed in Brazil (Americas); ARG reports a car registered in
ARG: the IMEST gets the update (same region). DEU reports a car registered in DEU: no
team of the Americas gets it; ``vehicle-circulated`` lists no team.
"""

from __future__ import annotations

import structlog

from schemas.checks import StolenVehicleReport, StolenVehicleUpdate
from schemas.header import MessageType, Precedence
from schemas.journal import VehicleCirculated, VehicleReportRefused
from schemas.registry import MemberRegistry, UnknownMember, default_registry
from schemas.sealing import OpenedMessage
from schemas.teams import Concern
from streams.desks.context import DeskContext
from streams.desks.effects import Effect, Journal, Send
from streams.desks.team_registry import TeamRegistry

__all__ = ["VehicleDesk", "vehicle_concern"]

log = structlog.get_logger("i247.vehicles")


def vehicle_concern(report: StolenVehicleReport, members: MemberRegistry) -> Concern:
    """Where a stolen vehicle matters: its registration country's region and both countries."""
    record = report.record
    try:
        region = members.get(record.registration_country).region
    except UnknownMember:
        region = None
    countries = tuple(dict.fromkeys((record.registration_country, record.reporting_ncb)))
    return Concern(region=region, countries=countries)


class VehicleDesk:
    """See the module docstring; register with the hub's ``DeskShell.register``."""

    handles = frozenset({MessageType.STOLEN_VEHICLE_REPORT})

    def __init__(self, teams: TeamRegistry, members: MemberRegistry | None = None) -> None:
        self.teams = teams
        self.members = members or default_registry()

    def handle(self, ctx: DeskContext, opened: OpenedMessage) -> list[Effect]:
        body, header, now = opened.body, opened.header, ctx.now
        if not isinstance(body, StolenVehicleReport):
            return [
                self._refused(ctx, header.message_id, header.sender, f"not a report: {body.type}")
            ]
        if body.record.reporting_ncb != header.sender:
            reason = f"reporting NCB {body.record.reporting_ncb} is not the sender"
            return [self._refused(ctx, header.message_id, header.sender, reason)]
        concerned = self.teams.teams_concerned(vehicle_concern(body, self.members), now)
        reachable = tuple(t for t in concerned if t in ctx.directory)
        update = StolenVehicleUpdate(
            record=body.record, reported_at=body.reported_at, circulated_at=now
        )
        out: list[Effect] = []
        if reachable:
            out.append(
                Send(reachable, update, Precedence.PRIORITY, correlation_id=header.message_id)
            )
        log.info(
            "vehicle-circulated",
            message_id=header.message_id,
            trace_id=header.trace_id,
            vin=body.record.vin,
            teams=list(reachable),
        )
        event = VehicleCirculated(
            hub=ctx.hub,
            time=now,
            message_id=header.message_id,
            vin=body.record.vin,
            reporter=header.sender,
            registration_country=body.record.registration_country,
            teams=reachable,
            unreachable=tuple(t for t in concerned if t not in reachable),
        )
        return [*out, Journal(event, header.message_id)]

    def tick(self, ctx: DeskContext) -> list[Effect]:
        return []

    def _refused(self, ctx: DeskContext, message_id: str, sender: str, reason: str) -> Journal:
        log.info("vehicle-report-refused", message_id=message_id, sender=sender, reason=reason)
        event = VehicleReportRefused(
            hub=ctx.hub, time=ctx.now, message_id=message_id, sender=sender, reason=reason
        )
        return Journal(event, message_id)
