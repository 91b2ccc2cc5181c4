"""Diffusions: who one reaches, the CCC's central record of them, and their recall.

Theory of operation
-------------------
A diffusion goes straight from one NCB to the NCBs it names and/or every member of one
region. ``expand_diffusion`` turns that address into NCB codes (sorted, without the
sender). The CCC keeps a ``DiffusionLedger``: ``record`` notes each diffusion with the
recipients it reached; ``recall`` (say, after a compliance finding) returns a ``Recall``
effect addressed to every original recipient, and refuses an unknown or already recalled
diffusion. Recording the same diffusion twice (a redelivered record) is harmless.
``restore`` folds the addressing another hub journaled (``diffusion-recorded`` carries the
recipients, ``diffusion-recalled`` marks it), so after a failover the successor can still
recall a diffusion the failed hub recorded, and refuses a second recall.

Worked example: FRA diffuses to ``ncbs=("USA",)`` and ``region=Europe``: the recipients
are the 49 other members of Europe plus USA. A recall of it later reaches those 50.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.notice_view import diffusion_from_message
from schemas.notices import Diffusion, DiffusionRecall, RecallReason
from schemas.registry import MemberRegistry

__all__ = [
    "AlreadyRecalled",
    "ConflictingDiffusion",
    "DiffusionLedger",
    "Recall",
    "UnknownDiffusion",
    "diffusion_from_message",
    "expand_diffusion",
]


class UnknownDiffusion(KeyError):
    """No diffusion with this id was recorded: check the id, or record it first."""


class AlreadyRecalled(ValueError):
    """The diffusion was recalled already; its recipients have purged it."""


class ConflictingDiffusion(ValueError):
    """A second, different diffusion arrived under an id already recorded."""


def expand_diffusion(diffusion: Diffusion, registry: MemberRegistry) -> tuple[str, ...]:
    """The NCBs a diffusion reaches: those named plus the region's members, minus the sender.

    Raises ``UnknownMember`` (from the registry) for a named code that is no member.
    """
    chosen = {registry.get(code).iso3 for code in diffusion.ncbs}
    if diffusion.region is not None:
        chosen |= {member.iso3 for member in registry.in_region(diffusion.region)}
    chosen.discard(diffusion.sender)
    return tuple(sorted(chosen))


@dataclass(frozen=True, slots=True)
class Recall:
    """Send ``recall`` to ``recipients``: everyone the diffusion originally reached."""

    recall: DiffusionRecall
    sender: str  # the NCB that sent the diffusion; it is told too
    recipients: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Entry:
    sender: str
    recipients: tuple[str, ...]
    diffusion: Diffusion | None  # None when rebuilt from the journal (addressing only)
    recalled: DiffusionRecall | None = None


class DiffusionLedger:
    """Every diffusion the CCC has seen, by id, and whether it was recalled."""

    __slots__ = ("_entries", "_registry")

    def __init__(self, registry: MemberRegistry) -> None:
        self._registry = registry
        self._entries: dict[str, _Entry] = {}

    def record(self, diffusion: Diffusion) -> tuple[str, ...]:
        """Note a sent diffusion; returns the recipients it reached."""
        known = self._entries.get(diffusion.diffusion_id)
        if known is not None:
            if known.diffusion is None and known.sender == diffusion.sender:
                return known.recipients  # rebuilt from the journal, now seen in full
            if known.diffusion != diffusion:
                raise ConflictingDiffusion(
                    f"diffusion {diffusion.diffusion_id} is recorded with other content; "
                    "a new diffusion needs a new message id"
                )
            return known.recipients
        recipients = expand_diffusion(diffusion, self._registry)
        self._entries[diffusion.diffusion_id] = _Entry(diffusion.sender, recipients, diffusion)
        return recipients

    def restore(
        self, diffusion_id: str, sender: str, recipients: tuple[str, ...], *, recalled: bool
    ) -> None:
        """Fold what another hub journaled (``diffusion-recorded``/``-recalled``): the
        addressing a recall needs, so any hub can recall a diffusion any hub recorded."""
        known = self._entries.get(diffusion_id)
        if known is None:
            known = _Entry(sender, tuple(sorted(recipients)), None)
        if recalled and known.recalled is None:
            known = _Entry(
                known.sender,
                known.recipients,
                known.diffusion,
                DiffusionRecall(diffusion_id=diffusion_id, reason=RecallReason.SENDER_WITHDREW),
            )
        self._entries[diffusion_id] = known

    def recall(self, recall: DiffusionRecall) -> Recall:
        """Withdraw a recorded diffusion: the effect reaches all its original recipients."""
        entry = self._entries.get(recall.diffusion_id)
        if entry is None:
            raise UnknownDiffusion(
                f"no diffusion {recall.diffusion_id} is recorded; check the id "
                "(the ledger is rebuilt from the log when the hub starts)"
            )
        if entry.recalled is not None:
            raise AlreadyRecalled(
                f"diffusion {recall.diffusion_id} was already recalled "
                f"({entry.recalled.reason.value}); nothing more to do"
            )
        self._entries[recall.diffusion_id] = _Entry(
            entry.sender, entry.recipients, entry.diffusion, recall
        )
        return Recall(recall, entry.sender, entry.recipients)

    def get(self, diffusion_id: str) -> Diffusion | None:
        """The recorded diffusion ``diffusion_id``, recalled or not, or None (also when only
        its addressing was rebuilt from the journal: see ``sender_of``)."""
        entry = self._entries.get(diffusion_id)
        return None if entry is None else entry.diffusion

    def sender_of(self, diffusion_id: str) -> str | None:
        """Who sent ``diffusion_id``, if recorded here or journaled by another hub."""
        entry = self._entries.get(diffusion_id)
        return None if entry is None else entry.sender

    def sent(self) -> tuple[Diffusion, ...]:
        """Every diffusion recorded in full here, recalled or not, in the order recorded."""
        return tuple(e.diffusion for e in self._entries.values() if e.diffusion is not None)

    def recalled(self) -> tuple[str, ...]:
        """The ids of the recalled diffusions."""
        return tuple(i for i, entry in self._entries.items() if entry.recalled is not None)

    def __len__(self) -> int:
        return len(self._entries)
