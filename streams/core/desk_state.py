"""The CCC's desk state, folded from the journal: any hub can carry on any desk's clocks.

Theory of operation
-------------------
Handling clocks, hit-confirmation exchanges, multi-country windows and returned notice
requests used to live in the memory of the hub that opened them, so a failover lost
them. Now every change is a journal event (``schemas.journal``), and every hub folds the
whole control journal into one ``DeskState``::

    fold(state, event)      -> state   one event, from any hub, in journal order
    state.due_clocks(now)              handling breaches owed (``BreachOwed``)
    state.due_confirmations(now)       reminders and escalations owed
    state.due_windows(now)             consolidations owed
    state.reply_outcome(...)           what a multi-country reply counts as, now

Every hub folds; only the hub that holds intake asks what is ``due`` and acts (the shell
journals a breach, a reminder, an escalation or a consolidation, which every hub then
folds, closing the entry everywhere). What is owed depends on the events' own times, not
on which hub folds them or when, so a clock opened on Lyon breaches on Buenos Aires at
the same deadline.

The fold is **idempotent and order-tolerant**: an event folded twice (a hub's own event,
folded when written and again from the tail; an event replayed after a failover) changes
nothing the second time, and an acknowledgement or confirmation folded before the event
that opened its clock is remembered, so the open that follows is already crossed off
(no false breach). Entries that ended (closed, breached, consolidated) are remembered as
ended for ``retention``, so a lane redelivered after a failover, which journals its
``clock-opened`` again, does not reopen a clock; then forgotten, so memory stays bounded.
``due`` reports each entry once (it marks what it reported); the journaled outcome ends it.
A reminder is owed at half time only while the exchange is still open when ``due`` is
asked (the hub asks every second): an owner who has answered is not reminded.

The diffusion events (``diffusion-recorded``/``-recalled``) are desk events too, but
their ledger is the notice desk's (``streams.core.diffusions``): this fold passes them by.

``settle`` delays what is due by the journal's lag (an acknowledgement in time, written by
another hub a moment before the deadline, must be folded before the breach is decided).

Worked example: Lyon folds ``clock-opened`` m1 for DEU and ITA, deadline 12:00:10, then
``clock-stopped`` m1/DEU at 12:00:04. Lyon is killed; Buenos Aires, which folded the same
two events, takes intake; ``due_clocks(12:00:11.5)`` (settle 1 s) owes one breach, m1,
unacknowledged ("ITA",). BA journals ``handling-breach``; folding it ends m1; a replayed
``clock-opened`` m1 changes nothing.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import count

from schemas.checks import Urgency
from schemas.header import Precedence
from schemas.journal import (
    ClockOpened,
    ClocksOpened,
    ClocksStopped,
    ClockStopped,
    DeskEvent,
    HandlingBreach,
    HitConfirmationBreach,
    HitConfirmationReminder,
    HitConfirmationRequested,
    HitConfirmed,
    MultiCountryConsolidated,
    MultiCountryOpened,
    MultiCountryReplied,
    NoticeDecided,
)
from streams.core.clocks import as_utc

__all__ = [
    "BreachOwed",
    "ConsolidationOwed",
    "DeskState",
    "EscalationOwed",
    "ReminderOwed",
    "ReplyOutcome",
    "fold",
]

DEFAULT_RETENTION = timedelta(minutes=2)
DEFAULT_SETTLE = timedelta(seconds=1)
_SWEEP_SLACK = 1024  # stale heap entries tolerated before a sweep, besides 1 per open clock


class ReplyOutcome(StrEnum):
    ACCEPTED = "accepted"  # counted in the consolidated answer
    LATE = "late"  # after the window or the consolidation: forwarded to the asker
    DUPLICATE = "duplicate"  # the target had already replied; the first reply counts
    NOT_TARGETED = "not-targeted"  # the responder was not asked
    UNKNOWN = "unknown"  # no such window open or recently consolidated


@dataclass(frozen=True, slots=True)
class BreachOwed:
    message_id: str
    precedence: Precedence
    started_at: datetime
    deadline: datetime
    unacknowledged: tuple[str, ...]
    late_seconds: float


@dataclass(frozen=True, slots=True)
class ReminderOwed:
    confirmation_id: str
    owner: str
    urgency: Urgency
    deadline: datetime
    sealed: str | None  # the request, sealed for ccc, to send again


@dataclass(frozen=True, slots=True)
class EscalationOwed:
    confirmation_id: str
    owner: str
    asker: str
    urgency: Urgency
    deadline: datetime
    late_seconds: float


@dataclass(frozen=True, slots=True)
class ConsolidationOwed:
    query_id: str
    asker: str
    answers: dict[str, str | None]  # responder -> the reply sealed for ccc
    silent: tuple[str, ...]
    consolidated_at: datetime


@dataclass(slots=True)
class _Clock:
    serial: int  # tells this clock's heap entry from an ended predecessor's
    precedence: Precedence
    started_at: datetime
    deadline: datetime
    recipients: set[str]
    acked: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Exchange:
    event: HitConfirmationRequested
    half_time: datetime
    reminded: bool = False


@dataclass(slots=True)
class _Window:
    event: MultiCountryOpened
    answers: dict[str, str | None] = field(default_factory=dict)
    all_replied_at: datetime | None = None


class DeskState:
    """Open desk entries and what recently ended; see the module docstring."""

    __slots__ = (
        "_early_acks",
        "_early_confirmations",
        "_ended",
        "_heap",
        "_late_askers",
        "_reported",
        "_serials",
        "clocks",
        "exchanges",
        "retention",
        "returned",
        "settle",
        "windows",
    )

    def __init__(
        self, retention: timedelta = DEFAULT_RETENTION, settle: timedelta = DEFAULT_SETTLE
    ) -> None:
        self.retention = retention
        self.settle = settle
        self.clocks: dict[str, _Clock] = {}
        self.exchanges: dict[str, _Exchange] = {}
        self.windows: dict[str, _Window] = {}
        self.returned: dict[str, int] = {}  # request id -> version of the returned notice
        self._early_acks: OrderedDict[tuple[str, str], datetime] = OrderedDict()
        self._early_confirmations: OrderedDict[str, tuple[str, datetime]] = OrderedDict()
        self._ended: OrderedDict[tuple[str, str], datetime] = OrderedDict()  # -> forget after
        self._reported: set[tuple[str, str]] = set()
        self._heap: list[tuple[datetime, int, str]] = []  # clock deadlines
        self._late_askers: dict[str, str] = {}  # consolidated query id -> asker
        self._serials = count()

    # --- folding --------------------------------------------------------------------

    def fold(self, event: DeskEvent) -> DeskState:
        """Fold one journal event (see ``fold``); returns ``self``."""
        if isinstance(event, ClockOpened):
            self._open_clock(
                event.message_id, event.recipients, event.precedence, event.time, event.deadline
            )
        elif isinstance(event, ClocksOpened):
            for c in event.clocks:
                self._open_clock(c.message_id, c.recipients, c.precedence, event.time, c.deadline)
        elif isinstance(event, ClockStopped):
            self._stop_clock(event.message_id, event.recipient, event.time)
        elif isinstance(event, ClocksStopped):
            for stop in event.stops:
                self._stop_clock(stop.message_id, stop.recipient, stop.at)
        elif isinstance(event, HandlingBreach):
            self.clocks.pop(event.message_id, None)
            self._end("clock", event.message_id, event.time)
        elif isinstance(event, HitConfirmationRequested):
            self._open_exchange(event)
        elif isinstance(event, HitConfirmed):
            self._confirm(event.confirmation_id, event.owner, event.time)
        elif isinstance(event, HitConfirmationReminder):
            exchange = self.exchanges.get(event.confirmation_id)
            if exchange is not None:
                exchange.reminded = True
        elif isinstance(event, HitConfirmationBreach):
            self._end("exchange", event.confirmation_id, event.time)
            self.exchanges.pop(event.confirmation_id, None)
        elif isinstance(event, MultiCountryOpened):
            self._open_window(event)
        elif isinstance(event, MultiCountryReplied):
            self._add_reply(event)
        elif isinstance(event, MultiCountryConsolidated):
            self._end("window", event.query_id, event.time)
            self._late_askers[event.query_id] = event.asker
            self.windows.pop(event.query_id, None)
        elif isinstance(event, NoticeDecided):
            if event.decision == "returned" and event.version is not None:
                self.returned[event.request_id] = event.version
            elif event.decision in ("published", "refused"):
                self.returned.pop(event.request_id, None)
        return self

    def _open_clock(
        self,
        message_id: str,
        recipients: tuple[str, ...],
        precedence: Precedence,
        started_at: datetime,
        deadline: datetime,
    ) -> None:
        if self._ended_at("clock", message_id) or not recipients:
            return
        clock = self.clocks.get(message_id)
        if clock is None:
            serial, deadline = next(self._serials), as_utc(deadline)
            clock = _Clock(serial, precedence, as_utc(started_at), deadline, set())
            self.clocks[message_id] = clock
            heapq.heappush(self._heap, (deadline, serial, message_id))
        clock.recipients.update(recipients)
        for recipient in recipients:
            acked_at = self._early_acks.pop((message_id, recipient), None)
            if acked_at is not None and acked_at <= clock.deadline:
                clock.acked.add(recipient)
        self._close_if_done(message_id, clock, as_utc(started_at))

    def _stop_clock(self, message_id: str, recipient: str, at: datetime) -> None:
        at = as_utc(at)
        if self._ended_at("clock", message_id):
            return
        clock = self.clocks.get(message_id)
        if clock is None:  # the ack overtook its clock-opened: remember it for the open
            self._early_acks[(message_id, recipient)] = at
            return
        if at <= clock.deadline and recipient in clock.recipients:
            clock.acked.add(recipient)
            self._close_if_done(message_id, clock, at)

    def _close_if_done(self, message_id: str, clock: _Clock, at: datetime) -> None:
        if clock.acked >= clock.recipients:
            del self.clocks[message_id]
            self._end("clock", message_id, at)

    def _open_exchange(self, event: HitConfirmationRequested) -> None:
        cid = event.confirmation_id
        if self._ended_at("exchange", cid) or cid in self.exchanges:
            return
        start, deadline = as_utc(event.time), as_utc(event.deadline)
        self.exchanges[cid] = _Exchange(event, start + (deadline - start) / 2)
        early = self._early_confirmations.pop(cid, None)
        if early is not None:
            self._confirm(cid, *early)

    def _confirm(self, cid: str, owner: str, at: datetime) -> None:
        at = as_utc(at)
        if self._ended_at("exchange", cid):
            return
        exchange = self.exchanges.get(cid)
        if exchange is None:
            self._early_confirmations[cid] = (owner, at)
            return
        if owner == exchange.event.owner and at <= as_utc(exchange.event.deadline):
            del self.exchanges[cid]
            self._end("exchange", cid, at)

    def _open_window(self, event: MultiCountryOpened) -> None:
        if self._ended_at("window", event.query_id) or event.query_id in self.windows:
            return
        self.windows[event.query_id] = _Window(event)

    def _add_reply(self, event: MultiCountryReplied) -> None:
        window = self.windows.get(event.query_id)
        if window is None or event.outcome != ReplyOutcome.ACCEPTED:
            return
        at = as_utc(event.time)
        targets = window.event.targets
        if at > as_utc(window.event.closes_at) or event.responder not in targets:
            return
        window.answers.setdefault(event.responder, event.sealed)
        if window.all_replied_at is None and len(window.answers) == len(targets):
            window.all_replied_at = at

    def _end(self, kind: str, key: str, at: datetime) -> None:
        """``key`` ended at ``at``: remember it for the retention, and forget what ended
        before (every hub folds, only one asks what is due: memory is kept here)."""
        at = as_utc(at)
        self._ended[(kind, key)] = at + self.retention
        self._ended.move_to_end((kind, key))
        self._reported.discard((kind, key))
        self._forget(at)
        if kind == "clock" and len(self._heap) > 2 * len(self.clocks) + _SWEEP_SLACK:
            self._heap = [(c.deadline, c.serial, m) for m, c in self.clocks.items()]
            heapq.heapify(self._heap)

    def _ended_at(self, kind: str, key: str) -> bool:
        return (kind, key) in self._ended

    # --- decisions ------------------------------------------------------------------

    def reply_outcome(self, query_id: str, responder: str, now: datetime) -> ReplyOutcome:
        """What a reply from ``responder`` at ``now`` counts as (the shell journals it)."""
        window = self.windows.get(query_id)
        if window is None:
            ended = self._ended_at("window", query_id)
            return ReplyOutcome.LATE if ended else ReplyOutcome.UNKNOWN
        if responder not in window.event.targets:
            return ReplyOutcome.NOT_TARGETED
        if as_utc(now) > as_utc(window.event.closes_at) or window.all_replied_at is not None:
            return ReplyOutcome.LATE
        if responder in window.answers:
            return ReplyOutcome.DUPLICATE
        return ReplyOutcome.ACCEPTED

    def asker_of(self, query_id: str) -> str | None:
        """The asker of an open or recently consolidated query (a late reply goes to it)."""
        window = self.windows.get(query_id)
        return self._late_askers.get(query_id) if window is None else window.event.asker

    def confirmation_in_time(self, confirmation_id: str, owner: str, now: datetime) -> bool:
        """Whether a confirmation by ``owner`` at ``now`` closes an open exchange in time."""
        exchange = self.exchanges.get(confirmation_id)
        return (
            exchange is not None
            and exchange.event.owner == owner
            and as_utc(now) <= as_utc(exchange.event.deadline)
        )

    def due_clocks(self, now: datetime) -> list[BreachOwed]:
        """Clocks past their deadline (and the settle), earliest first, each reported once
        (until the breach the shell journals is folded, the clock stays open, unreported)."""
        now = as_utc(now)
        self._forget(now)
        owed = []
        while self._heap and self._heap[0][0] + self.settle < now:
            _, serial, message_id = heapq.heappop(self._heap)
            clock = self.clocks.get(message_id)
            if clock is not None and clock.serial == serial:
                owed.append(
                    BreachOwed(
                        message_id,
                        clock.precedence,
                        clock.started_at,
                        clock.deadline,
                        tuple(sorted(clock.recipients - clock.acked)),
                        (now - clock.deadline).total_seconds(),
                    )
                )
        return owed

    def due_confirmations(self, now: datetime) -> list[ReminderOwed | EscalationOwed]:
        """Reminders (half time reached) and escalations (deadline passed), each once."""
        now = as_utc(now)
        owed: list[ReminderOwed | EscalationOwed] = []
        for cid, exchange in self.exchanges.items():
            event = exchange.event
            deadline = as_utc(event.deadline)
            if deadline + self.settle < now:
                if self._report("exchange", cid):
                    late = (now - deadline).total_seconds()
                    asker = event.asker or event.owner
                    owed.append(
                        EscalationOwed(cid, event.owner, asker, event.urgency, deadline, late)
                    )
            elif exchange.half_time <= now and not exchange.reminded:
                exchange.reminded = True
                owed.append(ReminderOwed(cid, event.owner, event.urgency, deadline, event.sealed))
        return owed

    def due_windows(self, now: datetime) -> list[ConsolidationOwed]:
        """Windows whose targets all replied or whose end has passed, each once."""
        now = as_utc(now)
        owed = []
        for query_id, window in self.windows.items():
            closes_at = as_utc(window.event.closes_at)
            moment = window.all_replied_at or closes_at
            ready = window.all_replied_at is not None or closes_at + self.settle < now
            if ready and self._report("window", query_id):
                silent = tuple(sorted(set(window.event.targets) - set(window.answers)))
                answers = dict(sorted(window.answers.items()))
                owed.append(
                    ConsolidationOwed(query_id, window.event.asker, answers, silent, moment)
                )
        return owed

    def _report(self, kind: str, key: str) -> bool:
        if (kind, key) in self._reported:
            return False
        self._reported.add((kind, key))
        return True

    def _forget(self, now: datetime) -> None:
        """Drop ended entries and early answers older than the retention (oldest first,
        so amortized O(1) per event; times from several hubs are near enough in order)."""
        while self._ended:
            key, forget_after = next(iter(self._ended.items()))
            if forget_after >= now:
                break
            del self._ended[key]
            if key[0] == "window":
                self._late_askers.pop(key[1], None)
        while self._early_acks:
            pair, at = next(iter(self._early_acks.items()))
            if at + self.retention >= now:
                break
            del self._early_acks[pair]
        while self._early_confirmations:
            cid, (_, at) = next(iter(self._early_confirmations.items()))
            if at + self.retention >= now:
                break
            del self._early_confirmations[cid]

    @property
    def remembered(self) -> int:
        """Ended entries and early answers still remembered (bounded by the retention)."""
        return len(self._ended) + len(self._early_acks) + len(self._early_confirmations)

    @property
    def open_clocks(self) -> int:
        return len(self.clocks)

    @property
    def open_exchanges(self) -> int:
        return len(self.exchanges)

    @property
    def open_windows(self) -> int:
        return len(self.windows)


def fold(state: DeskState, event: DeskEvent) -> DeskState:
    """``state`` after ``event``. For speed (a journal event per delivery) the state is
    updated in place and returned; folding the same event again changes nothing."""
    return state.fold(event)
