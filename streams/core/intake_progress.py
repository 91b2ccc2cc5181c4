"""Where a successor resumes intake after a term that ended without releasing.

Theory of operation
-------------------
An intake term writes one output per inbound record (a lane record, or a dead letter),
each fence-tagged with the term's epoch and the input's partition and offset. Its owner
reports positions only after the broker acknowledged everything before them, so every
offset below a reported position has its output. Past that, outputs land in different
lanes concurrently: when a term ends without releasing (its hub stalled or died), some
later offsets may have an output and some not (a write still in flight, or failed).

``IntakeProgress`` records, per epoch and input partition, the offsets that have an
output (from every hub's tail of the lanes and dead letters). ``resume_from(epoch,
reported)`` is where a successor must start: the first offset at or past the reported
position **with no output**. Starting past the highest output seen instead would skip
the records whose write was lost, so they would be neither accepted nor refused. Outputs
of the old term past the resume point are fenced by readers (the term's end is the
successor's start) and those records are admitted again (``Redelivered``).

Worked example: epoch 1 reported partition 2 at 70; the lanes show epoch-1 outputs for
offsets 70, 71, 72 and 75 (73 and 74 were in flight when the hub stalled):
``resume_from(1, {2: 70})`` is ``{2: 73}``. The successor reads 73, 74, 75 again.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["IntakeProgress"]


class IntakeProgress:
    """Input offsets with an output, by intake epoch and partition."""

    __slots__ = ("_written",)

    def __init__(self) -> None:
        self._written: dict[int, dict[int, set[int]]] = {}

    def record(self, epoch: int, partition: int, offset: int) -> None:
        """An output of ``epoch`` for input ``partition``/``offset`` was read back."""
        self._written.setdefault(epoch, {}).setdefault(partition, set()).add(offset)

    def resume_from(self, epoch: int, reported: Mapping[int, int]) -> dict[int, int]:
        """Per partition, the first offset at or past ``reported`` that ``epoch`` left unwritten."""
        resume = dict(reported)
        for partition, offsets in self._written.get(epoch, {}).items():
            position = reported.get(partition, 0)
            while position in offsets:
                position += 1
            resume[partition] = position
        return resume

    def forget(self, current_epoch: int, reported: Mapping[int, int]) -> None:
        """Drop what no claim will ask about: older epochs, and offsets below the reports."""
        for epoch in [e for e in self._written if e < current_epoch]:
            del self._written[epoch]
        for partition, offsets in self._written.get(current_epoch, {}).items():
            floor = reported.get(partition, 0)
            stale = [o for o in offsets if o < floor]
            offsets.difference_update(stale)

    def __len__(self) -> int:
        return sum(len(o) for parts in self._written.values() for o in parts.values())
