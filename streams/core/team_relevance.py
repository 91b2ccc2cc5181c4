"""Team relevance: which notices and stolen-vehicle updates a team receives in real time.

Theory of operation
-------------------
An IMEST gives "real-time data updates on wanted person notices and stolen motor
vehicles" (seed 001); an IRT needs the same about its incident. The shell adapts each
item to a ``Concern`` (``schemas.teams``): the region it was circulated to, if any, and
the countries it names (a notice's requesting and wanted-in countries, a stolen vehicle's
country of theft). ``relevant_to_team`` then applies one rule:

    a team receives an item while it is **en route or deployed**, and only if the item
    is global (no region, no countries), or circulated to the team's region, or names
    the host country of the team's deployment.

En route counts so that a team lands briefed; an approved team that has not left, and a
closed or declined one, receive nothing. The team's kind does not matter: a DVI team
also gets wanted-person notices, since a victim may be a wanted person.

Worked example: an IMEST deployed to Brazil (Americas) receives a global Red Notice, a
regional alert for the Americas, a stolen-vehicle record from Argentina (an Americas
country, so circulated to the Americas) and a notice naming BRA among other countries;
it does not receive a regional alert for Europe that names only DEU and FRA.
"""

from __future__ import annotations

from schemas.teams import Concern, Deployment, DeploymentState

__all__ = ["RECEIVING_STATES", "relevant_to_team"]

RECEIVING_STATES = frozenset({DeploymentState.EN_ROUTE, DeploymentState.DEPLOYED})


def relevant_to_team(deployment: Deployment, item: Concern) -> bool:
    """Whether ``deployment``'s team should receive ``item`` now (see the module's rule)."""
    if deployment.state not in RECEIVING_STATES:
        return False
    return item.is_global or item.region is deployment.region or deployment.host in item.countries
