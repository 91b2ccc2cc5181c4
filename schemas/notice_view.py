"""A recipient's view of notices and diffusions, converging whatever the delivery order.

Theory of operation
-------------------
An NCB or team receives notice broadcasts, diffusion copies and diffusion recalls, maybe
twice, maybe out of order (redelivery after a hub failover, two lanes). ``NoticeView``
folds them so that its state depends only on the *set* of updates received:

* per ``notice_id`` it keeps the notice with the highest ``version``; a stale version
  never overwrites a newer one (equal versions, which should carry equal content, are
  settled by their JSON so the choice is order-free too);
* ``in_force()`` is the notices whose latest state is ``published`` (suspended ones are in
  ``suspended()``); cancelled and expired ones are kept as latest state but not in force;
* a recall purges the diffusion copy and leaves a tombstone, so a copy arriving after its
  recall stays purged.

Each rule is a join on a semilattice (max by version; set union minus tombstones), so
any permutation and duplication of the same updates gives the same view (a hypothesis
test checks it).

``update_from_message`` turns an opened message (a ``notice``, ``diffusion`` or
``diffusion-recall`` body with its header) into the update it carries. The view lives in
``schemas`` because both sides fold it: the CCC desk (``streams``) and the NCBs' notice
board (``agents``, which may not import ``streams``).

Worked example: receive notice n1 v3 (suspended), then n1 v2 (published, late): the view
keeps v3, and n1 is not in force. Receive recall of d1, then d1: ``diffusions()`` is empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from schemas.bodies import Body, DiffusionBody, DiffusionRecallBody, NoticeBody
from schemas.header import RoutingHeader
from schemas.notices import Diffusion, DiffusionRecall, Notice, NoticeState
from schemas.participants import CCC, ParticipantKind, kind_of

__all__ = ["NoticeView", "Update", "diffusion_from_message", "update_from_message"]

Update = Notice | Diffusion | DiffusionRecall


def diffusion_from_message(header: RoutingHeader, body: DiffusionBody) -> Diffusion:
    """The central record of a diffusion as it travelled: header addressing, body content.

    The NCBs are the header's NCB recipients; ``ccc`` (which records it) is not one.
    """
    ncbs = tuple(r for r in header.recipients if r != CCC and kind_of(r) is ParticipantKind.NCB)
    return Diffusion(
        diffusion_id=header.message_id,
        sender=header.sender,
        ncbs=tuple(sorted(set(ncbs))),
        region=body.region,
        subject=body.subject,
        facts=body.text,
        sent_at=header.created_at,
    )


def update_from_message(header: RoutingHeader, body: Body) -> Update | None:
    """What an opened message changes in a view; ``None`` for any other kind of body."""
    if isinstance(body, NoticeBody):
        return body.notice
    if isinstance(body, DiffusionBody):
        return diffusion_from_message(header, body)
    if isinstance(body, DiffusionRecallBody):
        return body.recall
    return None


def _newer(candidate: Notice, held: Notice) -> bool:
    if candidate.version != held.version:
        return candidate.version > held.version
    return candidate.model_dump_json() > held.model_dump_json()


class NoticeView:
    """What one recipient currently knows; feed it updates with ``apply``."""

    __slots__ = ("_diffusions", "_notices", "_recalled")

    def __init__(self, updates: Iterable[Update] = ()) -> None:
        self._notices: dict[str, Notice] = {}
        self._diffusions: dict[str, Diffusion] = {}
        self._recalled: set[str] = set()
        for update in updates:
            self.apply(update)

    def apply(self, update: Update) -> bool:
        """Fold one update in; True if the view changed."""
        if isinstance(update, Notice):
            held = self._notices.get(update.notice_id)
            if held is not None and not _newer(update, held):
                return False
            self._notices[update.notice_id] = update
            return True
        if isinstance(update, DiffusionRecall):
            if update.diffusion_id in self._recalled:
                return False
            self._recalled.add(update.diffusion_id)
            self._diffusions.pop(update.diffusion_id, None)
            return True
        if update.diffusion_id in self._recalled or update.diffusion_id in self._diffusions:
            return False  # a diffusion id names one message: its copies are equal
        self._diffusions[update.diffusion_id] = update
        return True

    def latest(self, notice_id: str) -> Notice | None:
        """The newest version received of ``notice_id``, whatever its state."""
        return self._notices.get(notice_id)

    def in_force(self) -> Mapping[str, Notice]:
        """Published notices, by id."""
        return self._in_state(NoticeState.PUBLISHED)

    def suspended(self) -> Mapping[str, Notice]:
        return self._in_state(NoticeState.SUSPENDED)

    def diffusions(self) -> Mapping[str, Diffusion]:
        """Diffusion copies held (recalled ones are purged), by id."""
        return MappingProxyType(dict(sorted(self._diffusions.items())))

    def snapshot(self) -> tuple[tuple[Notice, ...], tuple[Diffusion, ...], frozenset[str]]:
        """The whole state, order-free, for comparing two views."""
        notices = tuple(n for _, n in sorted(self._notices.items()))
        diffusions = tuple(d for _, d in sorted(self._diffusions.items()))
        return notices, diffusions, frozenset(self._recalled)

    def _in_state(self, state: NoticeState) -> Mapping[str, Notice]:
        chosen = {i: n for i, n in sorted(self._notices.items()) if n.state is state}
        return MappingProxyType(chosen)
