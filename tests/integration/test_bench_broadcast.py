"""The broadcast bench end to end with two notices, on the session's broker: every notice is
published and opened by all 196 NCBs, the plain fan-out reaches all 196 topics, and the
figures say so (behaviour, not speed)."""

from __future__ import annotations

import pytest

from agents.bench.broadcast import bench_broadcast
from brokers.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


async def test_every_red_notice_reaches_all_196_and_the_baseline_all_196_topics(
    settings: Settings,
) -> None:
    figures = await bench_broadcast(settings, notices=2, rate=2.0)
    assert (figures["notices"], figures["recipients"]) == (2, 196)
    assert 0 < figures["copy_bytes"] < 4 * figures["request_bytes"]  # one key wrap per copy
    ours, base = figures["backbone"], figures["baseline"]
    assert (ours["sent"], ours["published"], ours["reached_all"]) == (2, 2, 2)
    assert ours["not_published"] == {}
    assert [n["opened"] for n in ours["per_notice"]] == [196, 196]
    assert len({n["notice_id"] for n in ours["per_notice"]}) == 2
    for measure in (
        "sent_to_last_opened",
        "sent_to_last_read",
        "published_to_last_opened",
        "sent_to_first_opened",
    ):
        assert ours[measure]["measured"] == 2, measure
    last, first = ours["sent_to_last_opened"], ours["sent_to_first_opened"]
    assert 0 < first["p50_ms"] <= last["max_ms"]
    assert (base["sent"], base["reached_all"]) == (2, 2)
    assert base["sent_to_last_received"]["measured"] == 2
