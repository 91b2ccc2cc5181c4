"""Failover's pure core: liveness from heartbeats, and epoch-fenced lane leases."""

from __future__ import annotations

from datetime import timedelta

import pytest

from streams.leases import Claim, LeaseBook, LeaseEvent, LeaseRefused, Release, Renew, is_fenced
from streams.liveness import Heartbeat, HubView, Liveness, LivenessPolicy, assess, observe
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


def test_the_successor_takes_an_expired_lease_and_the_old_epoch_is_fenced() -> None:
    book = LeaseBook.empty().apply(Claim(L, "lyon", 1, T0, TTL))
    book = book.apply(Claim(L, "buenos-aires", 2, T0 + s(6), TTL))  # lyon's lease expired at 5 s
    assert book.owner_at(L, T0 + s(7)) == "buenos-aires"
    assert is_fenced(book, L, "lyon", 1)  # lyon was only slow: its deliveries are refused
    assert not is_fenced(book, L, "buenos-aires", 2)


def test_failback_after_release_keeps_one_owner_per_epoch() -> None:
    book = LeaseBook.empty().apply(Claim(L, "lyon", 1, T0, TTL))
    book = book.apply(Claim(L, "buenos-aires", 2, T0 + s(6), TTL))
    book = book.apply(Release(L, "buenos-aires", 2, T0 + s(8)))
    book = book.apply(Claim(L, "lyon", 3, T0 + s(8), TTL))
    assert book.owner_at(L, T0 + s(9)) == "lyon"
    assert is_fenced(book, L, "buenos-aires", 2)
    assert is_fenced(book, L, "lyon", 1)


def test_renewal_extends_the_lease() -> None:
    book = LeaseBook.empty().apply(Claim(L, "lyon", 1, T0, TTL))
    book = book.apply(Renew(L, "lyon", 1, T0 + s(4), TTL))
    with pytest.raises(LeaseRefused):
        book.apply(Claim(L, "singapore", 2, T0 + s(6), TTL))
