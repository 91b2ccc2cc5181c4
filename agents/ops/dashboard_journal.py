"""The dashboard's fold of the control journal (``i247.control``, docs/wire-format.md §13).

Two kinds of events: the hubs' own (``lease-*``, ``hub-*``: the failover/failback
timeline, each written by the hub that saw or did it, read as their typed models,
``schemas.journal``) and the desks' (notices, teams,
checks, breaches), which a stand-in may write again for the same key, so each is counted
once per (event, key, fields other than ``hub`` and ``time``): a notice's second transition
differs from its first, a stand-in's copy of an event does not. Unknown events and fields
are ignored, as the contract asks.
"""

from __future__ import annotations

import json
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from schemas.header import format_timestamp
from schemas.journal import (
    HubAlive,
    HubDead,
    HubReady,
    JournalEventModel,
    LeaseClaimed,
    LeaseLost,
    LeaseReleased,
    control_event_of,
)
from schemas.team_journal import TeamEvent
from schemas.teams import ACTIVE_STATES

__all__ = ["TIMELINE_LENGTH", "JournalFold"]

TIMELINE_LENGTH = 60
_MERGE_WITHIN_S = 3.0  # claims of several units in one go, or one death seen by two hubs
_RECENT = 12
_ACTIVE = frozenset(state.value for state in ACTIVE_STATES)
_TEAM_EVENTS = frozenset(event.value for event in TeamEvent)


def _site(hub: object) -> str:
    return str(hub).removeprefix("hub:") if hub else "?"


_TIMELINE_EVENTS = (LeaseClaimed, LeaseLost, LeaseReleased, HubDead, HubAlive, HubReady)


@dataclass
class JournalFold:
    timeline: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=TIMELINE_LENGTH))
    declared: dict[str, str] = field(default_factory=dict)  # site -> "dead" / "alive"
    duty_changes: int = 0
    notices: dict[str, dict[str, Any]] = field(default_factory=dict)
    teams: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: Counter[str] = field(default_factory=Counter)
    breaches: Counter[str] = field(default_factory=Counter)
    recent_breaches: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=_RECENT))
    seen: set[tuple[str, str, str]] = field(default_factory=set)

    def apply(self, event: dict[str, Any], key: str) -> None:
        """Fold one journal event (the record's JSON value and its key); a hub event
        that does not validate raises ``schemas.journal.MalformedJournalEvent``."""
        name = str(event.get("event", ""))
        if name.startswith(("lease-", "hub-")):
            typed = control_event_of(event)
            if isinstance(typed, _TIMELINE_EVENTS):  # the hubs' other events are not on it
                self._hub_event(typed)
            return
        fields = json.dumps(
            {k: v for k, v in event.items() if k not in ("hub", "time")},
            sort_keys=True,
            default=str,
        )
        if (name, key, fields) in self.seen:
            return
        self.seen.add((name, key, fields))
        if name.startswith(("notice-", "renewal-")):
            self._notice(name, event)
        elif name in _TEAM_EVENTS:
            self._team(name, event)
        elif name == "handling-breach" or name == "hit-confirmation-breach":
            self._breach(name, event)
        elif name.startswith(("check-", "hit-", "multi-country-", "vehicle-")):
            self._check(name, event)

    def _hub_event(self, event: JournalEventModel) -> None:
        by = _site(event.hub)
        name = event.event_name
        if isinstance(event, LeaseClaimed):
            if event.unit == "intake":
                self.duty_changes += 1
            self._mark(name, by, event.reason, event.unit, event, f"{by} claimed")
        elif isinstance(event, LeaseLost):
            self._mark(name, by, "lost", event.unit, event, f"{by} lost")
        elif isinstance(event, LeaseReleased):
            self._mark(name, by, event.reason, event.unit, event, f"{by} released")
        elif isinstance(event, HubDead | HubAlive):
            state = name.removeprefix("hub-")
            self.declared[event.site] = state
            self._mark(name, event.site, state, by, event, f"{event.site} declared {state} by")
        elif isinstance(event, HubReady):
            self._mark(name, "hubs", "ready", by, event, "ready:")

    def _mark(
        self, name: str, subject: str, reason: str, item: str, event: JournalEventModel, text: str
    ) -> None:
        """A timeline entry, or ``item`` added to a like entry written moments before."""
        at = event.time.timestamp()
        for entry in list(self.timeline)[-6:]:
            close = abs(entry["_at"] - at) <= _MERGE_WITHIN_S
            if close and (entry["event"], entry["subject"], entry["reason"]) == (
                name,
                subject,
                reason,
            ):
                if item not in entry["items"]:
                    entry["items"].append(item)
                return
        self.timeline.append(
            {
                "_at": at,
                "time": format_timestamp(event.time),
                "event": name,
                "subject": subject,
                "reason": reason,
                "text": text,
                "items": [item],
            }
        )

    def _notice(self, name: str, event: dict[str, Any]) -> None:
        notice_id = str(event.get("notice_id", ""))
        if not notice_id:
            return
        notice = self.notices.setdefault(notice_id, {"id": notice_id, "state": "requested"})
        if name == "notice-requested":
            notice.update(colour=event.get("colour"), requester=event.get("requester"))
        elif name == "notice-decided":
            notice["state"] = str(event.get("decision", notice["state"]))
        elif name == "notice-transition":
            notice["state"] = str(event.get("to_state", notice["state"]))

    def _team(self, name: str, event: dict[str, Any]) -> None:
        request_id = str(event.get("request_id") or "")
        if not request_id or name in (TeamEvent.REPORT.value, TeamEvent.REFUSED.value):
            self.checks["team_reports" if name == TeamEvent.REPORT.value else "team_refused"] += 1
            return
        team = self.teams.setdefault(request_id, {"request": request_id})
        for name_ in ("team", "kind", "host", "state"):
            if event.get(name_) is not None:
                team[name_] = event[name_]

    def _check(self, name: str, event: dict[str, Any]) -> None:
        if name == "check-answered":
            self.checks["answered"] += 1
            for count in ("items", "hits"):
                value = event.get(count)
                if isinstance(value, int):
                    self.checks[count] += value
        elif name == "hit-confirmed":
            self.checks["confirmed" if event.get("confirmed") else "not_confirmed"] += 1
        else:
            self.checks[name] += 1

    def _breach(self, name: str, event: dict[str, Any]) -> None:
        kind = str(event.get("precedence") or event.get("urgency") or "?")
        self.breaches[f"{name}/{kind}"] += 1
        self.recent_breaches.append(
            {
                "event": name,
                "kind": kind,
                "id": event.get("message_id") or event.get("confirmation_id"),
                "late_s": event.get("late_seconds"),
                "time": event.get("time"),
            }
        )

    def snapshot(self) -> dict[str, Any]:
        """The journal's part of the page's JSON."""
        notice_states = Counter(str(n["state"]) for n in self.notices.values())
        in_force = [n for n in self.notices.values() if n["state"] == "published"]
        active = [t for t in self.teams.values() if t.get("state") in _ACTIVE]
        return {
            "timeline": [
                {k: v for k, v in entry.items() if not k.startswith("_")}
                for entry in reversed(self.timeline)
            ],
            "duty_changes": self.duty_changes,
            "notices": {
                "in_force": len(in_force),
                "by_state": dict(notice_states.most_common()),
                "recent_in_force": in_force[-_RECENT:][::-1],
            },
            "teams": {
                "deployed": len(active),
                "by_state": dict(Counter(str(t.get("state")) for t in self.teams.values())),
                "active": active[-_RECENT:][::-1],
            },
            "checks": dict(self.checks),
            "breaches": {
                "total": sum(self.breaches.values()),
                "by_kind": dict(self.breaches.most_common()),
                "recent": list(reversed(self.recent_breaches)),
            },
        }
