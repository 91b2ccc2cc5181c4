"""The work loop's batch order: FLASH lane records first, then IMMEDIATE, then intake, then
PRIORITY and ROUTINE; a rank's partitions in turns; offsets of one partition stay in order."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from schemas.header import Precedence
from schemas.topics import TopicCatalog
from streams.hub.unit_workers import (
    acknowledged_positions,
    handling_plan,
    handling_rank,
    lane_rank,
)

TOPICS = TopicCatalog("i247")


@pytest.mark.parametrize(
    ("topic", "rank"),
    [
        (TOPICS.lane("lyon", Precedence.FLASH), 0),
        (TOPICS.lane("singapore", Precedence.IMMEDIATE), 1),
        (TOPICS.lane("buenos-aires", Precedence.PRIORITY), 2),
        (TOPICS.lane("lyon", Precedence.ROUTINE), 3),
        (TOPICS.inbound, 4),
    ],
)
def test_each_topic_ranks_by_its_precedence_and_intake_last(topic: str, rank: int) -> None:
    assert lane_rank(topic) == rank


@pytest.mark.parametrize(
    ("topic", "rank"),
    [
        (TOPICS.lane("lyon", Precedence.FLASH), 0),
        (TOPICS.lane("singapore", Precedence.IMMEDIATE), 1),
        (TOPICS.inbound, 2),
        (TOPICS.lane("buenos-aires", Precedence.PRIORITY), 3),
        (TOPICS.lane("lyon", Precedence.ROUTINE), 4),
    ],
)
def test_intake_is_handled_after_the_flash_and_immediate_lanes_only(topic: str, rank: int) -> None:
    assert handling_rank(topic) == rank


def test_a_batch_is_handled_most_urgent_first_whatever_order_it_was_fetched_in() -> None:
    routine = TopicPartition(TOPICS.lane("lyon", Precedence.ROUTINE), 0)
    inbound_0 = TopicPartition(TOPICS.inbound, 0)
    inbound_2 = TopicPartition(TOPICS.inbound, 2)
    flash_lyon = TopicPartition(TOPICS.lane("lyon", Precedence.FLASH), 0)
    flash_sin = TopicPartition(TOPICS.lane("singapore", Precedence.FLASH), 0)
    priority = TopicPartition(TOPICS.lane("singapore", Precedence.PRIORITY), 0)
    batch = {
        inbound_2: [7, 8],
        routine: [1, 2, 3],
        flash_sin: [4],
        inbound_0: [5],
        priority: [6],
        flash_lyon: [9],
    }
    plan = handling_plan(batch)
    assert [tp for tp, _ in plan] == [
        flash_lyon,
        flash_sin,
        inbound_0,
        inbound_2,
        priority,
        routine,
    ]
    assert {tp: list(records) for tp, records in plan} == batch  # nothing dropped


def test_partitions_of_one_rank_take_turns_and_each_keeps_its_order() -> None:
    """A batch cut short after a few steps has advanced every intake partition."""
    inbound = [TopicPartition(TOPICS.inbound, p) for p in range(3)]
    batch = {inbound[0]: list(range(40)), inbound[1]: list(range(100, 105)), inbound[2]: [200]}
    plan = handling_plan(batch, chunk=16)
    assert [(tp.partition, len(records)) for tp, records in plan] == [
        (0, 16),
        (1, 5),
        (2, 1),
        (0, 16),
        (0, 8),
    ]
    for tp, records in batch.items():
        assert [r for step, chunk in plan if step == tp for r in chunk] == records


def test_an_empty_batch_has_nothing_to_handle() -> None:
    assert handling_plan({}) == []


@pytest.mark.parametrize(
    ("steps", "acknowledged", "moved"),
    [
        ([("a", 0, 5), ("a", 0, 6)], [True, True], {("a", 0): 6}),
        ([("a", 0, 5), ("a", 0, 6)], [False, True], {}),  # nothing past the first not acked
        ([("a", 0, 5), ("a", 0, 6), ("a", 0, 7)], [True, False, True], {("a", 0): 5}),
        # each partition of each term moves on its own; FLASH records interleave
        (
            [("a", 0, 5), ("f", 0, 2), ("a", 1, 8), ("f", 0, 3)],
            [False, True, True, False],
            {("f", 0): 2, ("a", 1): 8},
        ),
        ([], [], {}),
    ],
)
def test_a_partly_acknowledged_batch_moves_each_partition_up_to_its_first_unacknowledged(
    steps: list[tuple[str, int, int]], acknowledged: list[bool], moved: dict[tuple[str, int], int]
) -> None:
    assert acknowledged_positions(steps, acknowledged) == moved
