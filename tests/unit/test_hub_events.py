"""Reading failovers and failbacks back from the hubs' journal, for the demo's table."""

from __future__ import annotations

import pytest

from agents.hub_events import (
    Disturbance,
    InvalidSchedule,
    duty_changes,
    parse_schedule,
    takeovers,
)
from schemas.participants import HUB_SITES

KILL = 1_700_000_000.0  # wall time of the kill


def iso(offset: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(KILL + offset, UTC).isoformat()


def test_schedules_parse_and_bad_ones_say_how_to_write_them() -> None:
    assert parse_schedule("fail", ["lyon@20s", "singapore@7.5"], HUB_SITES) == [
        Disturbance("fail", "lyon", 20.0),
        Disturbance("fail", "singapore", 7.5),
    ]
    for bad in ("lyon", "paris@3s", "lyon@-1s", "@3s"):
        with pytest.raises(InvalidSchedule, match="SITE@Ns"):
            parse_schedule("fail", [bad], HUB_SITES)


def test_a_failover_row_times_detection_hold_and_first_delivery_from_the_kill() -> None:
    events = [
        {"event": "hub-dead", "site": "lyon", "declared_at": iso(-50)},  # an earlier death
        {"event": "hub-dead", "site": "lyon", "declared_at": iso(2.5), "hub": "hub:singapore"},
        {"event": "hub-dead", "site": "lyon", "declared_at": iso(2.2), "hub": "hub:buenos-aires"},
        {
            "event": "lease-claimed",
            "reason": "failover",
            "previous_owner": "lyon",
            "hub": "hub:buenos-aires",
            "claimed_at": iso(3.0),
            "confirmed_at": iso(3.1),
        },
        {
            "event": "first-output",
            "reason": "failover",
            "previous_owner": "lyon",
            "hub": "hub:buenos-aires",
            "at": iso(3.4),
        },
        {
            "event": "lease-claimed",
            "unit": "intake",
            "reason": "duty-handover",
            "hub": "hub:lyon",
            "confirmed_at": iso(-9),
        },
    ]
    [row] = takeovers(events, [(Disturbance("fail", "lyon", 12.0), KILL)])
    assert row.kind == "failover"
    assert row.by == "hub:buenos-aires"
    assert row.detection_s == pytest.approx(2.2)
    assert row.claimed_s == pytest.approx(3.1)
    assert row.takeover_s == pytest.approx(3.4)
    assert row.units == 1
    assert duty_changes(events) == [(iso(-9), "hub:lyon", "duty-handover")]


def test_a_failback_with_nothing_journaled_yet_has_no_times() -> None:
    [row] = takeovers([], [(Disturbance("restore", "lyon", 30.0), KILL)])
    assert (row.kind, row.by, row.detection_s, row.claimed_s, row.takeover_s, row.units) == (
        "failback",
        None,
        None,
        None,
        None,
        0,
    )
