"""Lane ownership as leases with epochs: exactly one hub owns a lane at a time.

Theory of operation: the lease journal (a topic, in the shell) carries ``Claim``, ``Renew``
and ``Release`` events; every hub folds them through ``apply`` in log order, so all hubs
agree on the owner and epoch of each lane. A claim must name the next epoch and may only
take a lane that is free (released, never owned, or its lease expired at the claim's
time). Deliveries carry the owner's epoch; ``is_fenced`` refuses any under an older epoch,
so a hub that was only slow (SIGSTOP, a network cut) cannot deliver stale work after its
successor took over. Group membership is not used: on Tansu a join takes half the session
timeout.

Transitions (lease state by event; anything else is refused with a reason):

    free    --Claim(epoch = current + 1)-->           owned(site, epoch)
    owned   --Claim(epoch = current + 1, expired)-->  owned(new site, epoch)
    owned   --Renew(owner, epoch)-->                  owned (expiry extended)
    owned   --Release(owner, epoch)-->                free (epoch kept)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

__all__ = [
    "Claim",
    "Lease",
    "LeaseBook",
    "LeaseEvent",
    "LeaseRefused",
    "Release",
    "Renew",
    "is_fenced",
]


@dataclass(frozen=True, slots=True)
class Claim:
    lane: str
    site: str
    epoch: int
    at: datetime
    ttl: timedelta


@dataclass(frozen=True, slots=True)
class Renew:
    lane: str
    site: str
    epoch: int
    at: datetime
    ttl: timedelta


@dataclass(frozen=True, slots=True)
class Release:
    lane: str
    site: str
    epoch: int
    at: datetime


LeaseEvent = Claim | Renew | Release


@dataclass(frozen=True, slots=True)
class Lease:
    lane: str
    owner: str | None
    epoch: int
    expires_at: datetime | None


class LeaseRefused(Exception):
    """An event that does not follow the transition table; the lease is unchanged."""


@dataclass(frozen=True)
class LeaseBook:
    """The current lease of every lane, as folded from the journal."""

    leases: dict[str, Lease]

    @classmethod
    def empty(cls) -> LeaseBook:
        return cls({})

    def lease(self, lane: str) -> Lease:
        return self.leases.get(lane, Lease(lane, None, 0, None))

    def owner_at(self, lane: str, now: datetime) -> str | None:
        lease = self.lease(lane)
        if lease.owner is None or (lease.expires_at is not None and now >= lease.expires_at):
            return None
        return lease.owner

    def apply(self, event: LeaseEvent) -> LeaseBook:
        """The book after ``event``; ``LeaseRefused`` (naming why) if the table forbids it."""
        current = self.lease(event.lane)
        if isinstance(event, Claim):
            if event.epoch != current.epoch + 1:
                raise LeaseRefused(
                    f"{event.site} claims {event.lane} at epoch {event.epoch}; "
                    f"the next epoch is {current.epoch + 1}"
                )
            if self.owner_at(event.lane, event.at) not in (None, event.site):
                raise LeaseRefused(
                    f"{event.lane} is held by {current.owner} until {current.expires_at}"
                )
            updated = Lease(event.lane, event.site, event.epoch, event.at + event.ttl)
        elif isinstance(event, Renew):
            _require_owner(current, event.site, event.epoch, "renews")
            updated = replace(current, expires_at=event.at + event.ttl)
        else:
            _require_owner(current, event.site, event.epoch, "releases")
            updated = replace(current, owner=None, expires_at=None)
        return LeaseBook({**self.leases, event.lane: updated})


def _require_owner(current: Lease, site: str, epoch: int, verb: str) -> None:
    if (current.owner, current.epoch) != (site, epoch):
        raise LeaseRefused(
            f"{site}@{epoch} {verb} {current.lane}, owned by {current.owner}@{current.epoch}"
        )


def is_fenced(book: LeaseBook, lane: str, site: str, epoch: int) -> bool:
    """True if a delivery from ``site`` under ``epoch`` must be refused on ``lane``."""
    lease = book.lease(lane)
    return epoch < lease.epoch or (epoch == lease.epoch and site != lease.owner)
