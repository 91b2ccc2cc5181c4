"""Failovers, failbacks and duty changes, read back from the hubs' journal events.

The demo kills and restores hubs at known times; the hubs journal what they saw and did
(``hub-dead``, ``lease-claimed``, ``first-output``). ``takeovers`` pairs each disturbance
with its consequences: how long until another hub declared the victim dead (detection)
and until a stand-in first delivered its work (takeover), or, for a restore, until the
hub delivered its own work again (failback).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "Disturbance",
    "InvalidSchedule",
    "Takeover",
    "duty_changes",
    "parse_schedule",
    "takeovers",
]

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


def _when(event: Mapping[str, Any], field: str) -> float | None:
    value = event.get(field)
    return datetime.fromisoformat(value).timestamp() if isinstance(value, str) else None


def takeovers(
    events: Sequence[Mapping[str, Any]], done: list[tuple[Disturbance, float]]
) -> list[Takeover]:
    """One row per disturbance carried out (``done``: what and the wall time it happened)."""
    rows = []
    for disturbance, when in done:
        if disturbance.kind == "fail":
            dead = [
                t
                for e in events
                if e.get("event") == "hub-dead" and e.get("site") == disturbance.site
                if (t := _when(e, "declared_at")) is not None and t >= when
            ]
            claims = [
                e
                for e in events
                if e.get("event") == "lease-claimed"
                and e.get("reason") == "failover"
                and e.get("previous_owner") == disturbance.site
                and (_when(e, "claimed_at") or 0) >= when
            ]
            firsts = [
                t
                for e in events
                if e.get("event") == "first-output"
                and e.get("reason") == "failover"
                and e.get("previous_owner") == disturbance.site
                if (t := _when(e, "at")) is not None and t >= when
            ]
            kind = "failover"
        else:
            dead = []
            claims = [
                e
                for e in events
                if e.get("event") == "lease-claimed"
                and e.get("reason") == "failback"
                and e.get("hub") == f"hub:{disturbance.site}"
                and (_when(e, "claimed_at") or 0) >= when
            ]
            firsts = [
                t
                for e in events
                if e.get("event") == "first-output"
                and e.get("reason") == "failback"
                and e.get("hub") == f"hub:{disturbance.site}"
                if (t := _when(e, "at")) is not None and t >= when
            ]
            kind = "failback"
        by = sorted({str(e.get("hub", "?")) for e in claims})
        rows.append(
            Takeover(
                kind=kind,
                site=disturbance.site,
                at=disturbance.after,
                by=", ".join(by) or None,
                detection_s=min(dead) - when if dead else None,
                claimed_s=min(t for e in claims if (t := _when(e, "confirmed_at")) is not None)
                - when
                if claims
                else None,
                takeover_s=min(firsts) - when if firsts else None,
                units=len(claims),
            )
        )
    return rows


def duty_changes(events: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """(time, hub, reason) of every claim of intake: who held the duty, from when."""
    return [
        (str(e.get("confirmed_at", "")), str(e.get("hub", "?")), str(e.get("reason", "?")))
        for e in events
        if e.get("event") == "lease-claimed" and e.get("unit") == "intake"
    ]
