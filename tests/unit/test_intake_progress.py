"""Where a successor resumes intake: the first input with no output, not past the last one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core.intake_progress import IntakeProgress


def progress(epoch: int, partition: int, offsets: list[int]) -> IntakeProgress:
    book = IntakeProgress()
    for offset in offsets:
        book.record(epoch, partition, offset)
    return book


@pytest.mark.parametrize(
    ("written", "reported", "expected"),
    [
        ([70, 71, 72, 75], {2: 70}, {2: 73}),  # 73 and 74 were in flight: start there
        ([70, 71, 72], {2: 70}, {2: 73}),  # everything written: start past it
        ([75, 76], {2: 70}, {2: 70}),  # nothing contiguous past the report
        ([], {2: 70}, {2: 70}),  # nothing read back: the report stands
        ([0, 1, 2, 4], {}, {2: 3}),  # no report yet: from the start of the partition
        ([68, 69, 70], {2: 70}, {2: 71}),  # outputs below the report change nothing
    ],
)
def test_resume_from_the_first_offset_without_an_output(
    written: list[int], reported: dict[int, int], expected: dict[int, int]
) -> None:
    assert progress(1, 2, written).resume_from(1, reported) == expected


def test_other_epochs_and_partitions_are_kept_apart() -> None:
    book = progress(1, 2, [70, 71])
    book.record(2, 2, 72)
    book.record(1, 0, 5)
    assert book.resume_from(1, {2: 70, 0: 5, 3: 9}) == {2: 72, 0: 6, 3: 9}
    assert book.resume_from(2, {2: 70}) == {2: 70}


def test_forget_keeps_only_what_the_next_claim_can_ask() -> None:
    book = progress(1, 2, [70, 71, 72])
    book.record(2, 2, 80)
    book.record(2, 2, 81)
    book.record(2, 2, 83)
    book.forget(2, {2: 81})
    assert len(book) == 2  # epoch 1 gone, and offset 80 (below the report)
    assert book.resume_from(2, {2: 81}) == {2: 82}


@given(
    st.integers(0, 50),
    st.sets(st.integers(0, 120), max_size=60),
)
def test_every_offset_between_the_report_and_the_resume_point_has_an_output(
    reported: int, written: set[int]
) -> None:
    book = progress(3, 0, sorted(written))
    resume = book.resume_from(3, {0: reported})[0]
    assert resume >= reported
    assert all(o in written for o in range(reported, resume))
    assert resume not in written  # never past an offset that has no output
