"""The hub's memory census: its switch, and the lines it names as grown."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import MutableMapping
from typing import Any

import pytest
import structlog

from brokers.settings import VARIABLES
from streams.hub.memory_census import (
    CENSUS_VARIABLE,
    InvalidCensusInterval,
    census_interval,
    grown_lines,
    take_census,
)


def test_the_census_is_off_unless_asked() -> None:
    assert census_interval({}) is None
    assert census_interval({CENSUS_VARIABLE: "  "}) is None
    assert census_interval({CENSUS_VARIABLE: "60"}) == 60.0


@pytest.mark.parametrize("text", ["0", "-5", "soon", "nan"])
def test_a_census_interval_that_is_no_positive_number_is_refused_saying_what_to_give(
    text: str,
) -> None:
    with pytest.raises(InvalidCensusInterval, match="seconds between census lines"):
        census_interval({CENSUS_VARIABLE: text})


def test_the_census_variable_is_registered() -> None:
    assert CENSUS_VARIABLE in VARIABLES


def _hold(n: int) -> list[bytes]:
    return [bytes(1000) + n.to_bytes(4, "big") for _ in range(n)]


def test_the_line_that_keeps_allocating_is_named_first() -> None:
    tracemalloc.start(1)
    try:
        baseline = tracemalloc.take_snapshot()
        kept = _hold(2000)
        now = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    lines = grown_lines(baseline, now, top=3)
    assert len(kept) == 2000
    assert lines[0].where.endswith(
        "test_memory_census.py:" + str(_hold.__code__.co_firstlineno + 1)
    )
    assert lines[0].grown >= 2000 * 1000
    assert all(line.grown > 0 for line in lines)


def test_the_census_logs_what_grew_every_interval() -> None:
    async def run() -> list[MutableMapping[str, Any]]:
        with structlog.testing.capture_logs() as logs:
            task = asyncio.create_task(take_census("hub:lyon", 0.05))
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        return logs

    try:
        logs = asyncio.run(run())
    finally:
        tracemalloc.stop()
    census = [line for line in logs if line["event"] == "memory-census"]
    assert census
    assert census[0]["hub"] == "hub:lyon"
    assert isinstance(census[0]["traced_mib"], float)
    assert isinstance(census[0]["grown"], list)
