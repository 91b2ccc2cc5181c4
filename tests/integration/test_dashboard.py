"""The operations dashboard in a real browser during a real run: three hubs, one killed.

Headless Chromium opens the page, which polls ``/api/state``; the test reads the hub on
duty from the DOM, SIGKILLs that hub's process, and waits (generously, no timing
assertion) for the page to show another hub on duty and the victim declared dead.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agents.ops.dashboard import Dashboard
from brokers.settings import Settings
from schemas.bodies import MessageBody
from schemas.keys import Directory, PrivateIdentity
from schemas.participants import HUB_SITES
from tests.integration.chromium import CHROMIUM, Chromium
from tests.integration.harness import now
from tests.integration.test_failover import three_hubs

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="chromium is not installed: `apt-get install -y chromium` (.ci/run does it)",
    ),
]

DELIVERED = (
    "[...document.querySelectorAll('#latency tbody tr')]"
    ".reduce((n, tr) => n + Number(tr.cells[1].textContent), 0)"
)
UNIT_ROWS = "document.querySelectorAll('#units tbody tr').length"


async def shown(
    read: Callable[[], object], holds: Callable[[object], bool], timeout: float, what: str
) -> object:
    """Poll the page until ``holds(value)``; fail naming ``what`` and the last value seen."""
    deadline = time.monotonic() + timeout
    value: object = None
    while time.monotonic() < deadline:
        value = await read()  # type: ignore[misc]
        if holds(value):
            return value
        await asyncio.sleep(0.5)
    raise AssertionError(f"the page never showed {what} in {timeout:.0f} s; last: {value!r}")


async def test_the_page_shows_another_hub_on_duty_after_the_hub_on_duty_is_killed(
    settings: Settings,
    keys_dir: Path,
    keyring: tuple[Directory, dict[str, PrivateIdentity]],
    tmp_path: Path,
) -> None:
    async with (
        three_hubs(settings, keys_dir, keyring, tmp_path) as bb,
        Dashboard(bb.settings, port=0) as dashboard,
        Chromium(dashboard.url, tmp_path / "chromium") as page,
    ):
        victim = await shown(
            lambda: page.text("on-duty"), lambda v: v in HUB_SITES, 60, "a hub on duty"
        )
        assert await page.evaluate(UNIT_ROWS) == 1 + 4 * len(HUB_SITES)  # intake, 12 lanes
        for n in range(4):  # deliveries through the hub on duty show as latency
            _, record = bb.adapter("DEU").compose(
                ["ITA"],
                MessageBody(subject="Dashboard", text=f"test {n}"),
                now=now(),
                random_bytes=os.urandom,
            )
            await bb.send(record)
        await shown(
            lambda: page.evaluate(DELIVERED),
            lambda n: isinstance(n, int) and n >= 4,
            60,
            "4 deliveries",
        )

        bb.kill_hub(str(victim))
        successor = await shown(
            lambda: page.text("on-duty"),
            lambda v: v in HUB_SITES and v != victim,
            90,
            f"a hub on duty other than {victim}",
        )
        timeline = await shown(
            lambda: page.text("timeline"),
            lambda text: f"{victim} declared dead" in str(text),
            60,
            f"{victim} declared dead in the timeline",
        )
        await page.screenshot(tmp_path / "dashboard.png")
    print(f"on duty: {victim}, then {successor}; timeline: {str(timeline)[:300]}")
