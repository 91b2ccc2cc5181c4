"""Failover's pure core: liveness from heartbeats, and epoch-fenced lane leases."""

from __future__ import annotations

from datetime import timedelta

import pytest

from schemas.leases import (
    Claim,
    FenceVerdict,
    LeaseBook,
    LeaseEvent,
    LeaseRecord,
    LeaseRefused,
    Release,
    Renew,
    judge,
)
from streams.core.liveness import Heartbeat, HubView, Liveness, LivenessPolicy, assess, observe
from tests.unit.factories import T0

POLICY = LivenessPolicy(timeout=timedelta(seconds=3), revive_after=2)


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def beats(
    received: list[float], *, sent_skew: float = 0.0, sequences: list[int] | None = None
) -> HubView | None:
    view: HubView | None = None
    for index, at in enumerate(received):
        sequence = sequences[index] if sequences else index
        beat = Heartbeat(site="lyon", sequence=sequence, sent_at=T0 + s(at + sent_skew))
        view = observe(view, beat, T0 + s(at), POLICY)
    return view


@pytest.mark.parametrize(
    ("received", "now", "expected"),
    [
        ([0, 1, 2], 2.5, Liveness.ALIVE),
        ([0, 1, 2], 5.0, Liveness.ALIVE),  # exactly the timeout: still alive
        ([0, 1, 2], 5.5, Liveness.DEAD),
        ([], 0.0, Liveness.DEAD),  # never heard from
        ([0, 1, 2, 6], 6.5, Liveness.DEAD),  # came back: one beat is not enough (flap guard)
        ([0, 1, 2, 6, 7], 7.5, Liveness.ALIVE),  # two consecutive beats revive it
        ([0, 1, 2, 6, 10, 14], 14.5, Liveness.DEAD),  # flapping: never two in a row
    ],
)
def test_detection_table(received: list[float], now: float, expected: Liveness) -> None:
    assert assess(beats(received), T0 + s(now), POLICY) is expected


@pytest.mark.parametrize("skew", [-3600.0, -2.5, 0.0, 2.5, 86400.0])
def test_clock_skew_between_hubs_does_not_matter(skew: float) -> None:
    view = beats([0, 1, 2], sent_skew=skew)
    assert assess(view, T0 + s(2.5), POLICY) is Liveness.ALIVE
    assert assess(view, T0 + s(6), POLICY) is Liveness.DEAD


def test_a_replayed_or_reordered_beat_is_ignored() -> None:
    view = beats([0, 1, 2, 9], sequences=[0, 1, 2, 1])
    assert view is not None
    assert view.last_received == T0 + s(2)
    assert assess(view, T0 + s(9), POLICY) is Liveness.DEAD


L = "i247.hub.lyon.flash"
TTL = s(5)


def test_a_free_lane_is_claimed_at_the_next_epoch() -> None:
    book = LeaseBook.empty().apply(Claim(L, "lyon", 1, T0, TTL))
    assert book.owner_at(L, T0 + s(1)) == "lyon"
    assert book.lease(L).epoch == 1


@pytest.mark.parametrize(
    ("events", "refusal"),
    [
        ([Claim(L, "lyon", 2, T0, TTL)], "next epoch is 1"),
        ([Claim(L, "lyon", 1, T0, TTL), Claim(L, "singapore", 2, T0 + s(1), TTL)], "held by lyon"),
        ([Claim(L, "lyon", 1, T0, TTL), Renew(L, "singapore", 1, T0, TTL)], "owned by lyon@1"),
        ([Claim(L, "lyon", 1, T0, TTL), Release(L, "lyon", 0, T0)], "owned by lyon@1"),
    ],
)
def test_illegal_moves_are_refused_with_a_reason(events: list[LeaseEvent], refusal: str) -> None:
    book = LeaseBook.empty()
    *before, last = events
    for event in before:
        book = book.apply(event)
    with pytest.raises(LeaseRefused, match=refusal):
        book.apply(last)


def test_the_successor_starts_where_the_owner_last_reported_and_fences_the_rest() -> None:
    book = LeaseBook.empty().apply(Claim(L, "lyon", 1, T0, TTL))
    book = book.apply(Renew(L, "lyon", 1, T0 + s(1), TTL, {0: 40}))
    book = book.apply(Claim(L, "buenos-aires", 2, T0 + s(7), TTL))  # lyon's lease expired at 6 s
    assert book.owner_at(L, T0 + s(8)) == "buenos-aires"
    assert book.lease(L).positions == {0: 40}
    assert judge(book, L, 1, 0, 39) is FenceVerdict.ACCEPT  # finished before it lost the lease
    assert judge(book, L, 1, 0, 40) is FenceVerdict.FENCED  # buenos-aires delivers this one
    assert judge(book, L, 2, 0, 40) is FenceVerdict.ACCEPT
    assert judge(book, L, 2, 0, 10**9) is FenceVerdict.ACCEPT  # the open term has no end
    assert judge(book, L, 3, 0, 0) is FenceVerdict.UNKNOWN  # the reader is behind
    assert judge(book, L, 0, 0, 0) is FenceVerdict.FENCED  # never a term


def test_failback_after_release_keeps_one_owner_per_epoch() -> None:
    book = LeaseBook.empty().apply(Claim(L, "lyon", 1, T0, TTL))
    book = book.apply(Claim(L, "buenos-aires", 2, T0 + s(6), TTL))
    book = book.apply(Renew(L, "buenos-aires", 2, T0 + s(7), TTL, {0: 5}))
    book = book.apply(Release(L, "buenos-aires", 2, T0 + s(8), {0: 9}))
    assert book.owner_at(L, T0 + s(8)) is None
    book = book.apply(Claim(L, "lyon", 3, T0 + s(8), TTL))
    assert book.owner_at(L, T0 + s(9)) == "lyon"
    assert [(t.epoch, t.owner) for t in book.lease(L).terms] == [
        (1, "lyon"),
        (2, "buenos-aires"),
        (3, "lyon"),
    ]
    assert book.lease(L).term(3).start == {0: 9}  # type: ignore[union-attr]
    assert judge(book, L, 2, 0, 8) is FenceVerdict.ACCEPT
    assert judge(book, L, 2, 0, 9) is FenceVerdict.FENCED
    assert judge(book, L, 1, 0, 0) is FenceVerdict.FENCED  # lyon's first term reported nothing


def test_a_claimer_that_saw_more_than_was_reported_starts_there() -> None:
    book = LeaseBook.empty().apply(Claim(L, "lyon", 1, T0, TTL))
    book = book.apply(Renew(L, "lyon", 1, T0 + s(1), TTL, {0: 28, 1: 5}))
    book = book.apply(Claim(L, "singapore", 2, T0 + s(7), TTL, {0: 31}))
    assert book.lease(L).term(2).start == {0: 31, 1: 5}  # type: ignore[union-attr]
    assert judge(book, L, 1, 0, 30) is FenceVerdict.ACCEPT  # lyon's unreported copy stands
    assert judge(book, L, 1, 0, 31) is FenceVerdict.FENCED


def test_positions_never_move_back() -> None:
    book = LeaseBook.empty().apply(Claim(L, "lyon", 1, T0, TTL))
    book = book.apply(Renew(L, "lyon", 1, T0 + s(1), TTL, {0: 40, 1: 3}))
    book = book.apply(Renew(L, "lyon", 1, T0 + s(2), TTL, {0: 12}))
    assert book.lease(L).positions == {0: 40, 1: 3}


@pytest.mark.parametrize(
    "event",
    [
        Claim(L, "lyon", 1, T0, TTL),
        Renew(L, "lyon", 4, T0, TTL, {0: 7, 3: 9}),
        Release(L, "singapore", 2, T0, {1: 1}),
    ],
)
def test_lease_events_round_trip_through_their_wire_form(event: LeaseEvent) -> None:
    wire = LeaseRecord.of(event).model_dump_json()
    assert LeaseRecord.model_validate_json(wire).event() == event


def test_renewal_extends_the_lease() -> None:
    book = LeaseBook.empty().apply(Claim(L, "lyon", 1, T0, TTL))
    book = book.apply(Renew(L, "lyon", 1, T0 + s(4), TTL))
    with pytest.raises(LeaseRefused):
        book.apply(Claim(L, "singapore", 2, T0 + s(6), TTL))
