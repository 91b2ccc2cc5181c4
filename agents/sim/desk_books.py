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

``summary(events)`` is the demo's ``--summary-json`` sections ``notices``, ``diffusions``,
``teams`` and ``checks``. Pure: no I/O, time passed in.

Worked example: a bureau sends a Red Notice request; the journal says ``notice-requested``
then ``notice-decided`` (published) then ``notice-broadcast`` (196 recipients); 196
bureaus open their copy: ``summary(events)["notices"]`` is ``requested 1, published 1,
broadcasts 1, broadcast_recipients 196, broadcast_deliveries 196``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
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

    def summary(self, events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        """The four sections of the demo's summary, from these books and the journal."""
        journal = _Journal.fold(events)
        answers = self._answers.values()
        teams = team_counts(journal.team_events)
        return {
            "notices": {
                "requested": len(journal.keys["notice-requested"]),
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
                "recorded": len(journal.keys["diffusion-recorded"]),
                "recalls_sent": self.sent["diffusion-recall"],
                "recalled": len(journal.keys["diffusion-recalled"]),
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
                "vehicles_circulated": len(journal.keys["vehicle-circulated"]),
                "vehicle_updates_opened": self.opened["vehicle-update"],
            },
            "checks": {
                "asked": self.sent["check-request"],
                "items_asked": self.items_asked,
                "answered": len(self._answers),
                "hits": sum(hits for _, hits, _ in answers),
                "escalations": len(journal.escalations),
                "escalations_opened": self.opened["escalation"],
                "confirmations_requested": len(journal.keys["hit-confirmation-requested"]),
                "confirmed": len(journal.keys["hit-confirmed"]),
                "reminders": len(journal.keys["hit-confirmation-reminder"]),
                "breaches": len(journal.keys["hit-confirmation-breach"]),
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

    keys: dict[str, set[str]] = field(default_factory=dict)
    decided: dict[str, set[str]] = field(default_factory=dict)
    broadcasts: dict[tuple[str, int], int] = field(default_factory=dict)  # -> recipients
    broadcast_states: Counter[str] = field(default_factory=Counter)
    escalations: set[tuple[str, int]] = field(default_factory=set)
    team_events: list[Mapping[str, Any]] = field(default_factory=list)

    @classmethod
    def fold(cls, events: Iterable[Mapping[str, Any]]) -> _Journal:
        journal = cls(
            keys={name: set() for name in _KEYED},
            decided={d: set() for d in ("published", "refused", "returned")},
        )
        for event in events:
            journal._take(event)
        return journal

    def _take(self, event: Mapping[str, Any]) -> None:
        kind = str(event.get("event", ""))
        if kind.startswith("team-"):
            self.team_events.append(event)
        if kind in _KEYED:
            self.keys[kind].add(json.dumps([event.get(f) for f in _KEYED[kind]]))
        if kind == "notice-decided":
            self.decided.setdefault(str(event.get("decision")), set()).add(
                str(event.get("notice_id"))
            )
        elif kind == "notice-broadcast":
            key = (str(event.get("notice_id")), int(event.get("version") or 0))
            if key not in self.broadcasts:
                self.broadcast_states[str(event.get("state"))] += 1
            self.broadcasts[key] = int(event.get("recipients") or 0)
        elif kind == "check-hit-escalated":
            self.escalations.add(
                (str(event.get("correlation_id")), int(event.get("item_index") or 0))
            )


_KEYED: dict[str, tuple[str, ...]] = {
    "notice-requested": ("notice_id",),
    "diffusion-recorded": ("diffusion_id",),
    "diffusion-recalled": ("diffusion_id",),
    "hit-confirmation-requested": ("confirmation_id",),
    "hit-confirmed": ("confirmation_id",),
    "hit-confirmation-reminder": ("confirmation_id",),
    "hit-confirmation-breach": ("confirmation_id",),
    "vehicle-circulated": ("message_id",),
}
