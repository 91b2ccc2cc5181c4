"""Failovers, failbacks and duty changes, read back from the hubs' journal events.

The demo kills and restores hubs at known times; the hubs journal what they saw and did
(``hub-dead``, ``lease-claimed``, ``first-output``). ``takeovers`` pairs each disturbance
with its consequences: how long until another hub declared the victim dead (detection)
and until a stand-in first delivered its work (takeover), or, for a restore, until the
hub delivered its own work again (failback).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from schemas.header import format_timestamp
from schemas.journal import FirstOutput, HubDead, JournalEventModel, LeaseClaimed
from schemas.participants import hub_id

__all__ = [
    "Disturbance",
    "InvalidSchedule",
    "Takeover",
    "duty_changes",
    "parse_schedule",
    "takeovers",
]

INTAKE = "intake"  # the unit whose claims are duty changes (streams.core.duty.INTAKE)

_AT = re.compile(r"^(?P<site>[a-z-]+)@(?P<seconds>\d+(\.\d+)?)s?$")


class InvalidSchedule(ValueError):
    """A --fail-hub / --restore-hub value that is not SITE@Ns."""


@dataclass(frozen=True, slots=True)
class Disturbance:
    kind: str  # "fail" or "restore"
    site: str
    after: float  # seconds into the run


def parse_schedule(kind: str, values: Iterable[str], sites: Iterable[str]) -> list[Disturbance]:
    known = set(sites)
    plan = []
    for value in values:
        match = _AT.match(value.strip())
        if not match or match["site"] not in known:
            raise InvalidSchedule(
                f"--{kind}-hub {value!r}: write SITE@Ns with SITE one of {', '.join(sorted(known))}"
            )
        plan.append(Disturbance(kind, match["site"], float(match["seconds"])))
    return plan


@dataclass(frozen=True, slots=True)
class Takeover:
    kind: str  # failover or failback
    site: str  # the hub that failed or came back
    at: float  # seconds into the run
    by: str | None  # who took the work
    detection_s: float | None
    claimed_s: float | None  # the stand-in (or the returning hub) holds the work
    takeover_s: float | None  # ... and has delivered from it (only if traffic was waiting)
    units: int


def takeovers(
    events: Sequence[JournalEventModel], done: list[tuple[Disturbance, float]]
) -> list[Takeover]:
    """One row per disturbance carried out (``done``: what and the wall time it happened)."""
    deaths = [e for e in events if isinstance(e, HubDead)]
    claims_made = [e for e in events if isinstance(e, LeaseClaimed)]
    outputs = [e for e in events if isinstance(e, FirstOutput)]
    rows = []
    for disturbance, when in done:
        if disturbance.kind == "fail":
            dead = [
                t
                for e in deaths
                if e.site == disturbance.site and (t := e.declared_at.timestamp()) >= when
            ]
            claims = [
                e
                for e in claims_made
                if e.reason == "failover"
                and e.previous_owner == disturbance.site
                and e.claimed_at.timestamp() >= when
            ]
            firsts = [
                t
                for e in outputs
                if e.reason == "failover" and e.previous_owner == disturbance.site
                if (t := e.at.timestamp()) >= when
            ]
            kind = "failover"
        else:
            dead = []
            hub = hub_id(disturbance.site)
            claims = [
                e
                for e in claims_made
                if e.reason == "failback" and e.hub == hub and e.claimed_at.timestamp() >= when
            ]
            firsts = [
                t
                for e in outputs
                if e.reason == "failback" and e.hub == hub
                if (t := e.at.timestamp()) >= when
            ]
            kind = "failback"
        by = sorted({e.hub for e in claims})
        rows.append(
            Takeover(
                kind=kind,
                site=disturbance.site,
                at=disturbance.after,
                by=", ".join(by) or None,
                detection_s=min(dead) - when if dead else None,
                claimed_s=min(e.confirmed_at.timestamp() for e in claims) - when
                if claims
                else None,
                takeover_s=min(firsts) - when if firsts else None,
                units=len(claims),
            )
        )
    return rows


def duty_changes(events: Sequence[JournalEventModel]) -> list[tuple[str, str, str]]:
    """(time, hub, reason) of every claim of intake: who held the duty, from when."""
    return [
        (format_timestamp(e.confirmed_at), e.hub, e.reason)
        for e in events
        if isinstance(e, LeaseClaimed) and e.unit == INTAKE
    ]
