"""Prometheus metrics of a hub and of the archiver, each on a registry of its own.

A registry per process object, never prometheus_client's global default, so a test (or a
demo running several hubs in one interpreter) can build as many as it likes. The hub's
runtime calls these where it already keeps ``state.counts``; gauges that describe the
present (units held, backlog) are set by ``HubMetrics.held`` from the event loop, so the
HTTP thread that serves them only ever reads the registry.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["LATENCY_BUCKETS", "ArchiverMetrics", "HubMetrics"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
"""Seconds from a message's ``created_at`` to its delivery: milliseconds on a quiet hub,
up to the freshness window (300 s) for a message that waited out a failover."""


class HubMetrics:
    """What one hub exposes on ``/metrics``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        r = self.registry
        self.unit_epoch = Gauge(
            "i247_hub_unit_epoch", "Lease epoch of each unit held now", ["unit"], registry=r
        )
        self.units_held = Gauge("i247_hub_units_held", "Units this hub holds now", registry=r)
        self.backlog = Gauge(
            "i247_hub_lane_backlog",
            "Records of a held unit not yet handled (from the last fetch's high watermark)",
            ["unit"],
            registry=r,
        )
        self.messages = Counter(
            "i247_hub_messages",
            "Messages by outcome (admitted, refused, readmitted, delivered, fenced, duplicate, "
            "ccc); reason is set for refusals only",
            ["outcome", "reason"],
            registry=r,
        )
        self.dead_letters = Counter(
            "i247_hub_dead_letters", "Records sent to the dead-letter topic", ["reason"], registry=r
        )
        self.latency = Histogram(
            "i247_hub_delivery_latency_seconds",
            "From the routing header's created_at to the hub producing the inbox copies",
            ["precedence"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.breaches = Counter(
            "i247_hub_breaches", "Handling-time objectives breached", ["precedence"], registry=r
        )
        self.claims = Counter(
            "i247_hub_claims",
            "Leases this hub claimed and confirmed, by reason (failover, failback, ...)",
            ["unit", "reason"],
            registry=r,
        )
        self._held: set[str] = set()

    def admitted(self) -> None:
        self.messages.labels("admitted", "").inc()

    def readmitted(self) -> None:
        self.messages.labels("readmitted", "").inc()

    def refused(self, reason: str) -> None:
        """A refusal at intake: counted as an outcome and as the dead letter it becomes."""
        self.messages.labels("refused", reason).inc()
        self.dead_letters.labels(reason).inc()

    def fenced(self) -> None:
        self.messages.labels("fenced", "").inc()

    def delivered(
        self, recipients: int, precedence: str, latency_seconds: float, duplicates: int = 0
    ) -> None:
        """One lane record handled: its inbox copies, duplicates skipped, and its latency."""
        if recipients:
            self.messages.labels("delivered", "").inc(recipients)
            self.latency.labels(precedence).observe(max(0.0, latency_seconds))
        if duplicates:
            self.messages.labels("duplicate", "").inc(duplicates)

    def to_ccc(self) -> None:
        self.messages.labels("ccc", "").inc()

    def breach(self, precedence: str) -> None:
        self.breaches.labels(precedence).inc()

    def claimed(self, unit: str, reason: str) -> None:
        self.claims.labels(unit, reason).inc()

    def held(self, epochs: Mapping[str, int], backlog: Mapping[str, int]) -> None:
        """The units held now with their epochs and backlogs; units let go disappear."""
        for unit in self._held - set(epochs):
            self.unit_epoch.remove(unit)
            self.backlog.remove(unit)
        for unit, epoch in epochs.items():
            self.unit_epoch.labels(unit).set(epoch)
            self.backlog.labels(unit).set(backlog.get(unit, 0))
        self._held = set(epochs)
        self.units_held.set(len(epochs))


class ArchiverMetrics:
    """What the archiver exposes on ``/metrics``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        r = self.registry
        self.archived = Counter(
            "i247_archiver_records", "Records appended to the archive by this run", registry=r
        )
        self.heads = Counter("i247_archiver_tree_heads", "Tree heads signed (this run)", registry=r)
        self.leaves = Gauge("i247_archiver_leaves", "Records in the archive file", registry=r)

    def appended(self, records: int, leaves: int) -> None:
        self.archived.inc(records)
        self.leaves.set(leaves)

    def head_signed(self) -> None:
        self.heads.inc()
