"""The work loop's batch order: FLASH lane records first, then IMMEDIATE, PRIORITY, ROUTINE,
intake last; offsets of one partition stay in order."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from schemas.header import Precedence
from schemas.topics import TopicCatalog
from streams.hub.unit_workers import acknowledged_positions, handling_order, lane_rank

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
    order = handling_order(batch)
    assert [tp for tp, _ in order] == [
        flash_lyon,
        flash_sin,
        priority,
        routine,
        inbound_0,
        inbound_2,
    ]
    assert dict(order) == batch  # nothing dropped, each partition's records untouched


def test_an_empty_batch_has_nothing_to_handle() -> None:
    assert handling_order({}) == []


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
