"""The broker watcher tells unreachable, back with its log, and log lost apart; said once."""

from __future__ import annotations

import logging

import pytest

from brokers.broker_watch import BrokerState, BrokerWatch, ChangeKind, Probe
from brokers.logs import RepeatFilter

UP = Probe("i247-a")
DOWN = Probe(None, error="KafkaConnectionError: refused")
NEW_EMPTY = Probe("i247-b", missing=("i247.leases", "i247.control"))
NEW_PROVISIONED = Probe("i247-b")


def _run(probes: list[Probe]) -> tuple[BrokerWatch, list[str]]:
    watch = BrokerWatch.first(UP, at=0.0)
    said: list[str] = []
    for at, probe in enumerate(probes, 1):
        watch, change = watch.observe(probe, float(at))
        if change is not None:
            said.append(change.kind.value)
    return watch, said


def test_an_outage_is_said_once_however_long_it_lasts() -> None:
    watch, said = _run([DOWN] * 30)
    assert said == ["broker-unreachable"]
    assert watch.state is BrokerState.UNREACHABLE
    assert not watch.usable


def test_a_broker_back_with_the_same_cluster_and_topics_kept_its_log() -> None:
    watch, said = _run([DOWN, DOWN, DOWN, UP, UP])
    assert said == ["broker-unreachable", "broker-back"]
    assert watch.usable
    assert watch.generation == 0


def test_back_says_how_long_it_was_away() -> None:
    watch = BrokerWatch.first(UP, at=0.0)
    watch, _ = watch.observe(DOWN, 10.0)
    watch, change = watch.observe(UP, 17.5)
    assert change is not None
    assert (change.kind, change.down_seconds) == (ChangeKind.BACK, 7.5)


def test_a_new_cluster_id_without_topics_is_a_lost_log_that_names_the_fix() -> None:
    watch, said = _run([DOWN, NEW_EMPTY, NEW_EMPTY, NEW_EMPTY])
    assert said == ["broker-unreachable", "broker-log-lost"]
    assert watch.state is BrokerState.LOG_LOST
    assert not watch.usable
    assert watch.generation == 1
    _, change = BrokerWatch.first(UP, 0.0).observe(NEW_EMPTY, 1.0)
    assert change is not None
    assert "i247 provision" in (change.fix or "")
    assert change.fields()["missing_topics"] == ["i247.leases", "i247.control"]
    assert (change.previous_cluster_id, change.cluster_id) == ("i247-a", "i247-b")


def test_a_lost_log_provisioned_again_is_ready_for_a_fresh_start() -> None:
    watch, said = _run([DOWN, NEW_EMPTY, NEW_EMPTY, NEW_PROVISIONED, NEW_PROVISIONED])
    assert said == ["broker-unreachable", "broker-log-lost", "broker-log-ready"]
    assert watch.usable
    assert watch.generation == 1


def test_a_restart_too_quick_to_be_seen_down_is_still_a_lost_log() -> None:
    assert _run([NEW_EMPTY])[1] == ["broker-log-lost"]


def test_a_restart_already_provisioned_when_first_seen_goes_straight_to_ready() -> None:
    watch, said = _run([DOWN, NEW_PROVISIONED])
    assert said == ["broker-unreachable", "broker-log-ready"]
    assert watch.generation == 1


def test_topics_deleted_under_the_same_cluster_id_are_a_lost_log_too() -> None:
    assert _run([Probe("i247-a", missing=("i247.leases",))])[1] == ["broker-log-lost"]


def test_a_lost_log_that_goes_out_of_reach_is_still_lost_when_it_answers() -> None:
    watch, said = _run([NEW_EMPTY, DOWN, NEW_EMPTY, NEW_PROVISIONED])
    assert said == ["broker-log-lost", "broker-unreachable", "broker-log-ready"]
    assert watch.generation == 1


def test_a_second_restart_is_a_second_generation() -> None:
    probes = [DOWN, NEW_EMPTY, NEW_PROVISIONED, DOWN, Probe("i247-c", missing=("x",))]
    assert _run(probes)[0].generation == 2


@pytest.mark.parametrize(
    ("first", "state"),
    [
        (UP, BrokerState.REACHABLE),
        (DOWN, BrokerState.UNREACHABLE),
        (NEW_EMPTY, BrokerState.LOG_LOST),
    ],
)
def test_the_first_probe_sets_the_scene(first: Probe, state: BrokerState) -> None:
    assert BrokerWatch.first(first, 0.0).state is state


def _record(name: str, msg: str) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, None, None)


def test_the_client_library_s_retry_flood_passes_once_a_window_with_a_count() -> None:
    now = [0.0]
    quiet = RepeatFilter(window=60.0, clock=lambda: now[0])
    passed = []
    for second in range(120):
        now[0] = float(second)
        passed.append(quiet.filter(_record("aiokafka.conn", "Unable connect to %r")))
    assert passed.count(True) == 2
    last = _record("aiokafka.conn", "Unable connect to %r")
    now[0] = 200.0
    assert quiet.filter(last)
    assert "59 like it" in str(last.msg)


def test_other_loggers_are_never_held_back() -> None:
    quiet = RepeatFilter(clock=lambda: 0.0)
    assert all(quiet.filter(_record("i247.hub", "same")) for _ in range(10))
