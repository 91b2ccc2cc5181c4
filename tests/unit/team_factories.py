"""Builders for response-team tests: a valid request, and deployments walked to any state.

``make_request()`` is FRA asking, at ``NOW``, for an IMEST at Paris for the Tour de France
finale, 25 days ahead, for 5 days; a test names only what it is about.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import count
from typing import Any

from schemas.registry import MemberRegistry, default_registry
from schemas.teams import (
    DeclineReason,
    Deployment,
    DeploymentState,
    Place,
    TeamDecision,
    TeamKind,
    TeamRequest,
)
from streams.core.deployments import arrive, close, decide, dispatch, receive_request

__all__ = ["NOW", "make_deployment", "make_request", "registry"]

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
_IDS = count(1)


@cache
def registry() -> MemberRegistry:
    return default_registry()


def make_request(**overrides: Any) -> TeamRequest:
    fields: dict[str, Any] = {
        "requester": "FRA",
        "kind": TeamKind.IMEST,
        "place": Place(country="FRA", name="Paris"),
        "starts_at": NOW + timedelta(days=25),
        "ends_at": NOW + timedelta(days=30),
        "event": "Tour de France finale",
    }
    if overrides.get("kind", TeamKind.IMEST).is_irt:
        fields["event"] = None
        fields["incident"] = "an attack on a crowd"
    fields.update(overrides)
    return TeamRequest(**fields)


def make_deployment(
    state: DeploymentState,
    request: TeamRequest | None = None,
    *,
    team: str = "team:imest-fra-paris-20260726",
    at: datetime = NOW,
    scale: float = 1.0,
) -> Deployment:
    """A deployment walked through the state machine to ``state``, one minute per step."""
    request = request or make_request()
    request_id = f"00000000-0000-4000-8000-{next(_IDS):012x}"
    d = receive_request(request, request_id=request_id, at=at, registry=registry())
    if state is DeploymentState.REQUESTED:
        return d
    step = timedelta(minutes=1)
    if state is DeploymentState.DECLINED:
        declined = TeamDecision(approved=False, reasons=(DeclineReason.CAPACITY,), text="full")
        return decide(d, declined, at=at + step)
    d = decide(d, TeamDecision(approved=True, team=team, text="ok"), at=at + step, scale=scale)
    if state is DeploymentState.APPROVED:
        return d
    if state is DeploymentState.CLOSED:
        return close(d, at=at + 2 * step, reason="called off")
    d = dispatch(d, at=at + 2 * step, rng_fraction=0.5)
    if state is DeploymentState.EN_ROUTE:
        return d
    assert d.expected_arrival is not None
    return arrive(d, at=d.expected_arrival)
