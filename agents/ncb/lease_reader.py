"""A reader's copy of the lease journal, so a bureau can refuse deliveries made out of term.

An NCB gateway folds ``i247.hub.leases`` from its start into a ``LeaseBook`` and judges
each inbox record's fence tag against it (``NcbAdapter.receive(..., leases=book)``). A
delivery made under an epoch the gateway has not folded yet is held until that epoch's
claim arrives: the claim was in the journal before the delivery was made.

The same tail (one consumer) can fold other small journals beside it (``also``: topic ->
fold), as the bureau's client does with the key directory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping

import structlog

from brokers.records import ReceivedRecord
from brokers.tail import TopicTail
from schemas.leases import FenceVerdict, LeaseBook, LeaseRecord, LeaseRefused, fence_tag, judge

__all__ = ["LeaseReader"]

log = structlog.get_logger("i247.ncb")


LEASE_READER_PACE_MS = 250
"""The tail rests this long after an empty fetch: a delivery under an epoch not folded yet
waits on the tail (``ready_for``), which ends the rest at once."""
LEASE_READER_BUSY_PACE_MS = 400
"""...and this long after one that brought records: the hubs renew and beat every TTL/3,
so the lease journal has records on most fetches even with no traffic."""


class LeaseReader:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        also: Mapping[str, Callable[[ReceivedRecord], None]] | None = None,
    ) -> None:
        self.book = LeaseBook.empty()
        self._topic = topic
        self._also = dict(also or {})
        self._tail = TopicTail(
            bootstrap,
            [topic, *self._also],
            self._fold,
            pace_ms=LEASE_READER_PACE_MS,
            busy_pace_ms=LEASE_READER_BUSY_PACE_MS,
        )

    def _fold(self, record: ReceivedRecord) -> None:
        if record.topic != self._topic:
            self._also[record.topic](record)
            return
        event = LeaseRecord.model_validate_json(record.value).event()
        with contextlib.suppress(LeaseRefused):  # every reader refuses the same events
            self.book = self.book.apply(event)

    async def start(self) -> None:
        await self._tail.start()

    async def stop(self) -> None:
        await self._tail.stop()

    async def catch_up(self, timeout: float = 10.0) -> None:
        """Fold what was written before this call (e.g. a key rotated a moment ago)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._tail.catch_up(), timeout)

    async def ready_for(self, record: ReceivedRecord, timeout: float = 30.0) -> LeaseBook:
        """The book, once it knows the epoch ``record`` was delivered under (or timeout)."""
        tag = fence_tag(record.headers)
        if (
            tag is not None
            and judge(self.book, tag.unit, tag.epoch, tag.partition, tag.offset)
            is FenceVerdict.UNKNOWN
        ):
            known = await self._tail.wait_until(
                lambda: self.book.lease(tag.unit).epoch >= tag.epoch, timeout
            )
            if not known:
                log.warning("lease-epoch-never-seen", unit=tag.unit, epoch=tag.epoch)
        return self.book
