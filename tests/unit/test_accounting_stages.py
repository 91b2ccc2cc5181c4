"""The demo's books: latency counted whatever the order of observations, split into stages."""

from __future__ import annotations

from agents.sim.accounting import STAGES, Accepted, Accounting, Opening, stage_times
from schemas.header import Precedence


def test_an_opening_before_its_lane_record_counts_once_the_lane_is_read() -> None:
    books = Accounting()
    books.on_delivered("m1", "DEU", 12.0, 5.0, 1.0)  # the fast one: opened first
    assert books.latency_summary()["FLASH"]["count"] == 0
    books.on_accepted("m1", Accepted("hub:lyon", Precedence.FLASH, ("DEU", "ITA")))
    books.on_delivered("m1", "ITA", 40.0, 9.0, 2.0)
    summary = books.summary()["delivered"]
    assert summary["latency"]["FLASH"]["count"] == 2
    assert summary["latency"]["FLASH"]["p50_ms"] == 40.0
    assert summary["reader_lag"]["count"] == 2
    assert summary["by_hub"] == {"hub:lyon": {"FLASH": 2}}


def test_a_lane_record_read_twice_counts_the_waiting_openings_once() -> None:
    books = Accounting()
    books.on_delivered("m1", "DEU", 12.0)
    books.on_accepted("m1", Accepted("hub:lyon", Precedence.ROUTINE, ("DEU",)))
    books.on_accepted("m1", Accepted("hub:lyon", Precedence.ROUTINE, ("DEU",)))
    assert books.latency_summary()["ROUTINE"]["count"] == 1


def test_stage_times_split_created_to_opened_at_each_stamped_point() -> None:
    opening = Opening(created_ms=1_000, opened_ms=1_200, inbox_ms=1_100, fetched_ms=1_180)
    times = stage_times(opening, admitted_ms=1_030)
    assert list(times) == list(STAGES)
    assert times == {
        "created_to_admitted": 30,
        "admitted_to_delivered": 70,
        "delivered_to_fetched": 80,
        "fetched_to_opened": 20,
    }
    assert sum(t for t in times.values() if t is not None) == opening.latency_ms


def test_a_stage_with_an_unknown_end_is_not_measured() -> None:
    times = stage_times(Opening(created_ms=0, opened_ms=50, inbox_ms=None, fetched_ms=45), 10)
    assert times["admitted_to_delivered"] is None
    assert times["delivered_to_fetched"] is None
    assert times["fetched_to_opened"] == 5


def test_the_summary_has_stages_overall_and_for_flash() -> None:
    books = Accounting()
    books.on_accepted("f", Accepted("hub:lyon", Precedence.FLASH, ("DEU",), admitted_ms=110))
    books.on_accepted("r", Accepted("hub:lyon", Precedence.ROUTINE, ("DEU",), admitted_ms=220))
    books.on_delivered("f", "DEU", 60.0, opening=Opening(100, 160, 130, 150))
    books.on_delivered("r", "DEU", 90.0, opening=Opening(200, 290, 250, 280))
    books.on_delivered("x", "DEU", 5.0, opening=Opening(300, 305, 301, 302))  # lane never read
    delivered = books.summary()["delivered"]
    assert delivered["stages"]["created_to_admitted"]["measured"] == 2
    assert delivered["stages_flash"]["created_to_admitted"]["p50_ms"] == 10
    assert delivered["stages_flash"]["admitted_to_delivered"]["p50_ms"] == 20
    assert delivered["stages"]["fetched_to_opened"]["max_ms"] == 10
