"""Replay's second source: the audit archive, read in archive (leaf) order.

Theory of operation: the archive keeps every backbone record for good, so a replay from
it reaches back past broker retention and needs no broker at all (unless it re-publishes).
The replay's position criteria go down into the SQLite query: the time window as
``timestamp_ms >= since AND timestamp_ms < until`` (indexed), the topic selector resolved
against the archive's distinct topic names into ``topic IN (...)``. Header criteria stay
with the caller's filter, which also checks time and topic again (it costs nothing).

Records come in leaf order, the order the archiver read them: each partition in offset
order, partitions interleaved batch by batch, so timestamps across partitions run
roughly, not strictly, forward (the replay pacer takes the running maximum).

A record archived with a null value (a tombstone) replays with an empty value, and a
header with a null value with an empty one, as ``ReceivedRecord`` has no nulls there.

Worked example::

    with ArchiveSource(path, select=lambda t: t.endswith(".inbound"),
                       since_ms=now_ms - 3_600_000) as source:
        source.total          # records the query will yield
        for record in source: ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

import structlog

from brokers.archive_store import ArchiveStore
from brokers.records import ReceivedRecord
from schemas.archive import ArchivedRecord

__all__ = ["ArchiveSource", "received"]

log = structlog.get_logger("i247.replay")


def received(record: ArchivedRecord) -> ReceivedRecord:
    """An archived record as the backbone's record type (nulls become empty bytes)."""
    return ReceivedRecord(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp_ms=record.timestamp_ms,
        key=record.key,
        value=record.value or b"",
        headers=tuple((name, value or b"") for name, value in record.headers),
    )


class ArchiveSource:
    """The archived records of the selected topics within ``[since_ms, until_ms)``."""

    def __init__(
        self,
        path: Path,
        *,
        select: Callable[[str], bool] = lambda _: True,
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> None:
        self.path = path
        self.select = select
        self.since_ms = since_ms
        self.until_ms = until_ms
        self.topics: list[str] = []
        self.total = 0
        self._store: ArchiveStore | None = None
        self._every_topic = False

    @property
    def _query_topics(self) -> list[str] | None:
        """The topic list for the query; None (no clause) when every topic is selected."""
        return None if self._every_topic else self.topics

    def __enter__(self) -> ArchiveSource:
        store = ArchiveStore.open_reader(self.path)
        try:
            names = store.topic_names()
            self.topics = sorted(t for t in names if self.select(t))
            self._every_topic = len(self.topics) == len(names)
            self.total = (
                store.count(
                    topics=self._query_topics, since_ms=self.since_ms, until_ms=self.until_ms
                )
                if self.topics
                else 0
            )
        except BaseException:
            store.close()
            raise
        self._store = store
        log.info(
            "replay-archive-planned",
            archive=str(self.path),
            topics=len(self.topics),
            records=self.total,
            since_ms=self.since_ms,
            until_ms=self.until_ms,
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._store is not None:
            store, self._store = self._store, None
            store.close()

    def __iter__(self) -> Iterator[ReceivedRecord]:
        if self._store is None:
            raise RuntimeError("use `with ArchiveSource(...)` before iterating")
        if not self.topics:
            return
        for stored in self._store.records(
            topics=self._query_topics, since_ms=self.since_ms, until_ms=self.until_ms
        ):
            yield received(stored.record)
