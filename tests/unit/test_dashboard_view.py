"""The dashboard's fold: records in log order in, the page's JSON out; no broker."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agents.ops.dashboard_view import INTAKE, DashboardView
from brokers.records import ReceivedRecord
from schemas.header import format_timestamp
from schemas.topics import TopicCatalog

T0 = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)
TOPICS = TopicCatalog(prefix="i247")
LANE = TOPICS.lanes()[0]  # i247.hub.singapore.flash
_offsets: dict[str, int] = {}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def record(
    topic: str,
    value: Any = b"",
    *,
    key: str | None = None,
    headers: dict[str, str] | None = None,
    timestamp: float = 0.0,
) -> ReceivedRecord:
    offset = _offsets[topic] = _offsets.get(topic, -1) + 1
    body = value if isinstance(value, bytes) else json.dumps(value).encode()
    return ReceivedRecord(
        topic=topic,
        partition=0,
        offset=offset,
        timestamp_ms=int(at(timestamp).timestamp() * 1000),
        key=key.encode() if key else None,
        value=body,
        headers=tuple((k, v.encode()) for k, v in (headers or {}).items()),
    )


def lease(
    kind: str, unit: str, site: str, epoch: int, t: float, **positions: int
) -> ReceivedRecord:
    value = {
        "kind": kind,
        "unit": unit,
        "site": site,
        "epoch": epoch,
        "at": format_timestamp(at(t)),
        "ttl_ms": None if kind == "release" else 3000,
        "positions": {k.removeprefix("p"): v for k, v in positions.items()},
    }
    return record(TOPICS.leases, value, key=unit)


def beat(site: str, t: float, backlog: int = 0, leaving: bool = False) -> ReceivedRecord:
    value = {
        "site": site,
        "sequence": int(t),
        "sent_at": format_timestamp(at(t)),
        "lanes": [],
        "backlog": backlog,
        "leaving": leaving,
        "incarnation": "ab",
    }
    return record(TOPICS.heartbeat, value, key=site)


def control(
    event: str, key: str, hub: str = "lyon", t: float = 0.0, **fields: Any
) -> ReceivedRecord:
    value = {"event": event, "hub": f"hub:{hub}", "time": format_timestamp(at(t)), **fields}
    return record(TOPICS.control, value, key=key)


def declared(site: str, t: float) -> dict[str, Any]:
    """The fields of a ``hub-dead``/``hub-alive`` about ``site``, declared at ``t``."""
    return {"site": site, "last_heard": None, "declared_at": format_timestamp(at(t))}


def failover(unit: str, t: float) -> dict[str, Any]:
    """The fields of a ``lease-claimed`` of ``unit`` taken over from lyon at ``t``."""
    stamp = format_timestamp(at(t))
    return {
        "unit": unit,
        "epoch": 2,
        "reason": "failover",
        "previous_owner": "lyon",
        "previous_epoch": 1,
        "last_heard": None,
        "detected_at": stamp,
        "lease_expired_at": stamp,
        "claimed_at": stamp,
        "confirmed_at": stamp,
        "start": {"0": 4},
    }


def fold(*steps: tuple[ReceivedRecord, float]) -> DashboardView:
    view = DashboardView(TOPICS)
    for rec, now in steps:
        view.apply(rec, at(now))
    return view


def test_the_hub_on_duty_is_the_holder_of_intake_and_changes_when_its_lease_lapses() -> None:
    view = fold(
        (lease("claim", INTAKE, "lyon", 1, 0.0), 0.0),
        (lease("renew", INTAKE, "lyon", 1, 2.0), 2.0),
    )
    assert view.on_duty(at(4.0)) == "lyon"
    assert view.on_duty(at(5.5)) is None  # lyon stopped renewing: nobody on duty
    view.apply(lease("claim", INTAKE, "singapore", 2, 5.5), at(5.5))
    snap = view.snapshot(at(6.0))
    assert snap["on_duty"]["hub"] == "singapore"
    assert snap["on_duty"]["epoch"] == 2
    intake = next(u for u in snap["units"] if u["unit"] == INTAKE)
    assert (intake["owner"], intake["epoch"], intake["lease_left_s"]) == ("singapore", 2, 2.5)


def test_a_claim_the_lease_table_refuses_changes_nothing() -> None:
    view = fold(
        (lease("claim", INTAKE, "lyon", 1, 0.0), 0.0),
        (lease("claim", INTAKE, "singapore", 2, 1.0), 1.0),  # lyon's lease has not expired
    )
    assert view.on_duty(at(1.5)) == "lyon"
    assert view.book.lease(INTAKE).epoch == 1


@pytest.mark.parametrize(
    ("positions", "ends", "backlog"),
    [
        ({}, {}, None),  # no watermark yet: unknown, not zero
        ({"p0": 40}, {(LANE, 0): 55}, 15),
        ({"p0": 60}, {(LANE, 0): 55}, 0),  # a report ahead of the watermark read
        ({}, {(LANE, 0): 7}, 7),  # never claimed: everything waits
    ],
)
def test_a_lane_backlog_is_its_watermark_minus_the_owners_last_position(
    positions: dict[str, int], ends: dict[tuple[str, int], int], backlog: int | None
) -> None:
    view = fold((lease("claim", LANE, "singapore", 1, 0.0, **positions), 0.0))
    view.apply_watermarks(ends)
    row = next(u for u in view.units(at(1.0)) if u["unit"] == LANE)
    assert row["backlog"] == backlog


def test_intake_backlog_sums_the_inbound_partitions() -> None:
    view = fold((lease("claim", INTAKE, "lyon", 1, 0.0, p0=10, p1=5), 0.0))
    view.apply_watermarks({(TOPICS.inbound, 0): 12, (TOPICS.inbound, 1): 5, (TOPICS.inbound, 2): 3})
    assert view.units(at(1.0))[0]["backlog"] == 2 + 0 + 3


@pytest.mark.parametrize(
    ("steps", "now", "beating", "backlog"),
    [
        ([beat("lyon", 0.0, backlog=4)], 1.0, True, 4),
        ([beat("lyon", 0.0)], 3.5, False, 0),  # silent longer than the lease ttl
        ([beat("lyon", 0.0), beat("lyon", 1.0, leaving=True)], 1.2, False, 0),
    ],
)
def test_hubs_beat_until_silent_or_leaving(
    steps: list[ReceivedRecord], now: float, beating: bool, backlog: int
) -> None:
    view = fold(*((s, json.loads(s.value)["sequence"]) for s in steps))
    lyon = next(h for h in view.hubs(at(now)) if h["site"] == "lyon")
    assert (lyon["beating"], lyon["backlog"]) == (beating, backlog)


def test_a_failover_reads_as_one_death_and_one_claim_of_several_units() -> None:
    view = fold(
        (control("hub-dead", "lyon", hub="singapore", t=3.0, **declared("lyon", 3.0)), 3.0),
        (control("hub-dead", "lyon", hub="buenos-aires", t=3.2, **declared("lyon", 3.2)), 3.2),
        *(
            (control("lease-claimed", u, hub="singapore", t=3.4, **failover(u, 3.4)), 3.4)
            for u in (INTAKE, "i247.hub.lyon.flash", "i247.hub.lyon.routine")
        ),
        (control("hub-alive", "lyon", hub="singapore", t=20.0, **declared("lyon", 20.0)), 20.0),
    )
    timeline = view.snapshot(at(21.0))["timeline"]
    assert [(e["event"], e["subject"], e["items"]) for e in timeline] == [
        ("hub-alive", "lyon", ["singapore"]),
        (
            "lease-claimed",
            "singapore",
            [INTAKE, "i247.hub.lyon.flash", "i247.hub.lyon.routine"],
        ),
        ("hub-dead", "lyon", ["singapore", "buenos-aires"]),
    ]
    assert view.journal.declared["lyon"] == "alive"
    assert view.snapshot(at(21.0))["duty_changes"] == 1


def test_desk_events_count_once_per_key_whichever_hub_wrote_them() -> None:
    answered: dict[str, Any] = {
        "correlation_id": "c1",
        "asker": "FRA",
        "items": 5,
        "hits": 1,
        "escalations": 1,
        "confirmations": 1,
    }
    escalated: dict[str, Any] = {
        "item_index": 0,
        "database": "sltd",
        "owner": "DEU",
        "hub_on_duty": "hub:lyon",
        "recipients": ["FRA"],
        "flag": "stolen-document-hit",
        "precedence": "FLASH",
    }
    confirmed: dict[str, Any] = {"confirmation_id": "h1", "owner": "DEU"}
    view = fold(
        (control("check-answered", "c1", hub="lyon", **answered), 0.0),
        (control("check-answered", "c1", hub="singapore", **answered), 0.1),  # stand-in
        (control("check-answered", "c2", hub="lyon", **{**answered, "hits": 0}), 0.2),
        (control("hit-confirmed", "h1", confirmed=True, in_time=True, **confirmed), 0.3),
        (control("check-hit-escalated", "c1", correlation_id="c1", **escalated), 0.4),
    )
    checks = view.snapshot(at(1.0))["checks"]
    assert (checks["answered"], checks["items"], checks["hits"]) == (2, 10, 1)
    assert (checks["confirmed"], checks["check-hit-escalated"]) == (1, 1)


def test_notices_in_force_follow_their_latest_state() -> None:
    asked: dict[str, Any] = {"request_id": "q", "sender": "FRA", "region": None}
    decided: dict[str, Any] = {"request_id": "q", "requester": "FRA"}
    moved: dict[str, Any] = {"notice_id": "n3", "by": "FRA"}
    view = fold(
        (control("notice-requested", "n1", notice_id="n1", colour="red", requester="FRA",
                 **asked), 0.0),
        (control("notice-decided", "n1", notice_id="n1", decision="published", **decided), 0.1),
        (control("notice-requested", "n2", notice_id="n2", colour="yellow", requester="DEU",
                 **asked), 0.2),
        (control("notice-decided", "n2", notice_id="n2", decision="refused", **decided), 0.3),
        (control("notice-requested", "n3", notice_id="n3", colour="red", requester="ITA",
                 **asked), 0.4),
        (control("notice-decided", "n3", notice_id="n3", decision="published", **decided), 0.5),
        (control("notice-transition", "n3", transition="suspend", from_state="published",
                 to_state="suspended", version=2, **moved), 0.6),
        (control("notice-transition", "n3", transition="cancel", from_state="suspended",
                 to_state="cancelled", version=3, **moved), 0.7),
    )  # fmt: skip
    notices = view.snapshot(at(1.0))["notices"]
    assert notices["in_force"] == 1
    assert notices["recent_in_force"][0]["id"] == "n1"
    assert notices["by_state"] == {"published": 1, "refused": 1, "cancelled": 1}


def test_teams_deployed_are_those_in_an_active_state() -> None:
    snap: dict[str, Any] = {"team": "team:irt-1", "kind": "irt", "host": "FRA"}
    view = fold(
        (control("team-approved", "r1", request_id="r1", state="approved", **snap), 0.0),
        (control("team-arrived", "r1", request_id="r1", state="deployed", **snap), 0.1),
        (control("team-approved", "r2", request_id="r2", state="approved", **snap), 0.2),
        (control("team-closed", "r2", request_id="r2", state="closed", **snap), 0.3),
        (control("team-declined", "r3", request_id="r3", requester="DEU"), 0.4),
    )
    teams = view.snapshot(at(1.0))["teams"]
    assert teams["deployed"] == 1
    assert teams["active"][0]["state"] == "deployed"


def test_breaches_count_by_kind_and_keep_the_latest() -> None:
    late: dict[str, Any] = {
        "message_id": "m1",
        "precedence": "FLASH",
        "late_seconds": 2.0,
        "started_at": format_timestamp(at(0)),
        "deadline": format_timestamp(at(0)),
        "unacknowledged": ["DEU"],
    }
    unconfirmed: dict[str, Any] = {
        "confirmation_id": "h1",
        "urgency": "urgent",
        "owner": "DEU",
        "asker": "FRA",
        "late_seconds": 1.0,
        "hub_on_duty": "hub:lyon",
    }
    view = fold(
        (control("handling-breach", "m1", **late), 0),
        (control("handling-breach", "m1", **late), 0),
        (control("hit-confirmation-breach", "h1", **unconfirmed), 0),
    )
    breaches = view.snapshot(at(1.0))["breaches"]
    assert breaches["total"] == 2
    assert breaches["by_kind"] == {
        "handling-breach/FLASH": 1,
        "hit-confirmation-breach/urgent": 1,
    }
    assert breaches["recent"][0]["id"] == "h1"


def test_dead_letters_count_by_their_reason_header() -> None:
    dlq = TOPICS.deadletter
    view = fold(
        (record(dlq, b"x", headers={"i247.dlq.reason": "bad-signature"}), 0.0),
        (record(dlq, b"x", headers={"i247.dlq.reason": "bad-signature"}), 0.0),
        (record(dlq, b"x", headers={"i247.dlq.reason": "stale"}), 0.0),
        (record(dlq, b"x"), 0.0),
    )
    assert view.snapshot(at(1.0))["dead_letters"] == {
        "total": 4,
        "by_reason": {"bad-signature": 2, "stale": 1, "(no reason header)": 1},
    }


def delivery(precedence: str, sent: float, stamped: float, origin: bool = True) -> ReceivedRecord:
    headers = {"ce_time": format_timestamp(at(sent)), "i247-precedence": precedence}
    if origin:
        headers["i247-origin"] = "i247.inbound/0/1"
    return record(TOPICS.inbox("DEU"), b"{}", headers=headers, timestamp=stamped)


def test_latency_per_assessed_precedence_is_broker_time_minus_created_at() -> None:
    view = fold(
        *((delivery("FLASH", t, t + 0.020), t) for t in range(10)),
        (delivery("ROUTINE", 0.0, 0.300), 1.0),
        (delivery("ROUTINE", 0.0, 9.0, origin=False), 1.0),  # a receipt: not a delivery
        (delivery("ROUTINE", -200.0, -199.0), 1.0),  # delivered before the window
    )
    latency = view.latency(at(10.0))
    assert latency["FLASH"] == {
        "delivered": 10,
        "recent": 10,
        "p50_ms": 20,
        "p99_ms": 20,
        "max_ms": 20,
    }
    assert (latency["ROUTINE"]["delivered"], latency["ROUTINE"]["p50_ms"]) == (2, 300)
    assert latency["PRIORITY"]["p50_ms"] is None


@pytest.mark.parametrize(
    "bad",
    [
        record(TOPICS.leases, b"not json"),
        record(TOPICS.heartbeat, {"site": "lyon"}),
        record(TOPICS.control, b"[1, 2]"),
        record(TOPICS.inbox("FRA"), b"{}", headers={"i247-origin": "x", "ce_time": "soon"}),
    ],
)
def test_a_record_that_does_not_parse_is_counted_and_skipped(bad: ReceivedRecord) -> None:
    view = fold((bad, 0.0))
    assert sum(view.skipped.values()) == 1
    json.dumps(view.snapshot(at(1.0)))  # the page still gets a document
