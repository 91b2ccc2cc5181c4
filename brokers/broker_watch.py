"""Is the broker there, and is it the broker we had? A pure watcher over metadata probes.

Theory of operation
-------------------
A process probes the broker every second or so (``brokers.broker_probe``: one Metadata
request) and folds each answer into a ``BrokerWatch``, which returns what changed as data.
Three things look alike to a Kafka client, which simply retries, and must not to an
operator:

* **unreachable**: no answer. Said once (``broker-unreachable``), not once per retry;
* **back**: it answers again with the same cluster id and the topics we need. Its log is
  intact (a Kafka cluster restarted, a link restored): nothing to do but carry on;
* **log lost**: it answers with another cluster id (the embedded broker names each start
  anew, ``brokers.embedded``) or without our topics. Its records are gone: leases,
  journals, inboxes. A client must not write into it as if nothing happened; it waits,
  saying what to do (``i247 provision``), until the topics exist again, then starts afresh
  (``log-ready``; a hub claims its leases anew).

``generation`` counts the logs seen: it grows by one at every loss, so a shell can tell
that what it built belongs to an earlier log.

States and moves (``state`` + probe -> state, change)::

    reachable    no answer                    -> unreachable  UNREACHABLE
    unreachable  no answer                    -> unreachable  (nothing: said once)
    reachable    same id, topics present      -> reachable    (nothing)
    unreachable  same id, topics present      -> reachable    BACK
    any          other id or topics missing   -> log-lost     LOG_LOST (once per loss)
    log-lost     topics still missing         -> log-lost     (nothing)
    log-lost     topics present               -> reachable    LOG_READY
    log-lost     no answer                    -> unreachable  UNREACHABLE (still lost)

Worked example::

    >>> watch = BrokerWatch.first(Probe("i247-a"), at=0.0)
    >>> watch, change = watch.observe(Probe(None, error="refused"), at=5.0)
    >>> change.kind.value, watch.state.value
    ('broker-unreachable', 'unreachable')
    >>> watch, change = watch.observe(Probe("i247-b", missing=("i247.leases",)), at=9.0)
    >>> change.kind.value, watch.generation
    ('broker-log-lost', 1)
    >>> watch, change = watch.observe(Probe("i247-b"), at=20.0)
    >>> change.kind.value, watch.state.value
    ('broker-log-ready', 'reachable')
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

__all__ = ["BrokerChange", "BrokerState", "BrokerWatch", "ChangeKind", "Probe"]

PROVISION_FIX = "run `i247 provision` (creates the topics), then the hubs resume by themselves"


class BrokerState(Enum):
    REACHABLE = "reachable"
    UNREACHABLE = "unreachable"
    LOG_LOST = "log-lost"


class ChangeKind(Enum):
    UNREACHABLE = "broker-unreachable"
    BACK = "broker-back"
    LOG_LOST = "broker-log-lost"
    LOG_READY = "broker-log-ready"


@dataclass(frozen=True, slots=True)
class Probe:
    """One probe's answer: the cluster id (None: no answer, ``error`` says why) and which
    of the topics the prober needs are missing."""

    cluster_id: str | None
    missing: tuple[str, ...] = ()
    error: str = ""

    @property
    def answered(self) -> bool:
        return self.cluster_id is not None


@dataclass(frozen=True, slots=True)
class BrokerChange:
    """What a probe changed, for the shell to log, journal and act on."""

    kind: ChangeKind
    at: float
    detail: str
    down_seconds: float | None = None  # for BACK and LOG_READY: since the broker was lost
    cluster_id: str | None = None
    previous_cluster_id: str | None = None
    missing: tuple[str, ...] = ()
    fix: str | None = None

    def fields(self) -> dict[str, object]:
        """The log fields (the event name is ``kind.value``)."""
        out: dict[str, object] = {"detail": self.detail}
        for name in ("down_seconds", "cluster_id", "previous_cluster_id", "fix"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.missing:
            out["missing_topics"] = list(self.missing[:5])
            out["missing_count"] = len(self.missing)
        return out


@dataclass(frozen=True, slots=True)
class BrokerWatch:
    """The watcher's memory: state, the cluster id of the log we trust, when trouble began."""

    state: BrokerState
    cluster_id: str | None
    generation: int = 0
    since: float | None = None  # when it went unreachable or lost its log
    lost: bool = False  # the log was lost and has not been provisioned again

    @classmethod
    def first(cls, probe: Probe, at: float) -> BrokerWatch:
        """The watch after a process's first probe: whatever answers now is our broker."""
        if not probe.answered:
            return cls(BrokerState.UNREACHABLE, None, since=at)
        if probe.missing:
            return cls(BrokerState.LOG_LOST, probe.cluster_id, since=at, lost=True)
        return cls(BrokerState.REACHABLE, probe.cluster_id)

    @property
    def usable(self) -> bool:
        """The broker answers with an intact log: clients may read and write."""
        return self.state is BrokerState.REACHABLE

    def observe(self, probe: Probe, at: float) -> tuple[BrokerWatch, BrokerChange | None]:
        """Fold one probe; return the new watch and what changed (None: nothing to say)."""
        if not probe.answered:
            if self.state is BrokerState.UNREACHABLE:
                return self, None
            since = self.since if self.lost and self.since is not None else at
            watch = replace(self, state=BrokerState.UNREACHABLE, since=since)
            return watch, BrokerChange(ChangeKind.UNREACHABLE, at, probe.error or "no answer")
        new_log = self.cluster_id is not None and probe.cluster_id != self.cluster_id
        if new_log or (probe.missing and not self.lost):
            watch = BrokerWatch(
                BrokerState.LOG_LOST,
                probe.cluster_id,
                self.generation + 1,
                since=self.since if self.since is not None else at,
                lost=True,
            )
            if not probe.missing:  # someone provisioned the new log already
                return watch._ready(probe, at, previous=self.cluster_id)
            why = "a new cluster id" if new_log else "its topics are gone"
            return watch, BrokerChange(
                ChangeKind.LOG_LOST,
                at,
                f"the broker answers with {why}: its records were lost (a restart on "
                "memory storage); clients wait, they do not write into it",
                cluster_id=probe.cluster_id,
                previous_cluster_id=self.cluster_id,
                missing=probe.missing,
                fix=PROVISION_FIX,
            )
        if probe.missing:  # lost before, still not provisioned
            return replace(self, state=BrokerState.LOG_LOST, cluster_id=probe.cluster_id), None
        if self.lost:
            return self._ready(probe, at, previous=None)
        if self.state is BrokerState.UNREACHABLE:
            down = None if self.since is None else round(at - self.since, 3)
            watch = BrokerWatch(BrokerState.REACHABLE, probe.cluster_id, self.generation)
            return watch, BrokerChange(
                ChangeKind.BACK,
                at,
                "the broker answers again with its log intact",
                down_seconds=down,
                cluster_id=probe.cluster_id,
            )
        return replace(self, cluster_id=probe.cluster_id), None

    def _ready(
        self, probe: Probe, at: float, *, previous: str | None
    ) -> tuple[BrokerWatch, BrokerChange]:
        down = None if self.since is None else round(at - self.since, 3)
        watch = BrokerWatch(BrokerState.REACHABLE, probe.cluster_id, self.generation)
        return watch, BrokerChange(
            ChangeKind.LOG_READY,
            at,
            "the broker's topics exist again on a new log: start afresh",
            down_seconds=down,
            cluster_id=probe.cluster_id,
            previous_cluster_id=previous,
        )
