"""Reading failovers and failbacks back from the hubs' journal, for the demo's table."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agents.ops.hub_events import (
    Disturbance,
    InvalidSchedule,
    duty_changes,
    parse_schedule,
    takeovers,
)
from schemas.header import format_timestamp
from schemas.journal import FirstOutput, HubDead, JournalEventModel, LeaseClaimed
from schemas.participants import HUB_SITES

KILL = 1_700_000_000.0  # wall time of the kill


def when(offset: float) -> datetime:
    return datetime.fromtimestamp(KILL + offset, UTC)


def iso(offset: float) -> str:
    return format_timestamp(when(offset))


def claimed(
    hub: str, unit: str, reason: str, previous: str | None, t: float, confirmed: float
) -> LeaseClaimed:
    """A ``lease-claimed`` as a hub writes it: claimed at ``t``, confirmed at ``confirmed``."""
    return LeaseClaimed(
        hub=hub,
        time=when(confirmed),
        unit=unit,
        epoch=2,
        reason=reason,
        previous_owner=previous,
        previous_epoch=1,
        last_heard=None,
        detected_at=None,
        lease_expired_at=None,
        claimed_at=when(t),
        confirmed_at=when(confirmed),
        start={},
    )


def dead(site: str, by: str, t: float) -> HubDead:
    return HubDead(hub=by, time=when(t), site=site, last_heard=None, declared_at=when(t))


def test_schedules_parse_and_bad_ones_say_how_to_write_them() -> None:
    assert parse_schedule("fail", ["lyon@20s", "singapore@7.5"], HUB_SITES) == [
        Disturbance("fail", "lyon", 20.0),
        Disturbance("fail", "singapore", 7.5),
    ]
    for bad in ("lyon", "paris@3s", "lyon@-1s", "@3s"):
        with pytest.raises(InvalidSchedule, match="SITE@Ns"):
            parse_schedule("fail", [bad], HUB_SITES)


def test_a_failover_row_times_detection_hold_and_first_delivery_from_the_kill() -> None:
    events: list[JournalEventModel] = [
        dead("lyon", "hub:singapore", -50),  # an earlier death
        dead("lyon", "hub:singapore", 2.5),
        dead("lyon", "hub:buenos-aires", 2.2),
        claimed("hub:buenos-aires", "i247.hub.lyon.flash", "failover", "lyon", 3.0, 3.1),
        FirstOutput(
            hub="hub:buenos-aires",
            time=when(3.4),
            unit="i247.hub.lyon.flash",
            epoch=2,
            reason="failover",
            previous_owner="lyon",
            last_heard=None,
            claimed_at=when(3.0),
            at=when(3.4),
        ),
        claimed("hub:lyon", "intake", "duty-handover", "singapore", -9.5, -9),
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
