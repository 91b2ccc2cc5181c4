"""Multi-country queries: gather several NCBs' replies into one consolidated answer.

Theory of operation
-------------------
An asker puts one question to several NCBs (``MultiCountryQuery``); the CCC forwards it
and ``open``s a collector with the targets and a window (60 s by default, divided by
``scale`` like every clock here). Then::

    add_reply(reply, now)   ACCEPTED (first reply of a target, within the window), LATE,
                            DUPLICATE, NOT_TARGETED or UNKNOWN (see ``ReplyOutcome``)
    due(now)                the ConsolidatedAnswer of every query whose window has ended
                            or whose targets have all replied, each exactly once

The window closes at ``opened + window``; a reply at that instant is in time. The answer
is consolidated at the earlier of the last target's reply and the window's end, and names
the targets that did not reply in time (``silent``). A reply after that is ``LATE``: the
shell forwards it to the asker as a late reply, it is not lost; the collector remembers a
consolidated query for ``retention`` (default ten windows) so it can tell late from unknown.

Worked example (scale 1): query q1 to DEU, FRA, ITA opened at 12:00:00. FRA replies at
12:00:05 (ACCEPTED), DEU at 12:00:20 (ACCEPTED). ``due(12:00:30)`` is empty;
``due(12:01:01)`` returns one answer, ``answers`` {DEU, FRA}, ``silent`` (ITA,),
consolidated at 12:01:00; ITA's reply at 12:01:05 is LATE. Had ITA replied at 12:00:40,
``due(12:00:41)`` would have returned the complete answer, consolidated at 12:00:40.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import count

from schemas.checks import ConsolidatedAnswer, MultiCountryQuery, MultiCountryReply
from streams.clocks import InvalidClockScale, as_utc

__all__ = ["MultiCountryCollector", "ReplyOutcome"]

_RETENTION_WINDOWS = 10


class ReplyOutcome(StrEnum):
    ACCEPTED = "accepted"  # counted in the consolidated answer
    LATE = "late"  # after the window or the consolidation: forward it as a late reply
    DUPLICATE = "duplicate"  # the target had already replied; the first reply counts
    NOT_TARGETED = "not-targeted"  # the responder was not asked
    UNKNOWN = "unknown"  # no such query open or recently consolidated


@dataclass(slots=True)
class _Collection:
    query: MultiCountryQuery
    closes_at: datetime
    answers: dict[str, str] = field(default_factory=dict)
    all_replied_at: datetime | None = None


class MultiCountryCollector:
    """Open multi-country queries, by query id; see the module docstring."""

    __slots__ = ("_closed", "_heap", "_open", "_ready", "_serials", "scale")

    def __init__(self, scale: float = 1.0) -> None:
        if not (math.isfinite(scale) and scale > 0):
            raise InvalidClockScale(f"clock scale must be finite and above 0, got {scale!r}")
        self.scale = scale
        self._open: dict[str, _Collection] = {}
        self._ready: list[str] = []  # all targets replied: consolidate at the next due
        self._closed: dict[str, datetime] = {}  # consolidated query id -> forget after
        self._heap: list[tuple[datetime, int, str]] = []
        self._serials = count()

    def window_for(self, query: MultiCountryQuery) -> timedelta:
        return timedelta(seconds=query.window_seconds) / self.scale

    def open(self, query: MultiCountryQuery, now: datetime) -> None:
        """Start collecting; opening a query already open or consolidated changes nothing."""
        now = as_utc(now)
        if query.query_id in self._open or query.query_id in self._closed:
            return
        closes_at = now + self.window_for(query)
        self._open[query.query_id] = _Collection(query, closes_at)
        heapq.heappush(self._heap, (closes_at, next(self._serials), query.query_id))

    def add_reply(self, reply: MultiCountryReply, now: datetime) -> ReplyOutcome:
        """Count ``reply`` if it is a target's first, in time; otherwise say why not."""
        now = as_utc(now)
        collection = self._open.get(reply.query_id)
        if collection is None:
            closed = reply.query_id in self._closed
            return ReplyOutcome.LATE if closed else ReplyOutcome.UNKNOWN
        if reply.responder not in collection.query.targets:
            return ReplyOutcome.NOT_TARGETED
        if now > collection.closes_at or collection.all_replied_at is not None:
            return ReplyOutcome.LATE
        if reply.responder in collection.answers:
            return ReplyOutcome.DUPLICATE
        collection.answers[reply.responder] = reply.answer
        if len(collection.answers) == len(collection.query.targets):
            collection.all_replied_at = now
            self._ready.append(reply.query_id)
        return ReplyOutcome.ACCEPTED

    def due(self, now: datetime) -> list[ConsolidatedAnswer]:
        """Every answer owed at ``now``, earliest first; each exactly once."""
        now = as_utc(now)
        answers: list[tuple[datetime, ConsolidatedAnswer]] = []
        for query_id in self._ready:
            collection = self._open.pop(query_id)
            moment = collection.all_replied_at or collection.closes_at
            answers.append((moment, self._consolidate(collection, moment)))
        self._ready.clear()
        while self._heap and self._heap[0][0] < now:
            closes_at, _, query_id = heapq.heappop(self._heap)
            popped = self._open.pop(query_id, None)
            if popped is not None:
                answers.append((closes_at, self._consolidate(popped, closes_at)))
        for query_id, forget_after in list(self._closed.items()):
            if forget_after < now:
                del self._closed[query_id]
        answers.sort(key=lambda pair: pair[0])
        return [answer for _, answer in answers]

    @property
    def open_count(self) -> int:
        return len(self._open)

    def _consolidate(self, collection: _Collection, moment: datetime) -> ConsolidatedAnswer:
        query = collection.query
        retention = self.window_for(query) * _RETENTION_WINDOWS
        self._closed[query.query_id] = moment + retention
        return ConsolidatedAnswer(
            query_id=query.query_id,
            asker=query.asker,
            answers=dict(sorted(collection.answers.items())),
            silent=tuple(sorted(set(query.targets) - set(collection.answers))),
            consolidated_at=moment,
        )
