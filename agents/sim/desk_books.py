"""The demo's books on the CCC's duties: notices, diffusions, teams and database checks.

Theory of operation
-------------------
Three sources, each counted where it is true:

* what the simulated bureaus and teams **sent** (``on_sent``: the body, when it was sent);
* what they **opened** (``on_opened``): notice copies, recalls, check answers, FLASH
  escalations, consolidated answers, renewal prompts; each (message, recipient) once;
* what the hubs **journaled** on ``i247.control`` (``summary(events)``): requests,
  decisions, broadcasts, recordings, escalations, confirmations. Journal events are
  counted by their key (notice id, correlation id...), so an event journaled twice by two
  hubs around a handover counts once.

``summary(events)``, over the typed journal events (``schemas.journal``), is the demo's
``--summary-json`` sections ``notices``, ``diffusions``, ``teams`` and ``checks``.
Pure: no I/O, time passed in.

Worked example: a bureau sends a Red Notice request; the journal says ``notice-requested``
then ``notice-decided`` (published) then ``notice-broadcast`` (196 recipients); 196
bureaus open their copy: ``summary(events)["notices"]`` is ``requested 1, published 1,
broadcasts 1, broadcast_recipients 196, broadcast_deliveries 196``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agents.stats import percentile
from schemas.bodies import (
    Body,
    DiffusionBody,
    DiffusionRecallBody,
    MessageBody,
    NoticeBody,
    NoticeDecisionBody,
    RenewalPromptBody,
)
from schemas.checks import (
    CheckAnswer,
    CheckRequest,
    ConsolidatedAnswer,
    MultiCountryQuery,
    StolenVehicleUpdate,
)
from schemas.header import HeaderFlag, RoutingHeader
from schemas.journal import (
    CheckHitEscalated,
    DiffusionRecalled,
    DiffusionRecorded,
    HitConfirmationBreach,
    HitConfirmationReminder,
    HitConfirmationRequested,
    HitConfirmed,
    JournalEventModel,
    NoticeBroadcast,
    NoticeDecided,
    NoticeRequested,
    TeamRefused,
    TeamReportAccepted,
    TeamSnapshotEvent,
    UnknownEvent,
    VehicleCirculated,
)
from schemas.team_journal import team_counts

__all__ = ["DeskBooks"]

_FLASH_FLAGS = frozenset({HeaderFlag.WANTED_PERSON_HIT, HeaderFlag.STOLEN_DOCUMENT_HIT})


@dataclass
class DeskBooks:
    """Counts of the duties' traffic as the bureaus and teams saw it."""

    sent: Counter[str] = field(default_factory=Counter)
    items_asked: int = 0
    _asked_at: dict[str, datetime] = field(default_factory=dict)  # correlation id -> sent
    _answers: dict[str, tuple[int, int, float]] = field(default_factory=dict)  # items, hits, ms
    _opened: set[tuple[str, str]] = field(default_factory=set)  # (message id, recipient)
    opened: Counter[str] = field(default_factory=Counter)  # by what was opened
    _consolidated: dict[str, int] = field(default_factory=dict)  # query id -> not replied
    _queries: dict[str, datetime] = field(default_factory=dict)  # query id -> sent

    # --- what was sent ------------------------------------------------------------

    def on_sent(self, kind: str, now: datetime, body: Body | None = None) -> None:
        """Count one message sent, by its type; a check's body also starts its timer."""
        self.sent[kind] += 1
        if isinstance(body, CheckRequest):
            self.items_asked += len(body.items)
            self._asked_at[body.correlation_id] = now
        elif isinstance(body, MultiCountryQuery):
            self._queries[body.query_id] = now

    # --- what was opened ----------------------------------------------------------

    def on_opened(self, recipient: str, header: RoutingHeader, body: Body, now: datetime) -> None:
        """Count one opened message (a second copy for the same recipient counts nothing)."""
        pair = (header.message_id, recipient)
        if pair in self._opened:
            return
        self._opened.add(pair)
        if isinstance(body, NoticeBody):
            self.opened["notice"] += 1
            if recipient.startswith("team:"):
                self.opened["notice.team"] += 1
        elif isinstance(body, DiffusionRecallBody):
            self.opened["recall"] += 1
        elif isinstance(body, DiffusionBody):
            self.opened["diffusion"] += 1
        elif isinstance(body, NoticeDecisionBody):
            self.opened["notice-decision"] += 1
        elif isinstance(body, RenewalPromptBody):
            self.opened["renewal-prompt"] += 1
        elif isinstance(body, CheckAnswer):
            asked = self._asked_at.get(body.correlation_id)
            if asked is not None and body.correlation_id not in self._answers:
                hits = sum(1 for r in body.results if r.hit)
                latency = (now - asked).total_seconds() * 1000
                self._answers[body.correlation_id] = (len(body.results), hits, latency)
        elif isinstance(body, StolenVehicleUpdate):
            self.opened["vehicle-update"] += 1
        elif isinstance(body, ConsolidatedAnswer):
            self._consolidated.setdefault(body.query_id, len(body.silent))
        elif isinstance(body, MessageBody) and _FLASH_FLAGS & set(header.flags):
            self.opened["escalation"] += 1

    def settled(self) -> bool:
        """Every check answered and every multi-country query consolidated: a drain waits
        for this (a window outlives a killed hub: its successor consolidates it)."""
        if len(self._answers) < self.sent["check-request"]:
            return False
        return self._queries.keys() <= self._consolidated.keys()

    # --- the summary --------------------------------------------------------------

    def summary(self, events: Iterable[JournalEventModel | UnknownEvent]) -> dict[str, Any]:
        """The four sections of the demo's summary, from these books and the journal."""
        journal = _Journal.fold(events)
        answers = self._answers.values()
        teams = team_counts(journal.team_events)
        return {
            "notices": {
                "requested": len(journal.keys[NoticeRequested]),
                "published": len(journal.decided["published"]),
                "refused": len(journal.decided["refused"]),
                "returned": len(journal.decided["returned"]),
                "actions_sent": self.sent["notice-action"],
                "broadcasts": len(journal.broadcasts),
                "broadcast_recipients": sum(journal.broadcasts.values()),
                "broadcast_deliveries": self.opened["notice"],
                "to_teams": self.opened["notice.team"],
                "states": dict(journal.broadcast_states),
                "renewal_prompts": self.opened["renewal-prompt"],
                "decisions_received": self.opened["notice-decision"],
            },
            "diffusions": {
                "sent": self.sent["diffusion"],
                "recorded": len(journal.keys[DiffusionRecorded]),
                "recalls_sent": self.sent["diffusion-recall"],
                "recalled": len(journal.keys[DiffusionRecalled]),
                "copies_opened": self.opened["diffusion"],
                "recalls_opened": self.opened["recall"],
            },
            "teams": {
                "requested": teams["requested"],
                "deployed": teams["approved"],
                "declined": teams["declined"],
                "arrived": teams["arrived"],
                "converted": teams["converted"],
                "closed": teams["closed"],
                "reports": teams["reports"],
                "notices_opened": self.opened["notice.team"],
                "vehicle_reports": self.sent["stolen-vehicle-report"],
                "vehicles_circulated": len(journal.keys[VehicleCirculated]),
                "vehicle_updates_opened": self.opened["vehicle-update"],
            },
            "checks": {
                "asked": self.sent["check-request"],
                "items_asked": self.items_asked,
                "answered": len(self._answers),
                "hits": sum(hits for _, hits, _ in answers),
                "escalations": len(journal.escalations),
                "escalations_opened": self.opened["escalation"],
                "confirmations_requested": len(journal.keys[HitConfirmationRequested]),
                "confirmed": len(journal.keys[HitConfirmed]),
                "reminders": len(journal.keys[HitConfirmationReminder]),
                "breaches": len(journal.keys[HitConfirmationBreach]),
                "multi_country": {
                    "asked": self.sent["multi-country-query"],
                    "consolidated": len(self._consolidated),
                    "not_replied": sum(self._consolidated.values()),
                },
                "answer_ms": {
                    "p50": percentile((ms for _, _, ms in answers), 0.5, digits=1),
                    "p99": percentile((ms for _, _, ms in answers), 0.99, digits=1),
                },
            },
        }


@dataclass
class _Journal:
    """The journal events the summary counts, each by its key."""

    keys: dict[type[JournalEventModel], set[str]] = field(default_factory=dict)
    decided: dict[str, set[str]] = field(default_factory=dict)
    broadcasts: dict[tuple[str, int], int] = field(default_factory=dict)  # -> recipients
    broadcast_states: Counter[str] = field(default_factory=Counter)
    escalations: set[tuple[str, int]] = field(default_factory=set)
    team_events: list[dict[str, Any]] = field(default_factory=list)  # as ``team_counts`` reads

    @classmethod
    def fold(cls, events: Iterable[JournalEventModel | UnknownEvent]) -> _Journal:
        journal = cls(
            keys={model: set() for model in _KEYS},
            decided={d: set() for d in ("published", "refused", "returned")},
        )
        for event in events:
            if isinstance(event, JournalEventModel):
                journal._take(event)
        return journal

    def _take(self, event: JournalEventModel) -> None:
        if isinstance(event, TeamSnapshotEvent | TeamReportAccepted | TeamRefused):
            self.team_events.append({"event": event.event_name, **event.model_dump(mode="json")})
        key = _KEYS.get(type(event))
        if key is not None:
            self.keys[type(event)].add(key(event))
        if isinstance(event, NoticeDecided):
            self.decided.setdefault(event.decision, set()).add(event.notice_id)
        elif isinstance(event, NoticeBroadcast):
            at = (event.notice_id, event.version)
            if at not in self.broadcasts:
                self.broadcast_states[event.state] += 1
            self.broadcasts[at] = event.recipients
        elif isinstance(event, CheckHitEscalated):
            self.escalations.add((event.correlation_id, event.item_index))


def _key(field_name: str) -> Callable[[JournalEventModel], str]:
    return lambda event: str(getattr(event, field_name))


_KEYS: dict[type[JournalEventModel], Callable[[JournalEventModel], str]] = {
    NoticeRequested: _key("notice_id"),
    DiffusionRecorded: _key("diffusion_id"),
    DiffusionRecalled: _key("diffusion_id"),
    HitConfirmationRequested: _key("confirmation_id"),
    HitConfirmed: _key("confirmation_id"),
    HitConfirmationReminder: _key("confirmation_id"),
    HitConfirmationBreach: _key("confirmation_id"),
    VehicleCirculated: _key("message_id"),
}
"""The events counted once per key, and the field that is their key."""
