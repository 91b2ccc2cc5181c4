"""The dashboard's fold of the control journal (``i247.control``, docs/wire-format.md §13).

Every event is read as its typed model (``schemas.journal``) and dispatched on its class.
Two kinds: the hubs' own (leases, hub deaths and returns: the failover/failback timeline,
each written by the hub that saw or did it) and the desks' (notices, teams, checks,
breaches), which a stand-in may write again for the same key, so each is counted once per
(event, key, fields other than ``hub`` and ``time``): a notice's second transition differs
from its first, a stand-in's copy of an event does not. Unknown events and fields are
ignored, as the contract asks; a known event that does not validate raises
``schemas.journal.MalformedJournalEvent`` (a ``ValueError``).
"""

from __future__ import annotations

import json
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from schemas.header import format_timestamp
from schemas.journal import (
    CheckAnswered,
    CheckDeskRefused,
    CheckDeskUndeliverable,
    CheckHitEscalated,
    DeadLetterRedriven,
    FirstOutput,
    HandlingBreach,
    HitConfirmationBreach,
    HitConfirmationReminder,
    HitConfirmationRequested,
    HitConfirmed,
    HubAlive,
    HubDead,
    HubReady,
    HubResumed,
    JournalEventModel,
    KeyRevoked,
    KeyRotated,
    LeaseClaimed,
    LeaseLost,
    LeaseReleased,
    MultiCountryConsolidated,
    MultiCountryOpened,
    MultiCountryReplied,
    NoticeActionRefused,
    NoticeBroadcast,
    NoticeDecided,
    NoticeRequested,
    NoticeTransitioned,
    RenewalPrompted,
    TeamRefused,
    TeamReportAccepted,
    TeamSnapshotEvent,
    UnknownEvent,
    VehicleCirculated,
    VehicleReportRefused,
    control_event_of,
)
from schemas.teams import ACTIVE_STATES

__all__ = ["TIMELINE_LENGTH", "JournalFold"]

TIMELINE_LENGTH = 60
_MERGE_WITHIN_S = 3.0  # claims of several units in one go, or one death seen by two hubs
_RECENT = 12
_ACTIVE = frozenset(state.value for state in ACTIVE_STATES)


def _site(hub: object) -> str:
    return str(hub).removeprefix("hub:") if hub else "?"


_TIMELINE_EVENTS = (LeaseClaimed, LeaseLost, LeaseReleased, HubDead, HubAlive, HubReady)
_OTHER_HUB_EVENTS = (HubResumed, FirstOutput, DeadLetterRedriven, KeyRotated, KeyRevoked)
_NOTICE_EVENTS = (
    NoticeRequested,
    NoticeDecided,
    NoticeTransitioned,
    NoticeBroadcast,
    NoticeActionRefused,
    RenewalPrompted,
)
_TEAM_EVENTS = (TeamSnapshotEvent, TeamReportAccepted, TeamRefused)
_BREACHES = (HandlingBreach, HitConfirmationBreach)
_CHECK_EVENTS = (  # counted by name, but for answers and confirmations
    CheckAnswered,
    CheckHitEscalated,
    CheckDeskRefused,
    CheckDeskUndeliverable,
    HitConfirmed,
    HitConfirmationRequested,
    HitConfirmationReminder,
    MultiCountryOpened,
    MultiCountryReplied,
    MultiCountryConsolidated,
    VehicleCirculated,
    VehicleReportRefused,
)


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
        """Fold one journal event (the record's JSON value and its key); a known event
        that does not validate raises ``schemas.journal.MalformedJournalEvent``."""
        typed = control_event_of(event)
        if isinstance(typed, (UnknownEvent, *_OTHER_HUB_EVENTS)):  # not on the page
            return
        if isinstance(typed, _TIMELINE_EVENTS):
            self._hub_event(typed)
            return
        name = typed.event_name
        fields = json.dumps(
            {k: v for k, v in event.items() if k not in ("hub", "time")},
            sort_keys=True,
            default=str,
        )
        if (name, key, fields) in self.seen:
            return
        self.seen.add((name, key, fields))
        if isinstance(typed, _NOTICE_EVENTS):
            self._notice(typed)
        elif isinstance(typed, _TEAM_EVENTS):
            self._team(typed)
        elif isinstance(typed, _BREACHES):
            self._breach(typed)
        elif isinstance(typed, _CHECK_EVENTS):
            self._check(typed)

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
            state = "dead" if isinstance(event, HubDead) else "alive"
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

    def _notice(
        self,
        event: NoticeRequested
        | NoticeDecided
        | NoticeTransitioned
        | NoticeBroadcast
        | NoticeActionRefused
        | RenewalPrompted,
    ) -> None:
        if not event.notice_id:
            return
        notice = self.notices.setdefault(
            event.notice_id, {"id": event.notice_id, "state": "requested"}
        )
        if isinstance(event, NoticeRequested):
            notice.update(colour=event.colour, requester=event.requester)
        elif isinstance(event, NoticeDecided):
            notice["state"] = event.decision
        elif isinstance(event, NoticeTransitioned):
            notice["state"] = event.to_state

    def _team(self, event: TeamSnapshotEvent | TeamReportAccepted | TeamRefused) -> None:
        if isinstance(event, TeamReportAccepted):
            self.checks["team_reports"] += 1
        elif isinstance(event, TeamRefused) or not event.request_id:
            self.checks["team_refused"] += 1
        else:
            team = self.teams.setdefault(event.request_id, {"request": event.request_id})
            for name, value in (
                ("team", event.team),
                ("kind", event.kind),
                ("host", event.host),
                ("state", event.state),
            ):
                if value is not None:
                    team[name] = value

    def _check(self, event: JournalEventModel) -> None:
        if isinstance(event, CheckAnswered):
            self.checks["answered"] += 1
            self.checks["items"] += event.items
            self.checks["hits"] += event.hits
        elif isinstance(event, HitConfirmed):
            self.checks["confirmed" if event.confirmed else "not_confirmed"] += 1
        else:
            self.checks[event.event_name] += 1

    def _breach(self, event: HandlingBreach | HitConfirmationBreach) -> None:
        if isinstance(event, HandlingBreach):
            kind, subject = str(event.precedence), event.message_id
        else:
            kind, subject = str(event.urgency), event.confirmation_id
        self.breaches[f"{event.event_name}/{kind}"] += 1
        self.recent_breaches.append(
            {
                "event": event.event_name,
                "kind": kind,
                "id": subject,
                "late_s": event.late_seconds,
                "time": format_timestamp(event.time),
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
