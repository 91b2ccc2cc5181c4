"""The operations dashboard's state, folded from the backbone's topics (no hub internals).

Theory of operation: ``DashboardView.apply(record, now)`` takes any record the dashboard
reads, in each partition's log order, and updates the view; ``apply_watermarks`` takes the
high watermarks of intake and the lanes; ``snapshot(now)`` is the JSON the page shows.
Everything comes from the wire contract (docs/wire-format.md §7, §11-§14):

* the lease journal, folded by ``LeaseBook`` as every reader folds it: who holds intake (the
  hub on duty) and each lane, at which epoch, and how far each unit is done, so a unit's
  backlog is its topic's high watermark minus the owner's last reported position;
* heartbeats: which hubs beat, and the backlog each reports;
* the control journal: the failover/failback timeline, notices, teams, checks, breaches
  (desk events counted once per key: a stand-in may write the same event again);
* dead letters (``i247.dlq.reason``) and inbox records: delivery latency per assessed
  precedence is the record's broker timestamp minus ``ce_time`` (the clear header's
  ``created_at``), for messages the CCC forwarded from intake (``i247-origin``).

A record that does not parse is counted in ``skipped`` and otherwise ignored: a bad record
must not stop the dashboard.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from agents.ops.dashboard_journal import JournalFold
from agents.stats import percentile
from brokers.records import ReceivedRecord
from schemas.header import Precedence
from schemas.header_names import CE_TIME, DLQ_PREFIX, ORIGIN, PRECEDENCE
from schemas.heartbeat import Heartbeat
from schemas.leases import LeaseBook, LeaseRecord, LeaseRefused
from schemas.participants import HUB_SITES
from schemas.topics import TopicCatalog

__all__ = ["INTAKE", "LATENCY_WINDOW_S", "DashboardView"]

INTAKE = "intake"  # the lease journal's unit for the inbound topic: held by the hub on duty
LATENCY_WINDOW_S = 60.0  # latency percentiles over the last minute of deliveries
_LATENCY_SAMPLES = 5000


@dataclass
class _Beat:
    heartbeat: Heartbeat
    received_at: datetime


@dataclass
class DashboardView:
    """Everything the page shows, as folded so far; ``now`` is always passed in."""

    topics: TopicCatalog
    lease_ttl_s: float = 3.0
    book: LeaseBook = field(default_factory=LeaseBook.empty)
    beats: dict[str, _Beat] = field(default_factory=dict)
    journal: JournalFold = field(default_factory=JournalFold)
    watermarks: dict[tuple[str, int], int] = field(default_factory=dict)
    dead_letters: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, deque[tuple[float, float]]] = field(default_factory=dict)
    delivered: Counter[str] = field(default_factory=Counter)
    records: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)

    def apply(self, record: ReceivedRecord, now: datetime) -> None:
        """Fold one record read from any topic the dashboard follows."""
        kind = self._kind(record.topic)
        self.records[kind] += 1
        try:
            if kind == "leases":
                with contextlib.suppress(LeaseRefused):  # every reader refuses the same events
                    self.book = self.book.apply(
                        LeaseRecord.model_validate_json(record.value).event()
                    )
            elif kind == "heartbeat":
                beat = Heartbeat.model_validate_json(record.value)
                self.beats[beat.site] = _Beat(beat, now)
            elif kind == "control":
                event = json.loads(record.value)
                if not isinstance(event, dict):
                    raise ValueError("a journal event is a JSON object")
                key = record.key.decode() if record.key else ""
                self.journal.apply(event, key)
            elif kind == "deadletter":
                reason = record.header(DLQ_PREFIX + "reason")
                self.dead_letters[reason.decode() if reason else "(no reason header)"] += 1
            elif kind == "inbox":
                self._delivery(record)
            else:
                self.skipped[kind] += 1
        except (ValidationError, ValueError, UnicodeDecodeError):
            self.skipped[kind] += 1

    def apply_watermarks(self, ends: Mapping[tuple[str, int], int]) -> None:
        """High watermarks (next offset to be written) of intake and lane partitions."""
        self.watermarks.update(ends)

    def _kind(self, topic: str) -> str:
        t = self.topics
        named = {
            t.leases: "leases",
            t.heartbeat: "heartbeat",
            t.control: "control",
            t.deadletter: "deadletter",
        }
        if topic in named:
            return named[topic]
        if topic.startswith(f"{t.prefix}.") and topic.endswith(".inbox"):
            return "inbox"
        return "other"

    def _delivery(self, record: ReceivedRecord) -> None:
        if record.header(ORIGIN) is None:
            return  # receipts and the hubs' own messages: not a delivery through a lane
        created, assessed = record.header(CE_TIME), record.header(PRECEDENCE)
        if created is None or assessed is None:
            raise ValueError("a forwarded record without ce_time or i247-precedence")
        precedence = Precedence(assessed.decode()).value
        sent = datetime.fromisoformat(created.decode()).timestamp() * 1000
        samples = self.latencies.setdefault(precedence, deque(maxlen=_LATENCY_SAMPLES))
        samples.append((record.timestamp_ms / 1000, max(0.0, record.timestamp_ms - sent)))
        self.delivered[precedence] += 1

    def on_duty(self, now: datetime) -> str | None:
        """The hub on duty: whoever holds a valid lease on intake now."""
        return self.book.owner_at(INTAKE, now)

    def units(self, now: datetime) -> list[dict[str, Any]]:
        """Intake and the twelve lanes: owner, epoch, lease left, backlog."""
        rows = []
        for unit in [INTAKE, *self.topics.lanes()]:
            lease = self.book.lease(unit)
            topic = self.topics.inbound if unit == INTAKE else unit
            ends = {p: e for (name, p), e in self.watermarks.items() if name == topic}
            backlog = (
                sum(max(0, end - lease.positions.get(p, 0)) for p, end in ends.items())
                if ends
                else None
            )
            left = (lease.expires_at - now).total_seconds() if lease.expires_at else None
            rows.append(
                {
                    "unit": unit,
                    "owner": self.book.owner_at(unit, now),
                    "last_owner": lease.owner,
                    "epoch": lease.epoch,
                    "lease_left_s": None if left is None else round(left, 1),
                    "backlog": backlog,
                }
            )
        return rows

    def hubs(self, now: datetime) -> list[dict[str, Any]]:
        """Each site: beating or not, its reported backlog, the units it holds now."""
        rows = []
        for site in HUB_SITES:
            beat = self.beats.get(site)
            age = (now - beat.received_at).total_seconds() if beat else None
            beating = beat is not None and age is not None and age < self.lease_ttl_s
            rows.append(
                {
                    "site": site,
                    "beating": beating and not (beat is not None and beat.heartbeat.leaving),
                    "last_beat_s": None if age is None else round(age, 1),
                    "backlog": beat.heartbeat.backlog if beat else None,
                    "declared": self.journal.declared.get(site),
                    "units": sum(1 for u in self.book.leases if self.book.owner_at(u, now) == site),
                }
            )
        return rows

    def latency(self, now: datetime) -> dict[str, dict[str, Any]]:
        """Per precedence: deliveries seen, and p50/p99/max over the last minute (ms)."""
        since = now.timestamp() - LATENCY_WINDOW_S
        out = {}
        for precedence in Precedence:
            recent = sorted(
                ms for at, ms in self.latencies.get(precedence.value, ()) if at >= since
            )
            out[precedence.value] = {
                "delivered": self.delivered[precedence.value],
                "recent": len(recent),
                "p50_ms": _percentile(recent, 0.50),
                "p99_ms": _percentile(recent, 0.99),
                "max_ms": round(recent[-1]) if recent else None,
            }
        return out

    def snapshot(self, now: datetime) -> dict[str, Any]:
        """The JSON document ``/api/state`` serves."""
        intake = self.book.lease(INTAKE)
        term = intake.term(intake.epoch)
        return {
            "now": now.isoformat(),
            "prefix": self.topics.prefix,
            "on_duty": {
                "hub": self.on_duty(now),
                "epoch": intake.epoch,
                "since": term.claimed_at.isoformat() if term else None,
            },
            "hubs": self.hubs(now),
            "units": self.units(now),
            "latency": self.latency(now),
            "dead_letters": {
                "total": sum(self.dead_letters.values()),
                "by_reason": dict(self.dead_letters.most_common()),
            },
            **self.journal.snapshot(),
            "records": dict(self.records),
            "skipped": dict(self.skipped),
        }


def _percentile(ordered: list[float], share: float) -> int | None:
    """``agents.stats.percentile`` in whole milliseconds, as the dashboard shows them."""
    value = percentile(ordered, share)
    return None if value is None else round(value)
