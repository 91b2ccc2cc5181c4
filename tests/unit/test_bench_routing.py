"""The bench's routing and idle arithmetic: the breakdown's remainder, how receipts are
recognised and which ids they name, process CPU as a share of one core."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from agents.bench.idle import (
    IdleFigures,
    ProcessIdle,
    broker_pid,
    cpu_percent,
    tree_cpu_seconds,
)
from agents.bench.routing import (
    ROUTE_CALLS,
    RoutingFigures,
    breakdown,
    is_receipt,
    sent_ids_in,
)
from agents.bench.suite import GOAL_RATIO, Figures, routing_json
from brokers.record_headers import envelope_type
from schemas.header import MessageType


def test_other_is_the_measured_total_less_the_steps_times_their_calls() -> None:
    per_call = dict.fromkeys(ROUTE_CALLS, 10.0)
    steps = breakdown(per_call, 1000.0)
    assert steps["produce"] == 10.0 * ROUTE_CALLS["produce"]
    known = sum(10.0 * calls for calls in ROUTE_CALLS.values())
    assert steps["other/framework"] == pytest.approx(1000.0 - known)
    assert sum(v for v in steps.values() if v is not None) == pytest.approx(1000.0)


def test_without_a_measured_total_other_is_unknown_not_zero() -> None:
    assert breakdown(dict.fromkeys(ROUTE_CALLS, 1.0), None)["other/framework"] is None


@pytest.mark.parametrize(
    ("ce_type", "expected"),
    [
        (envelope_type(MessageType.DELIVERY_RECEIPT).encode(), True),
        (b"int.interpol.i247.receipt-batch.v1", True),  # a batch form counts too
        (envelope_type(MessageType.MESSAGE).encode(), False),
        (None, False),
    ],
)
def test_a_receipt_is_any_record_whose_cloudevents_type_names_one(
    ce_type: bytes | None, expected: bool
) -> None:
    headers = [("ce_type", ce_type)] if ce_type is not None else []
    assert is_receipt(headers) is expected


def test_the_ids_a_receipt_covers_are_the_sent_ids_named_in_its_bytes() -> None:
    a, b, other = (str(uuid.uuid4()) for _ in range(3))
    sent = {a: "p.inbox.FRA", b: "p.inbox.DEU"}
    value = f'{{"correlation_id": "{a}", "ids": ["{b}", "{other}"]}}'.encode()
    assert sent_ids_in(value, sent) == {a, b}
    assert sent_ids_in(b"opaque merkle root", sent) == set()


def test_cpu_share_of_one_core() -> None:
    assert cpu_percent(1.0, 1.5, 10.0) == pytest.approx(5.0)
    assert cpu_percent(1.0, 3.0, 1.0) == pytest.approx(200.0)  # two cores busy
    assert cpu_percent(None, 1.0, 10.0) is None
    assert cpu_percent(1.0, 2.0, 0.0) is None


def test_tree_cpu_counts_a_busy_child_and_a_gone_process_is_none() -> None:
    busy = (
        "import time\nend = time.process_time() + 0.3\n"
        "while time.process_time() < end: pass\nprint('done', flush=True)\ntime.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", busy], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"done\n"  # its 0.3 s of CPU are spent
        alone = tree_cpu_seconds(child.pid)
        assert alone is not None
        assert alone >= 0.3
        assert (tree_cpu_seconds(os.getpid()) or 0.0) >= alone  # descendants are counted
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert tree_cpu_seconds(child.pid) is None  # reaped: no such process


def test_a_remote_broker_has_no_local_process() -> None:
    assert broker_pid("kafka.example.org:9092") is None


def test_idle_totals_separate_the_backbone_from_the_gateway() -> None:
    figures = IdleFigures(
        30.0,
        (
            ProcessIdle("broker", 1, 4.0, True),
            ProcessIdle("hub lyon", 2, 2.5, True),
            ProcessIdle("archiver", 3, None, True),
            ProcessIdle("bureaus' gateway", 4, 7.0, False),
        ),
    )
    assert figures.total(backbone_only=True) == pytest.approx(6.5)
    assert figures.total(backbone_only=False) == pytest.approx(13.5)
    report = figures.as_json()
    assert report["unmeasured"] == ["archiver"]
    assert report["target_percent"] == 10.0
    assert [p["name"] for p in report["processes"]] == [
        "broker",
        "hub lyon",
        "archiver",
        "bureaus' gateway",
    ]


def test_the_routing_json_has_rate_ratio_cpu_and_breakdown() -> None:
    base = Figures("aiokafka baseline, saturation", 5000, 1.0, [])
    routed = RoutingFigures(
        messages=5000,
        delivered=5000,
        receipt_records=5000,
        receipted=5000,
        routed=5000,
        receipts_by="ids",
        seconds=10.0,
        hub_cpu_seconds=5.0,
    )
    figures = routing_json(base, routed, dict.fromkeys(ROUTE_CALLS, 10.0))
    assert figures["baseline_msgs_per_s"] == 5000.0
    assert figures["saturation"]["msgs_per_s"] == 500.0
    assert figures["ratio_to_baseline"] == 0.1
    assert figures["goal_ratio"] == GOAL_RATIO == 0.5
    assert figures["hub_cpu_us_per_msg"] == 1000.0
    assert figures["saturation"]["hub_cpu_percent"] == 50.0
    assert set(figures["breakdown_us_per_msg"]) == {*ROUTE_CALLS, "other/framework"}
    assert figures["calls_per_msg"] == ROUTE_CALLS
