"""The demo's books: what was sent, what the CCC accepted or refused, what arrived.

Pure bookkeeping fed by observations of the real topics (lanes, dead letters, inboxes);
``summary()`` is the ``--summary-json`` document. *Lost* is every (message, recipient)
pair the CCC accepted that the recipient never opened (for ``ccc``: never receipted).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from schemas.header import Precedence
from schemas.participants import CCC

__all__ = ["Accepted", "Accounting"]


@dataclass(frozen=True, slots=True)
class Accepted:
    hub: str
    precedence: Precedence
    recipients: tuple[str, ...]


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Accounting:
    sent: Counter[str] = field(default_factory=Counter)
    sent_ids: set[str] = field(default_factory=set)
    expected_refusals: dict[str, str] = field(default_factory=dict)  # message id -> reason
    accepted: dict[str, Accepted] = field(default_factory=dict)
    refused: Counter[str] = field(default_factory=Counter)
    refused_ids: dict[str, str] = field(default_factory=dict)
    delivered: set[tuple[str, str]] = field(default_factory=set)
    delivered_by: Counter[tuple[str, str]] = field(default_factory=Counter)
    duplicates_suppressed: Counter[str] = field(default_factory=Counter)
    unopened: Counter[str] = field(default_factory=Counter)
    receipts: int = 0
    breaches: int = 0
    fenced: int = 0  # deliveries refused: made by a hub outside its lease term
    latency_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def on_sent(self, message_id: str, kind: str, expected_refusal: str | None) -> None:
        self.sent[kind] += 1
        if message_id:
            self.sent_ids.add(message_id)
        if expected_refusal:
            self.expected_refusals[message_id] = expected_refusal

    def on_accepted(self, message_id: str, accepted: Accepted) -> None:
        self.accepted.setdefault(message_id, accepted)

    def on_refused(self, message_id: str | None, reason: str) -> None:
        self.refused[reason] += 1
        if message_id:
            self.refused_ids[message_id] = reason

    def on_delivered(self, message_id: str, recipient: str, latency_ms: float | None) -> None:
        pair = (message_id, recipient)
        if pair in self.delivered:
            self.duplicates_suppressed["recipient"] += 1
            return
        self.delivered.add(pair)
        accepted = self.accepted.get(message_id)
        if accepted:
            self.delivered_by[(accepted.hub, accepted.precedence.value)] += 1
            if latency_ms is not None:
                self.latency_ms[accepted.precedence.value].append(latency_ms)

    def undecided(self) -> list[str]:
        """Messages sent that the CCC has neither accepted nor refused (yet): lost at intake,
        once the backbone has drained. Spoiled records are counted by their refusals."""
        decided = self.accepted.keys() | self.refused_ids.keys() | self.expected_refusals.keys()
        return sorted(self.sent_ids - decided)

    def outstanding(self) -> list[tuple[str, str]]:
        """Accepted pairs not yet delivered: lost, once the backbone has drained."""
        return [
            (message_id, recipient)
            for message_id, accepted in self.accepted.items()
            for recipient in accepted.recipients
            if (message_id, recipient) not in self.delivered
        ]

    def misjudged(self) -> dict[str, dict[str, str | None]]:
        """Spoiled records the CCC did not refuse for the expected reason."""
        wrong: dict[str, dict[str, str | None]] = {}
        for message_id, expected in self.expected_refusals.items():
            actual = self.refused_ids.get(message_id)
            if actual != expected:
                wrong[message_id] = {"expected": expected, "actual": actual}
        return wrong

    def latency_summary(self) -> dict[str, dict[str, float | int | None]]:
        result: dict[str, dict[str, float | int | None]] = {}
        for precedence in Precedence:
            values = self.latency_ms.get(precedence.value, [])
            result[precedence.value] = {
                "count": len(values),
                "p50_ms": _percentile(values, 0.50),
                "p99_ms": _percentile(values, 0.99),
                "mean_ms": statistics.fmean(values) if values else None,
            }
        return result

    def summary(self) -> dict[str, Any]:
        lost = self.outstanding()
        undecided = self.undecided()
        by_hub: dict[str, Counter[str]] = defaultdict(Counter)
        for (hub, precedence), count in self.delivered_by.items():
            by_hub[hub][precedence] += count
        accepted_by: Counter[str] = Counter(a.precedence.value for a in self.accepted.values())
        return {
            "sent": {"total": sum(self.sent.values()), "by_kind": dict(self.sent)},
            "accepted": {"total": len(self.accepted), "by_precedence": dict(accepted_by)},
            "rejected": {
                "total": sum(self.refused.values()),
                "by_reason": dict(self.refused),
                "expected": len(self.expected_refusals),
                "misjudged": self.misjudged(),
            },
            "delivered": {
                "total": len(self.delivered),
                "to_ccc": sum(1 for _, r in self.delivered if r == CCC),
                "by_hub": {hub: dict(c) for hub, c in sorted(by_hub.items())},
                "latency": self.latency_summary(),
                "receipts": self.receipts,
            },
            "duplicates_suppressed": {
                "total": sum(self.duplicates_suppressed.values()),
                "by_where": dict(self.duplicates_suppressed),
            },
            "lost": {"total": len(lost), "pairs": [f"{m}->{r}" for m, r in lost[:50]]},
            "undecided": {"total": len(undecided), "ids": undecided[:50]},
            "unopened": dict(self.unopened),
            "breaches": self.breaches,
            "fenced": self.fenced,
        }
