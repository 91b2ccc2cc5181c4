"""Hub liveness from heartbeats, as a pure function of what was seen and when.

Theory of operation: each hub publishes a ``Heartbeat`` every second or so. An observer
keeps one ``HubView`` per hub, updated by ``observe`` with the observer's *own* receive
time, so clock skew between hubs never matters; the hub's sequence number drops stale or
reordered beats within one ``incarnation`` (one process run). ``assess`` then says ALIVE or DEAD:

* DEAD once no beat was received for ``timeout`` (default 3 s: three missed beats), or
  at once on a beat that says it is ``leaving`` (a graceful stop);
* a DEAD hub is ALIVE again only after ``revive_after`` consecutive beats each received
  within ``timeout`` of the previous one, so a flapping hub does not flap its lanes.

Worked example (timeout 3 s, revive after 2): beats received at t=0, 1, 2; ``assess`` at
t=5.5 says DEAD (3.5 s silent); one beat at t=6 leaves it DEAD (streak 1); a beat at t=7
makes it ALIVE (streak 2).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from schemas.heartbeat import Heartbeat

__all__ = ["Heartbeat", "HubView", "Liveness", "LivenessPolicy", "assess", "observe"]


class Liveness(StrEnum):
    ALIVE = "alive"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class LivenessPolicy:
    timeout: timedelta = timedelta(seconds=3)
    revive_after: int = 2


@dataclass(frozen=True, slots=True)
class HubView:
    """One observer's memory of one hub."""

    site: str
    last_received: datetime
    last_sequence: int
    streak: int  # consecutive beats, each within the timeout of the previous
    declared: Liveness = Liveness.ALIVE
    incarnation: str = ""


def observe(
    view: HubView | None, beat: Heartbeat, received_at: datetime, policy: LivenessPolicy
) -> HubView:
    """Fold one received beat into the view; stale or repeated sequence numbers are ignored."""
    if view is None:
        declared = Liveness.DEAD if beat.leaving else Liveness.ALIVE
        return HubView(beat.site, received_at, beat.sequence, 1, declared, beat.incarnation)
    if beat.incarnation == view.incarnation and beat.sequence <= view.last_sequence:
        return view
    continuous = received_at - view.last_received <= policy.timeout
    streak = view.streak + 1 if continuous else 1
    declared = view.declared
    if beat.leaving:
        declared, streak = Liveness.DEAD, 0
    elif declared is Liveness.DEAD and streak >= policy.revive_after:
        declared = Liveness.ALIVE
    elif declared is Liveness.ALIVE and not continuous:
        declared = Liveness.DEAD if policy.revive_after > 1 else Liveness.ALIVE
    return replace(
        view,
        last_received=received_at,
        last_sequence=beat.sequence,
        streak=streak,
        declared=declared,
        incarnation=beat.incarnation,
    )


def assess(view: HubView | None, now: datetime, policy: LivenessPolicy) -> Liveness:
    """ALIVE or DEAD at ``now`` (observer's clock); a hub never heard from is DEAD."""
    if view is None or now - view.last_received > policy.timeout:
        return Liveness.DEAD
    return view.declared
