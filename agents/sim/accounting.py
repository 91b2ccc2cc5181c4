"""The demo's books: what was sent, what the CCC accepted or refused, what arrived.

Pure bookkeeping fed by observations of the real topics (lanes, dead letters, inboxes);
``summary()`` is the ``--summary-json`` document. *Lost* is every (message, recipient)
pair the CCC accepted that the recipient never opened (for ``ccc``: never receipted).
What is outstanding and undecided is kept up to date as observations arrive, so the live
table and the drain can ask for it several times a second at no cost that grows with the run.

A recipient can open a message before the Observer reads its lane record (the Observer
fetches every 100 ms, the message path every 10 ms): such an opening's latency is held
until the lane record says its precedence, and counted then. Counting only the openings
the Observer had already explained would keep the fastest deliveries out of the figures.

``stages`` splits created -> opened at the points every record already stamps: the lane
record's timestamp (intake admitted it), the inbox copy's (the lane's hub delivered it),
when the gateway's inbox reader fetched it, and when it was opened.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from agents.stats import latency_summary
from schemas.header import Precedence
from schemas.participants import CCC

__all__ = ["Accepted", "Accounting"]


@dataclass(frozen=True, slots=True)
class Accepted:
    hub: str
    precedence: Precedence
    recipients: tuple[str, ...]
    admitted_ms: float | None = None  # the lane record's timestamp (epoch ms)


@dataclass(frozen=True, slots=True)
class Opening:
    """When one delivery passed each point on its way (epoch ms; ``None``: not known)."""

    created_ms: float
    opened_ms: float
    inbox_ms: float | None = None  # the inbox copy's record timestamp (its hub's send)
    fetched_ms: float | None = None  # the gateway's inbox reader handed it over

    @property
    def latency_ms(self) -> float:
        return self.opened_ms - self.created_ms


STAGES = {
    "created_to_admitted": "created -> lane record (sender, inbound topic, intake)",
    "admitted_to_delivered": "lane record -> inbox copy (the lane's hub)",
    "delivered_to_fetched": "inbox copy -> fetched by the gateway's inbox reader",
    "fetched_to_opened": "fetched -> opened (the simulator's own: fence check, opening)",
}
"""The stages of created -> opened, in order, each with what it covers."""


def stage_times(opening: Opening, admitted_ms: float | None) -> dict[str, float | None]:
    """``opening``'s time in each of ``STAGES`` (ms; ``None`` where a point is unknown).

    >>> stage_times(Opening(created_ms=0, opened_ms=90, inbox_ms=50, fetched_ms=80), 20)
    {'created_to_admitted': 20, 'admitted_to_delivered': 30, 'delivered_to_fetched': 30, \
'fetched_to_opened': 10}
    """
    points = [opening.created_ms, admitted_ms, opening.inbox_ms, opening.fetched_ms]
    points.append(opening.opened_ms)
    times: dict[str, float | None] = {}
    for name, start, end in zip(STAGES, points, points[1:], strict=False):
        times[name] = None if start is None or end is None else end - start
    return times


def _spread(values: list[float]) -> dict[str, float | int | None]:
    mean = statistics.fmean(values) if values else None
    return latency_summary(values, counted="count") | {"mean_ms": mean}


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
    reader_lag_ms: list[float] = field(default_factory=list)  # delivery produced -> opened
    simulator_lag_ms: list[float] = field(default_factory=list)  # fetched -> opened
    offered: dict[str, float] = field(default_factory=dict)  # the pump's pacing, when done
    openings: list[tuple[str, Opening]] = field(default_factory=list)  # (message id, times)
    _unexplained: dict[str, list[tuple[float | None, float | None, float | None]]] = field(
        default_factory=dict, repr=False
    )  # openings before their lane record: (latency, reader lag, simulator lag)
    _outstanding: dict[tuple[str, str], None] = field(default_factory=dict, repr=False)
    _undecided: set[str] = field(default_factory=set, repr=False)

    def on_sent(self, message_id: str, kind: str, expected_refusal: str | None) -> None:
        self.sent[kind] += 1
        if message_id:
            self.sent_ids.add(message_id)
        if expected_refusal:
            self.expected_refusals[message_id] = expected_refusal
            self._undecided.discard(message_id)
        elif message_id and not (
            message_id in self.accepted
            or message_id in self.refused_ids
            or message_id in self.expected_refusals
        ):
            self._undecided.add(message_id)

    def on_accepted(self, message_id: str, accepted: Accepted) -> None:
        if message_id in self.accepted:
            return
        self.accepted[message_id] = accepted
        self._undecided.discard(message_id)
        for latency, lag, own in self._unexplained.pop(message_id, ()):
            self._count_latency(accepted, latency, lag, own)
        for recipient in accepted.recipients:
            if (message_id, recipient) not in self.delivered:
                self._outstanding[(message_id, recipient)] = None

    def on_refused(self, message_id: str | None, reason: str) -> None:
        self.refused[reason] += 1
        if message_id:
            self.refused_ids[message_id] = reason
            self._undecided.discard(message_id)

    def on_delivered(
        self,
        message_id: str,
        recipient: str,
        latency_ms: float | None,
        reader_lag_ms: float | None = None,
        simulator_lag_ms: float | None = None,
        *,
        opening: Opening | None = None,
    ) -> None:
        """A first opening of ``message_id`` by ``recipient`` (a second is a duplicate).

        ``latency_ms`` is created -> opened; ``reader_lag_ms`` the part of it after the hub
        produced the delivery (its send queue, the broker, the inbox fetch, the simulator);
        ``simulator_lag_ms`` the part after the inbox reader fetched it: the simulator's own.
        ``opening`` has the times for ``stages``. Before its lane record is read, an
        opening's latencies wait for it (``on_accepted``).
        """
        pair = (message_id, recipient)
        if pair in self.delivered:
            self.duplicates_suppressed["recipient"] += 1
            return
        self.delivered.add(pair)
        self._outstanding.pop(pair, None)
        if opening is not None:
            self.openings.append((message_id, opening))
        accepted = self.accepted.get(message_id)
        if accepted:
            self._count_latency(accepted, latency_ms, reader_lag_ms, simulator_lag_ms)
        else:
            waiting = self._unexplained.setdefault(message_id, [])
            waiting.append((latency_ms, reader_lag_ms, simulator_lag_ms))

    def _count_latency(
        self,
        accepted: Accepted,
        latency_ms: float | None,
        reader_lag_ms: float | None,
        simulator_lag_ms: float | None,
    ) -> None:
        self.delivered_by[(accepted.hub, accepted.precedence.value)] += 1
        if latency_ms is not None:
            self.latency_ms[accepted.precedence.value].append(latency_ms)
        if reader_lag_ms is not None:
            self.reader_lag_ms.append(reader_lag_ms)
        if simulator_lag_ms is not None:
            self.simulator_lag_ms.append(simulator_lag_ms)

    def undecided(self) -> list[str]:
        """Messages sent that the CCC has neither accepted nor refused (yet): lost at intake,
        once the backbone has drained. Spoiled records are counted by their refusals."""
        return sorted(self._undecided)

    def outstanding(self) -> list[tuple[str, str]]:
        """Accepted pairs not yet delivered: lost, once the backbone has drained."""
        return list(self._outstanding)

    def misjudged(self) -> dict[str, dict[str, str | None]]:
        """Spoiled records the CCC did not refuse for the expected reason."""
        wrong: dict[str, dict[str, str | None]] = {}
        for message_id, expected in self.expected_refusals.items():
            actual = self.refused_ids.get(message_id)
            if actual != expected:
                wrong[message_id] = {"expected": expected, "actual": actual}
        return wrong

    def latency_summary(self) -> dict[str, dict[str, float | int | None]]:
        return {p.value: _spread(self.latency_ms.get(p.value, [])) for p in Precedence}

    def stages(self, precedence: Precedence | None = None) -> dict[str, Any]:
        """Each of ``STAGES`` over the openings whose lane record was read (of
        ``precedence`` only, if given): p50/p99/max ms and how many were measured."""
        times: dict[str, list[float | None]] = {name: [] for name in STAGES}
        for message_id, opening in self.openings:
            accepted = self.accepted.get(message_id)
            if accepted is None or (precedence is not None and accepted.precedence != precedence):
                continue
            for name, value in stage_times(opening, accepted.admitted_ms).items():
                times[name].append(value)
        return {name: latency_summary(values, digits=1) for name, values in times.items()}

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
                "reader_lag": _spread(self.reader_lag_ms),
                "simulator_lag": _spread(self.simulator_lag_ms),
                "stages": self.stages(),
                "stages_flash": self.stages(Precedence.FLASH),
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
            "offered": dict(self.offered),
        }
