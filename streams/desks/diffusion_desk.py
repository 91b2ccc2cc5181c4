"""The CCC's diffusion desk: the diffusion ledger, and recalls.

Theory of operation
-------------------
NCBs address diffusions to their recipients *and* ``ccc``; the desk records each in its
``DiffusionLedger`` (``streams.core.diffusions``) and journals ``diffusion-recorded`` with the
NCBs it reached. Every hub folds ``diffusion-recorded`` and ``diffusion-recalled`` into its
own ledger (``fold_journal``, from ``i247.control``), so the ledger survives a change of
hub: a diffusion recorded by a hub since gone is recalled through another.

A ``diffusion-recall`` comes from the diffusion's own sender; ``recall_diffusion`` does
the same for the CCC after a compliance finding. The recall goes to every original
recipient and the sender, and is journaled ``diffusion-recalled``; a recall of an unknown
or recalled diffusion, or by someone else, is journaled ``diffusion-recall-refused`` and
the NCB told why.

Worked example: FRA diffuses to DEU, ITA and ``ccc``: ``diffusion-recorded`` (2
recipients). DEU's recall is refused (not its diffusion); FRA's reaches DEU, ITA and FRA.
"""

from __future__ import annotations

from collections import OrderedDict

import structlog
from pydantic import ValidationError

from schemas.bodies import DiffusionBody, DiffusionRecallBody, MessageBody
from schemas.header import MessageType, RoutingHeader
from schemas.journal import (
    DiffusionNotRecorded,
    DiffusionRecalled,
    DiffusionRecallRefused,
    DiffusionRecorded,
    NoticeDeskFailed,
)
from schemas.notice_view import diffusion_from_message
from schemas.notices import DiffusionRecall
from schemas.participants import CCC, ParticipantKind, kind_of
from schemas.registry import MemberRegistry, UnknownMember
from schemas.sealing import OpenedMessage
from streams.core.diffusions import (
    AlreadyRecalled,
    ConflictingDiffusion,
    DiffusionLedger,
    UnknownDiffusion,
)
from streams.desks.context import DeskContext
from streams.desks.effects import Effect, Journal, Send

__all__ = ["DiffusionDesk"]

log = structlog.get_logger("i247.notices")


class DiffusionDesk:
    """Diffusions and their recalls at the CCC (see the module docstring)."""

    handles = frozenset({MessageType.DIFFUSION, MessageType.DIFFUSION_RECALL})

    def __init__(self, registry: MemberRegistry, *, memory: int = 100_000) -> None:
        self.ledger = DiffusionLedger(registry)
        self._handled: OrderedDict[str, None] = OrderedDict()
        self._memory = memory

    def handle(self, ctx: DeskContext, opened: OpenedMessage) -> list[Effect]:
        header, body = opened.header, opened.body
        if header.message_id in self._handled:
            log.info("ccc-message-again", message_id=header.message_id)
            return []
        self._handled[header.message_id] = None
        while len(self._handled) > self._memory:
            self._handled.popitem(last=False)
        try:
            if isinstance(body, DiffusionBody):
                return self._diffusion(ctx, header, body)
            if isinstance(body, DiffusionRecallBody):
                return self._recall_request(ctx, header, body.recall)
        except Exception:  # a desk fault must not stall the lane that carried the message
            log.exception("notice-desk-failed", message_id=header.message_id)
            failed = NoticeDeskFailed(
                hub=ctx.hub,
                time=ctx.now,
                message_id=header.message_id,
                type=header.message_type.value,
            )
            return [Journal(failed, header.message_id)]
        return []

    def tick(self, ctx: DeskContext) -> list[Effect]:
        return []

    def _diffusion(
        self, ctx: DeskContext, header: RoutingHeader, body: DiffusionBody
    ) -> list[Effect]:
        try:
            diffusion = diffusion_from_message(header, body)
            recipients = self.ledger.record(diffusion)
        except (ValidationError, UnknownMember, ConflictingDiffusion) as problem:
            log.warning(
                "diffusion-not-recorded",
                diffusion_id=header.message_id,
                sender=header.sender,
                detail=str(problem),
            )
            failed = DiffusionNotRecorded(
                hub=ctx.hub, time=ctx.now, diffusion_id=header.message_id, sender=header.sender
            )
            return [Journal(failed, header.message_id)]
        recorded = DiffusionRecorded(
            hub=ctx.hub,
            time=ctx.now,
            diffusion_id=diffusion.diffusion_id,
            sender=diffusion.sender,
            region=diffusion.region.value if diffusion.region else None,
            recipients=len(recipients),
            reached=tuple(recipients),  # addressing only: every hub folds it
        )
        return [Journal(recorded, diffusion.diffusion_id)]

    def fold_journal(self, event: DiffusionRecorded | DiffusionRecalled) -> None:
        """Follow the diffusions other hubs recorded and recalled (from ``i247.control``)."""
        if isinstance(event, DiffusionRecorded):
            self.ledger.restore(event.diffusion_id, event.sender, event.reached, recalled=False)
        elif self.ledger.sender_of(event.diffusion_id) is not None:
            self.ledger.restore(event.diffusion_id, event.sender, (), recalled=True)

    def _recall_request(
        self, ctx: DeskContext, header: RoutingHeader, recall: DiffusionRecall
    ) -> list[Effect]:
        sender = self.ledger.sender_of(recall.diffusion_id)
        if sender is not None and sender != header.sender:
            why = f"only {sender}, which sent {recall.diffusion_id}, may recall it"
            return self._refuse_recall(ctx, recall, header.sender, why, header.message_id)
        return self.recall_diffusion(ctx, recall, by=header.sender, correlation=header.message_id)

    def recall_diffusion(
        self,
        ctx: DeskContext,
        recall: DiffusionRecall,
        *,
        by: str = CCC,
        correlation: str | None = None,
    ) -> list[Effect]:
        """Recall a recorded diffusion: every original recipient and its sender are told.

        ``by`` is ``ccc`` for the CCC's own recall (a compliance finding) or the sending NCB.
        """
        try:
            effect = self.ledger.recall(recall)
        except (UnknownDiffusion, AlreadyRecalled) as refusal:
            return self._refuse_recall(ctx, recall, by, str(refusal), correlation)
        told = tuple(sorted({*effect.recipients, effect.sender}))
        recalled = DiffusionRecalled(
            hub=ctx.hub,
            time=ctx.now,
            diffusion_id=recall.diffusion_id,
            reason=recall.reason.value,
            by=by,
            sender=effect.sender,
            recipients=len(effect.recipients),
        )
        return [
            Send(told, DiffusionRecallBody(recall=recall), correlation_id=correlation),
            Journal(recalled, recall.diffusion_id),
        ]

    def _refuse_recall(
        self,
        ctx: DeskContext,
        recall: DiffusionRecall,
        by: str,
        why: str,
        correlation: str | None,
    ) -> list[Effect]:
        refused = DiffusionRecallRefused(
            hub=ctx.hub, time=ctx.now, diffusion_id=recall.diffusion_id, by=by, why=why
        )
        out: list[Effect] = [Journal(refused, recall.diffusion_id)]
        if by != CCC and kind_of(by) is ParticipantKind.NCB:
            reply = MessageBody(subject=f"recall refused: {recall.diffusion_id}", text=why)
            out.append(Send((by,), reply, correlation_id=correlation))
        return out
