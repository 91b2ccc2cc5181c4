"""What a desk asks the hub to do, as data: the desks decide, the shell seals and writes.

Theory of operation
-------------------
A desk (``streams.desks.shell.EffectDesk``) takes a ``DeskContext`` (what it may read) and
returns a list of effects; it never seals, signs or builds a record. The hub's one sealing
shell (``streams.desks.shell.DeskShell``) carries them out in order:

* ``Send``: one message from the hub to ``to`` (NCBs or teams), one envelope sealed per
  recipient under one message id, each to that recipient's inbox (``seal_from_hub``).
* ``Journal``: a typed event (``schemas.journal``) on ``i247.control`` under ``key``;
  ``seal_for_ccc`` names a body the shell seals for ``ccc`` into the event's ``sealed``
  field (a body only hubs may read later); ``fold`` folds the event into the desks' state
  at once (the journal's tail folds it again, harmlessly).
* ``PublishNotice``: a notice's latest state on the compacted notices topic, key the
  notice id, sealed for the topic and that key, addressed to ``recipients`` and ``ccc``.
* ``AdmitTeam``: a team the desk created: its public keys join the hub's directory before
  anything is sealed, and its inbox topic waits for the runtime to create it.

Worked example: the vehicle desk answers a report from ARG with
``[Send(to=("team:imest-bra-rio-20260801",), body=StolenVehicleUpdate(...),
precedence=PRIORITY, correlation_id=m1), Journal(VehicleCirculated(...), key=m1)]``; a test
compares that list, and the shell's own tests check the sealing once.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.bodies import Body
from schemas.header import HeaderFlag, Precedence
from schemas.journal import JournalEventModel
from schemas.keys import PublicIdentity
from schemas.notices import Notice

__all__ = ["AdmitTeam", "Effect", "Journal", "PublishNotice", "Send"]


@dataclass(frozen=True, slots=True)
class Send:
    """``body`` from the hub to every participant of ``to``: one sealed copy per inbox."""

    to: tuple[str, ...]
    body: Body
    precedence: Precedence = Precedence.ROUTINE
    correlation_id: str | None = None
    flags: tuple[HeaderFlag, ...] = ()


@dataclass(frozen=True, slots=True)
class Journal:
    """A typed journal event on ``i247.control`` under ``key``."""

    event: JournalEventModel
    key: str
    seal_for_ccc: Body | None = None  # sealed by the shell into the event's ``sealed``
    fold: bool = False  # a desk event (``schemas.journal.DeskEvent``) to fold at once


@dataclass(frozen=True, slots=True)
class AdmitTeam:
    """A new team: its keys join the hub's directory, its inbox topic is to be created."""

    identity: PublicIdentity


@dataclass(frozen=True, slots=True)
class PublishNotice:
    """``notice`` as the latest state on the compacted notices topic, for ``recipients``."""

    notice: Notice
    recipients: tuple[str, ...]


Effect = Send | Journal | PublishNotice | AdmitTeam
"""Everything a desk may ask of the hub."""
