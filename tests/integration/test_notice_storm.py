"""A short notice storm through a real hub: every published notice reaches each of the 196
inboxes exactly once, counted from the real topics (behaviour, not speed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.bench.storm import storm
from brokers.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


async def test_a_short_storm_lands_every_notice_in_every_inbox_once(
    settings: Settings, keys_dir: Path
) -> None:
    figures = await storm(
        settings.model_copy(update={"keys_dir": keys_dir}),
        rate=5.0,
        seconds=3.0,
        drain_timeout=400.0,
    )
    assert figures["requested"] == 15
    assert figures["decisions"] == {"published": 15}  # sound requests, one person each
    assert figures["drained"]
    assert figures["expected_copies"] == 15 * 196
    assert figures["checked"] == {
        "inputs": 15,
        "landings": 15 * 196,
        "lost": 0,
        "duplicated": 0,
        "unexpected": 0,
    }
    assert figures["sent_to_last_copy"]["measured"] == 15
    assert figures["sealing"]["measured"] == 15
