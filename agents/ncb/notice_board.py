"""An NCB's notice board: the notices in force for it, and the diffusions it still holds.

Theory of operation
-------------------
The CCC writes the latest state of every notice to the compacted notices topic (key: the
notice id), sealed for that topic and key and addressed to the notice's recipients and
``ccc`` (``streams.desks.notice_desk``). A ``NoticeBoard`` first reads that topic from its start,
group-less, and opens each record with its NCB's key: a notice addressed elsewhere (another
region's alert) does not open and is skipped, so it can never show. Then it follows its
inbox, where the CCC copies every new notice state, diffusion and recall. Both feed one
``NoticeView``, which keeps the highest version of each notice and purges a recalled
diffusion whatever the order, so catching up and following may overlap freely.

A notice or a recall counts only if a CCC hub sealed it; a diffusion comes from its NCB.
The board opens inbox records with its adapter, which drops message ids it has opened
before: give the board an adapter of its own if something else reads the same inbox
through another, or feed it with ``take`` from your own loop instead of ``start``.

Worked example: ESP starts late, after a worldwide Red Notice v3 (published), an Africa
regional alert and a cancelled Yellow Notice were written. ``await board.start(bootstrap)``
catches up: ``board.view.in_force()`` holds the Red Notice only (the regional alert does
not open for ESP; the cancelled one is its latest state, not in force). A recall of a
diffusion ESP holds arrives: ``board.view.diffusions()`` no longer lists it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from agents.ncb.adapter import Inbound, NcbAdapter, Opened
from brokers.records import ReceivedRecord
from brokers.tail import TopicTail
from schemas.bodies import DiffusionBody, NoticeBody
from schemas.errors import NotARecipient, RejectedMessage
from schemas.notice_view import NoticeView, update_from_message
from schemas.participants import ParticipantKind, kind_of
from schemas.sealing import open_sealed, parse_envelope

__all__ = ["NoticeBoard"]

log = structlog.get_logger("i247.ncb.notices")


@dataclass
class NoticeBoard:
    """What one NCB knows of notices and diffusions; ``view`` is the fold."""

    adapter: NcbAdapter
    view: NoticeView = field(default_factory=NoticeView)
    counts: Counter[str] = field(default_factory=Counter)
    _compacted: TopicTail | None = None
    _inbox: TopicTail | None = None

    # --- the fold (no I/O) --------------------------------------------------------

    def take_compacted(self, record: ReceivedRecord) -> bool:
        """Fold one record of the notices topic; True if the view changed."""
        adapter = self.adapter
        try:
            sealed = parse_envelope(record.value, max_bytes=adapter.max_bytes)
            opened = open_sealed(
                sealed,
                topic=record.topic,
                key=record.key or b"",
                directory=adapter.directory,
                identity=adapter.identity,
            )
        except NotARecipient:
            self.counts["compacted.not-ours"] += 1  # another region's notice
            return False
        except RejectedMessage as refusal:
            self.counts["compacted.unopened"] += 1
            log.warning("notice-record-unopened", origin=record.origin, detail=str(refusal))
            return False
        body = opened.body
        key = (record.key or b"").decode()
        if (
            kind_of(opened.header.sender) is not ParticipantKind.HUB
            or not isinstance(body, NoticeBody)
            or body.notice.notice_id != key
        ):
            self.counts["compacted.foreign"] += 1
            return False
        self.counts["compacted.opened"] += 1
        return self.view.apply(body.notice)

    def take(self, inbound: Inbound) -> bool:
        """Fold one inbox delivery (from ``NcbAdapter.receive``); True if the view changed."""
        if not isinstance(inbound, Opened):
            return False
        body = inbound.body
        from_hub = kind_of(inbound.header.sender) is ParticipantKind.HUB
        if not isinstance(body, DiffusionBody) and not from_hub:
            return False  # notices and recalls come from the CCC only
        update = update_from_message(inbound.header, body)
        if update is None:
            return False
        self.counts[f"inbox.{body.type.value}"] += 1
        return self.view.apply(update)

    # --- the shell ----------------------------------------------------------------

    async def start(self, bootstrap: str, *, follow_inbox: bool = True) -> None:
        """Catch up on the notices topic from its start, then follow the inbox too."""
        topics = self.adapter.topics
        self._compacted = TopicTail(bootstrap, [topics.notices], self._on_compacted)
        await self._compacted.start()
        await self._compacted.catch_up()
        if follow_inbox:
            self._inbox = TopicTail(bootstrap, [self.adapter.inbox], self._on_inbox)
            await self._inbox.start()

    async def wait_until(self, holds: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``holds()`` is true after some record was folded; False on timeout."""
        if holds():
            return True
        tail = self._inbox or self._compacted
        if tail is None:
            raise RuntimeError("the notice board is not started: await board.start(...) first")
        return await tail.wait_until(holds, timeout)

    async def stop(self) -> None:
        for tail in (self._inbox, self._compacted):
            if tail is not None:
                await tail.stop()
        self._inbox = self._compacted = None

    def _on_compacted(self, record: ReceivedRecord) -> None:
        self.take_compacted(record)

    def _on_inbox(self, record: ReceivedRecord) -> None:
        self.take(self.adapter.receive(record))
