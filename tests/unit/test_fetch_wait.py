"""The adaptive fetch wait: short while records flow, a share of the silence when quiet."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from brokers.fetch_wait import AdaptiveConsumer, AdaptiveFetchWait, FetchPace


@pytest.mark.parametrize(
    ("polls", "expected"),
    [
        ([(0, 0)], 10),  # the first poll starts the clock at the short wait
        ([(3, 0), (0, 20)], 10),  # 20 ms of silence: a quarter is 5 ms, below the floor
        ([(3, 0), (0, 100)], 25),  # a quarter of the silence
        ([(3, 0), (0, 100), (0, 400)], 100),
        ([(3, 0), (0, 5_000)], 250),  # capped at the idle wait
        ([(3, 0), (0, 5_000), (1, 5_010)], 10),  # records: back to the short wait at once
        ([(3, 0), (0, 5_000), (1, 5_010), (0, 5_050)], 10),
    ],
)
def test_the_wait_follows_the_silence(polls: list[tuple[int, float]], expected: int) -> None:
    policy = AdaptiveFetchWait(short_ms=10, idle_ms=250)
    waits = [policy.observe(records, now_ms) for records, now_ms in polls]
    assert waits[-1] == expected
    assert policy.wait_ms == expected


def test_an_idle_cap_below_the_short_wait_never_shortens_it() -> None:
    policy = AdaptiveFetchWait(short_ms=100, idle_ms=50)
    policy.observe(1, 0)
    assert policy.observe(0, 10_000) == 100
    assert policy.idle_ms == 100


def test_a_record_after_a_silence_waited_at_most_a_quarter_of_it() -> None:
    policy = AdaptiveFetchWait(short_ms=10, idle_ms=250)
    policy.observe(1, 0)
    for silence in (40, 80, 200, 600, 1_000, 60_000):
        wait = policy.observe(0, silence)
        assert wait <= max(10, silence / 4)
        assert wait <= 250


def test_an_empty_fetch_earns_a_rest_of_the_pace() -> None:
    pace = FetchPace(pace_ms=250)
    assert pace.after(0, now_ms=1_000) == 250
    assert pace.rest_ms(now_ms=1_000) == 250
    assert pace.rest_ms(now_ms=1_200) == 50
    assert pace.rest_ms(now_ms=1_300) == 0


def test_a_fetch_with_records_earns_no_rest_and_ends_the_one_under_way() -> None:
    pace = FetchPace(pace_ms=250)
    pace.after(0, now_ms=1_000)
    assert pace.after(4, now_ms=1_010) == 0
    assert pace.rest_ms(now_ms=1_010) == 0


def test_each_empty_fetch_starts_a_new_rest_from_its_own_time() -> None:
    pace = FetchPace(pace_ms=2_000)
    pace.after(0, now_ms=0)
    pace.after(0, now_ms=2_100)
    assert pace.rest_ms(now_ms=3_000) == 1_100


def test_a_pace_of_zero_never_rests() -> None:
    pace = FetchPace(pace_ms=0)
    assert pace.after(0, now_ms=1_000) == 0
    assert pace.rest_ms(now_ms=1_000) == 0


def test_a_reader_waiting_for_a_record_never_rests() -> None:
    """A delivery under a lease term the reader has not read yet waits on its journal:
    the journal's reader fetches again at once, however empty its last fetch."""
    pace = FetchPace(pace_ms=250)
    assert pace.after(0, now_ms=1_000, waiting=1) == 0
    assert pace.rest_ms(now_ms=1_000) == 0
    assert pace.after(0, now_ms=1_050, waiting=2) == 0


def test_a_rest_earned_before_anyone_waited_is_ended_by_the_next_fetch_with_a_waiter() -> None:
    pace = FetchPace(pace_ms=250)
    assert pace.after(0, now_ms=1_000) == 250
    assert pace.after(0, now_ms=1_010, waiting=1) == 0
    assert pace.rest_ms(now_ms=1_020) == 0


def test_a_busy_pace_rests_after_a_fetch_with_records_too() -> None:
    """Off the message path under traffic: fewer fetches of long partitions."""
    pace = FetchPace(pace_ms=250, busy_pace_ms=200)
    assert pace.after(4, now_ms=1_000) == 200
    assert pace.rest_ms(now_ms=1_150) == 50
    assert pace.after(0, now_ms=1_200) == 250


def test_a_busy_pace_gives_way_to_a_waiting_reader() -> None:
    pace = FetchPace(pace_ms=250, busy_pace_ms=200)
    assert pace.after(4, now_ms=1_000, waiting=1) == 0
    assert pace.rest_ms(now_ms=1_000) == 0


async def test_a_capped_wait_applies_to_the_next_request_and_lifts_back_to_the_policy() -> None:
    """A caller waiting on a journal tail caps its fetch wait until nobody waits."""
    consumer = AdaptiveConsumer(
        bootstrap_servers="127.0.0.1:9", fetch_max_wait_ms=50, idle_fetch_wait_ms=250
    )
    fetcher = SimpleNamespace(_fetch_max_wait_ms=50)  # what start() would create
    consumer._fetcher = fetcher
    try:
        consumer.cap_wait(10)
        assert fetcher._fetch_max_wait_ms == 10
        consumer.cap_wait(None)
        assert fetcher._fetch_max_wait_ms == 50
    finally:
        consumer._fetcher = None
        await consumer.stop()  # never started: only marks it closed
