"""The notice lifecycle: one state machine, its transitions returning effects as data.

Theory of operation
-------------------
``TRANSITIONS`` is the whole machine, ``(state, event) -> next state``::

    requested --start-review--> under_review --publish--> published
                                under_review --refuse---> refused
                                under_review --return---> requested   (more information)
    published --suspend--> suspended --reinstate--> published          (by the requester)
    published|suspended --cancel--> cancelled
    published|suspended --expire--> expired                            (validity ends)
    published|suspended --renew---> same state, validity extended      (by the requester)

Any other pair raises ``IllegalTransition`` naming the state and the event. Every
transition raises the notice's ``version`` by one and returns a ``Transition``: the new
notice and its effects, ``Broadcast`` (the new state, to the notice's scope; for changes
recipients must see), ``NotifyRequester`` and ``Journal``. The shell seals and sends them.

Time is passed in. A notice is valid for ``VALIDITY`` (five years) from publication or
renewal; ``tick(notice, now)`` returns the expiry transition once ``now`` reaches
``expires_at``, or, from ``PROMPT_LEAD`` (six months) before it, a ``PromptRenewal``
effect, once per validity period (``prompted_at`` remembers it). Both durations are
divided by ``scale``, as the handling clocks' objectives are, so a demo at scale
525,960 (a year per minute) sees a notice expire in five minutes, prompted 30 s before.

Worked example (scale 1): published 2026-01-01 00:00 UTC, version 3, expires 2031-01-01.
``tick`` at 2030-06-01 gives nothing; at 2030-07-05 (after 2031-01-01 minus 182 days) a
``PromptRenewal`` and version 4 with ``prompted_at`` set; again at 2030-07-06 nothing; a
``renew`` at 2030-08-01 sets ``expires_at`` to 2035-08-01 and clears ``prompted_at``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from schemas.notices import (
    Notice,
    NoticeId,
    NoticeRequest,
    NoticeState,
    RenewalPrompt,
    ReviewDecision,
    ReviewOutcome,
)
from schemas.registry import MemberRegistry, Region
from streams.core.clocks import InvalidClockScale, as_utc

__all__ = [
    "PROMPT_LEAD",
    "TRANSITIONS",
    "VALIDITY",
    "Broadcast",
    "Effect",
    "IllegalTransition",
    "Journal",
    "NotRequester",
    "NoticeEvent",
    "NoticeLifecycle",
    "NotifyRequester",
    "PromptRenewal",
    "Transition",
    "broadcast_recipients",
]

VALIDITY = timedelta(days=5 * 365 + 1)  # five years, counting one leap day
PROMPT_LEAD = timedelta(days=182)  # six months


class NoticeEvent(StrEnum):
    START_REVIEW = "start-review"
    PUBLISH = "publish"
    REFUSE = "refuse"
    RETURN = "return"  # for more information
    SUSPEND = "suspend"
    REINSTATE = "reinstate"
    CANCEL = "cancel"
    EXPIRE = "expire"
    RENEW = "renew"


_S, _E = NoticeState, NoticeEvent
TRANSITIONS: MappingProxyType[tuple[NoticeState, NoticeEvent], NoticeState] = MappingProxyType(
    {
        (_S.REQUESTED, _E.START_REVIEW): _S.UNDER_REVIEW,
        (_S.UNDER_REVIEW, _E.PUBLISH): _S.PUBLISHED,
        (_S.UNDER_REVIEW, _E.REFUSE): _S.REFUSED,
        (_S.UNDER_REVIEW, _E.RETURN): _S.REQUESTED,
        (_S.PUBLISHED, _E.SUSPEND): _S.SUSPENDED,
        (_S.SUSPENDED, _E.REINSTATE): _S.PUBLISHED,
        (_S.PUBLISHED, _E.CANCEL): _S.CANCELLED,
        (_S.SUSPENDED, _E.CANCEL): _S.CANCELLED,
        (_S.PUBLISHED, _E.EXPIRE): _S.EXPIRED,
        (_S.SUSPENDED, _E.EXPIRE): _S.EXPIRED,
        (_S.PUBLISHED, _E.RENEW): _S.PUBLISHED,
        (_S.SUSPENDED, _E.RENEW): _S.SUSPENDED,
    }
)
# Changes the notice's recipients must see; review steps stay between CCC and requester.
_BROADCAST = frozenset({_E.PUBLISH, _E.SUSPEND, _E.REINSTATE, _E.CANCEL, _E.EXPIRE, _E.RENEW})
_REQUESTER_ONLY = frozenset({_E.SUSPEND, _E.REINSTATE, _E.RENEW})


class IllegalTransition(Exception):
    """The event does not apply in the notice's state: the caller must check the state first."""

    def __init__(self, notice_id: str, state: NoticeState, event: NoticeEvent) -> None:
        allowed = sorted(e.value for (s, e) in TRANSITIONS if s is state)
        super().__init__(
            f"notice {notice_id} is {state.value}: cannot {event.value} it; "
            f"allowed from {state.value}: {', '.join(allowed) or 'nothing (final state)'}"
        )
        self.notice_id = notice_id
        self.state = state
        self.event = event


class NotRequester(PermissionError):
    """Only the requesting NCB may suspend, reinstate or renew its notice."""


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send ``notice`` (its new state) to its scope: ``broadcast_recipients`` lists who."""

    notice: Notice


@dataclass(frozen=True, slots=True)
class NotifyRequester:
    ncb: str
    notice_id: NoticeId
    event: NoticeEvent
    state: NoticeState
    outcome: ReviewOutcome | None = None


@dataclass(frozen=True, slots=True)
class Journal:
    notice_id: NoticeId
    event: NoticeEvent
    from_state: NoticeState
    to_state: NoticeState
    version: int
    at: datetime
    by: str


@dataclass(frozen=True, slots=True)
class PromptRenewal:
    prompt: RenewalPrompt


Effect = Broadcast | NotifyRequester | Journal | PromptRenewal


@dataclass(frozen=True, slots=True)
class Transition:
    notice: Notice
    effects: tuple[Effect, ...]


class NoticeLifecycle:
    """The machine with its (scaled) validity; holds no notices, only the durations."""

    __slots__ = ("prompt_lead", "scale", "validity")

    def __init__(self, scale: float = 1.0) -> None:
        if not (math.isfinite(scale) and scale > 0):
            raise InvalidClockScale(f"notice clock scale must be finite and above 0: {scale!r}")
        self.scale = scale
        self.validity = VALIDITY / scale
        self.prompt_lead = PROMPT_LEAD / scale

    def open(self, request: NoticeRequest, notice_id: NoticeId) -> Notice:
        """A new notice in ``requested`` (version 1), from the NCB's request."""
        return Notice(
            notice_id=notice_id,
            request_id=request.request_id,
            colour=request.colour,
            state=NoticeState.REQUESTED,
            requester=request.requesting_ncb,
            subject=request.subject,
            facts=request.facts,
            offence_category=request.offence_category,
            region=request.region,
        )

    def apply(
        self,
        notice: Notice,
        event: NoticeEvent,
        *,
        now: datetime,
        by: str = "ccc",
        outcome: ReviewOutcome | None = None,
    ) -> Transition:
        """Move ``notice`` by ``event`` at ``now``; raises ``IllegalTransition`` if it can't."""
        now = as_utc(now)
        target = TRANSITIONS.get((notice.state, event))
        if target is None:
            raise IllegalTransition(notice.notice_id, notice.state, event)
        if event in _REQUESTER_ONLY and by != notice.requester:
            raise NotRequester(
                f"only {notice.requester} may {event.value} notice {notice.notice_id}, not {by}"
            )
        changes: dict[str, object] = {"state": target, "version": notice.version + 1}
        if event in (_E.PUBLISH, _E.RENEW):
            changes |= {"expires_at": now + self.validity, "prompted_at": None}
            if event is _E.PUBLISH:
                changes["published_at"] = now
        updated = notice.model_copy(update=changes)
        journal = Journal(notice.notice_id, event, notice.state, target, updated.version, now, by)
        notify = NotifyRequester(notice.requester, notice.notice_id, event, target, outcome)
        effects: tuple[Effect, ...] = (journal, notify)
        if event in _BROADCAST:
            effects = (journal, Broadcast(updated), notify)
        return Transition(updated, effects)

    def decide(self, notice: Notice, outcome: ReviewOutcome, *, now: datetime) -> Transition:
        """Carry out a review outcome on a notice under review."""
        event = {
            ReviewDecision.PUBLISHED: _E.PUBLISH,
            ReviewDecision.REFUSED: _E.REFUSE,
            ReviewDecision.RETURNED: _E.RETURN,
        }[outcome.decision]
        return self.apply(notice, event, now=now, outcome=outcome)

    def tick(self, notice: Notice, now: datetime) -> Transition | None:
        """Expire a notice whose validity has ended, or prompt its renewal; else ``None``."""
        now = as_utc(now)
        if notice.state not in (_S.PUBLISHED, _S.SUSPENDED) or notice.expires_at is None:
            return None
        expires_at = as_utc(notice.expires_at, "expires_at")
        if now >= expires_at:
            return self.apply(notice, _E.EXPIRE, now=now)
        if notice.prompted_at is not None or now < expires_at - self.prompt_lead:
            return None
        updated = notice.model_copy(update={"prompted_at": now, "version": notice.version + 1})
        prompt = RenewalPrompt(
            notice_id=notice.notice_id,
            requester=notice.requester,
            version=updated.version,
            expires_at=expires_at,
        )
        return Transition(updated, (PromptRenewal(prompt),))


def broadcast_recipients(
    notice: Notice, registry: MemberRegistry, teams: Iterable[tuple[str, Region]] = ()
) -> tuple[str, ...]:
    """Who receives ``notice``: every NCB (worldwide) or one region's, then the teams it concerns.

    A worldwide notice concerns every deployed team; a regional one the teams deployed in
    that region. NCBs come first (sorted), then teams (sorted).
    """
    if notice.region is None:
        ncbs = registry.codes()
        chosen = sorted({team for team, _ in teams})
    else:
        ncbs = tuple(member.iso3 for member in registry.in_region(notice.region))
        chosen = sorted({team for team, region in teams if region is notice.region})
    return (*ncbs, *chosen)
