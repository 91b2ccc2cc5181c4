"""Ownership of the CCC's work units as leases with epochs, and the fence every reader applies.

Theory of operation
-------------------
A *unit* is a piece of work exactly one hub may do at a time: ``intake`` (the inbound
topic) or one lane topic (``i247.hub.lyon.flash``...). The lease journal (the topic
``i247.hub.leases``, one partition, so one total order) carries ``Claim``, ``Renew`` and
``Release`` events; every hub and every reader folds them through ``LeaseBook.apply`` in
log order, so all agree on the owner, the epoch and the *term* of each unit. Clocks only
decide when a claim is allowed (the lease expired at the claim's time); safety never
depends on them, because a claim must name the next epoch and the log orders claims.

Positions: an owner reports, with each renewal and its release, how far it has finished
the unit (partition -> next offset, counted only after its outputs were acknowledged by
the broker). A new term starts where the previous one was last reported finished, or
further if the claimer saw more of the previous owner's outputs than it reported (a
claim may carry such positions: intake's outputs are the lanes every hub reads); the
previous term *ends* there.

The fence (``judge``): every output carries the unit, the epoch and the input offset it
came from. A reader accepts an output of epoch ``e`` at input offset ``o`` only if ``o``
lies before the end of term ``e`` (an open term has no end). So a hub that was only slow
(SIGSTOP, a cut link) and wakes up to deliver work its successor has already taken on is
refused, and what it finished before losing the lease stands: nothing lost, nothing twice.
An epoch the reader has not folded yet is ``UNKNOWN``: catch up the journal and ask again.

Transitions (anything else raises ``LeaseRefused``, the book unchanged):

    free    --Claim(epoch = current + 1)-->           owned(site, epoch)
    owned   --Claim(epoch = current + 1, expired)-->  owned(new site, epoch)
    owned   --Renew(owner, epoch)-->                  owned (expiry extended, positions kept)
    owned   --Release(owner, epoch)-->                free (epoch kept, term ended)

Worked example: lyon claims ``L`` (epoch 1) and reports ``{0: 40}``; it stops renewing; at
expiry buenos-aires claims epoch 2, which starts at 40. A delivery of lyon's at input
offset 39 is accepted, one at offset 41 is fenced: buenos-aires delivers that one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.header import UtcTimestamp
from schemas.header_names import FENCE_HEADERS

__all__ = [
    "Claim",
    "FenceTag",
    "FenceVerdict",
    "Lease",
    "LeaseBook",
    "LeaseEvent",
    "LeaseRecord",
    "LeaseRefused",
    "Positions",
    "Release",
    "Renew",
    "Term",
    "fence_headers",
    "fence_tag",
    "judge",
]

Positions = Mapping[int, int]  # partition -> next offset to process

_UNIT, _EPOCH, _PARTITION, _OFFSET = FENCE_HEADERS
_FENCE_NAMES = frozenset(FENCE_HEADERS)


@dataclass(frozen=True, slots=True)
class Claim:
    unit: str
    site: str
    epoch: int
    at: datetime
    ttl: timedelta
    positions: Positions = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Renew:
    unit: str
    site: str
    epoch: int
    at: datetime
    ttl: timedelta
    positions: Positions = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Release:
    unit: str
    site: str
    epoch: int
    at: datetime
    positions: Positions = field(default_factory=dict)


LeaseEvent = Claim | Renew | Release


@dataclass(frozen=True, slots=True)
class Term:
    """One owner's epoch on a unit: where it started and, once over, where it ended."""

    epoch: int
    owner: str
    claimed_at: datetime
    start: Positions
    end: Positions | None = None


@dataclass(frozen=True, slots=True)
class Lease:
    unit: str
    owner: str | None
    epoch: int
    expires_at: datetime | None
    positions: Positions
    terms: tuple[Term, ...] = ()

    def term(self, epoch: int) -> Term | None:
        for term in self.terms:
            if term.epoch == epoch:
                return term
        return None


class LeaseRefused(Exception):
    """An event that does not follow the transition table; the lease is unchanged."""


def _advance(old: Positions, new: Positions) -> dict[int, int]:
    """Positions only move forward: a late or repeated report never moves one back."""
    merged = dict(old)
    for partition, offset in dict(new).items():
        merged[partition] = max(offset, merged.get(partition, 0))
    return merged


@dataclass(frozen=True)
class LeaseBook:
    """The current lease of every unit, as folded from the journal."""

    leases: dict[str, Lease]

    @classmethod
    def empty(cls) -> LeaseBook:
        return cls({})

    def lease(self, unit: str) -> Lease:
        return self.leases.get(unit, Lease(unit, None, 0, None, {}))

    def owner_at(self, unit: str, now: datetime) -> str | None:
        """The owner whose lease is still valid at ``now``, else None."""
        lease = self.lease(unit)
        if lease.owner is None or (lease.expires_at is not None and now >= lease.expires_at):
            return None
        return lease.owner

    def apply(self, event: LeaseEvent) -> LeaseBook:
        """The book after ``event``; ``LeaseRefused`` (naming why) if the table forbids it."""
        current = self.lease(event.unit)
        if isinstance(event, Claim):
            if event.epoch != current.epoch + 1:
                raise LeaseRefused(
                    f"{event.site} claims {event.unit} at epoch {event.epoch}; "
                    f"the next epoch is {current.epoch + 1}"
                )
            if self.owner_at(event.unit, event.at) not in (None, event.site):
                raise LeaseRefused(
                    f"{event.unit} is held by {current.owner} until {current.expires_at}"
                )
            start = _advance(current.positions, event.positions)
            terms = (
                *tuple(replace(t, end=start) if t.end is None else t for t in current.terms),
                Term(event.epoch, event.site, event.at, start),
            )
            updated = Lease(event.unit, event.site, event.epoch, event.at + event.ttl, start, terms)
        elif isinstance(event, Renew):
            _require_owner(current, event.site, event.epoch, "renews")
            updated = replace(
                current,
                expires_at=event.at + event.ttl,
                positions=_advance(current.positions, event.positions),
            )
        else:
            _require_owner(current, event.site, event.epoch, "releases")
            final = _advance(current.positions, event.positions)
            terms = tuple(replace(t, end=final) if t.end is None else t for t in current.terms)
            updated = replace(current, owner=None, expires_at=None, positions=final, terms=terms)
        return LeaseBook({**self.leases, event.unit: updated})


def _require_owner(current: Lease, site: str, epoch: int, verb: str) -> None:
    if (current.owner, current.epoch) != (site, epoch):
        raise LeaseRefused(
            f"{site}@{epoch} {verb} {current.unit}, owned by {current.owner}@{current.epoch}"
        )


class FenceVerdict(StrEnum):
    ACCEPT = "accept"
    FENCED = "fenced"
    UNKNOWN = "unknown-epoch"  # the reader's book is behind: catch up and judge again


def judge(book: LeaseBook, unit: str, epoch: int, partition: int, offset: int) -> FenceVerdict:
    """Whether an output of ``unit`` made under ``epoch`` from input ``offset`` stands."""
    lease = book.lease(unit)
    if epoch > lease.epoch:
        return FenceVerdict.UNKNOWN
    term = lease.term(epoch)
    if term is None:
        return FenceVerdict.FENCED
    if term.end is None:
        return FenceVerdict.ACCEPT
    return FenceVerdict.ACCEPT if offset < term.end.get(partition, 0) else FenceVerdict.FENCED


class LeaseRecord(BaseModel):
    """One lease event as it travels on the lease journal (JSON, key = unit)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    kind: Literal["claim", "renew", "release"]
    unit: str = Field(min_length=1, max_length=255)
    site: str = Field(min_length=1, max_length=64)
    epoch: int = Field(ge=1)
    at: UtcTimestamp
    ttl_ms: int | None = Field(default=None, ge=1)
    positions: dict[str, int] = Field(default_factory=dict)

    @classmethod
    def of(cls, event: LeaseEvent) -> LeaseRecord:
        positions = {str(p): o for p, o in dict(getattr(event, "positions", {}) or {}).items()}
        ttl = getattr(event, "ttl", None)
        kind: Literal["claim", "renew", "release"] = (
            "claim"
            if isinstance(event, Claim)
            else "renew"
            if isinstance(event, Renew)
            else "release"
        )
        return cls(
            kind=kind,
            unit=event.unit,
            site=event.site,
            epoch=event.epoch,
            at=event.at,
            ttl_ms=None if ttl is None else int(ttl.total_seconds() * 1000),
            positions=positions,
        )

    def event(self) -> LeaseEvent:
        positions = {int(p): o for p, o in self.positions.items()}
        ttl = timedelta(milliseconds=self.ttl_ms or 0)
        if self.kind == "claim":
            return Claim(self.unit, self.site, self.epoch, self.at, ttl, positions)
        if self.kind == "renew":
            return Renew(self.unit, self.site, self.epoch, self.at, ttl, positions)
        return Release(self.unit, self.site, self.epoch, self.at, positions)


@dataclass(frozen=True, slots=True)
class FenceTag:
    """What an output says about its making: unit, epoch, and the input it came from."""

    unit: str
    epoch: int
    partition: int
    offset: int


def fence_headers(
    headers: tuple[tuple[str, bytes], ...], tag: FenceTag
) -> tuple[tuple[str, bytes], ...]:
    """``headers`` with any earlier fence tag replaced by ``tag``."""
    kept = tuple((k, v) for k, v in headers if k not in _FENCE_NAMES)
    return (
        *kept,
        (_UNIT, tag.unit.encode()),
        (_EPOCH, str(tag.epoch).encode()),
        (_PARTITION, str(tag.partition).encode()),
        (_OFFSET, str(tag.offset).encode()),
    )


def fence_tag(headers: tuple[tuple[str, bytes], ...]) -> FenceTag | None:
    """The fence tag of a record, or None if it has none or a garbled one."""
    found = {k: v for k, v in headers if k in _FENCE_NAMES}
    try:
        return FenceTag(
            found[_UNIT].decode(),
            int(found[_EPOCH]),
            int(found[_PARTITION]),
            int(found[_OFFSET]),
        )
    except (KeyError, ValueError, UnicodeDecodeError):
        return None
