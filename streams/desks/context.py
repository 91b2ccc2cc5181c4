"""What a desk may read, and what a desk is: the seam between the desks and the hub.

A desk (notices, checks, teams, vehicles) is built from its own state (a registry, the
databases) and, for every message or tick, gets a ``DeskContext``: the time, the hub's
name, key directory and duty roster, the desks' state folded from the journal, the clock
scales, random bytes, and a way to open what the hub sealed for ``ccc`` earlier. It answers
with effects (``streams.desks.effects``) that the hub's shell (``streams.desks.shell``)
seals and writes. So no desk imports the hub, and a desk's test compares returned values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from schemas.bodies import Body
from schemas.header import MessageType
from schemas.keys import Directory
from schemas.sealing import OpenedMessage, RandomBytes
from schemas.topics import TopicCatalog
from streams.core.desk_state import DeskState
from streams.core.roster import DutyRoster
from streams.desks.effects import Effect

__all__ = ["DeskContext", "EffectDesk", "OpenForCcc"]

OpenForCcc = Callable[[str | None, str], Body | None]
"""The body a ``Journal(seal_for_ccc=...)`` sealed under a record key, or ``None``."""


@dataclass(frozen=True, slots=True)
class DeskContext:
    """What a desk may read while it handles one message or one tick."""

    now: datetime
    hub: str
    directory: Directory
    roster: DutyRoster
    desks: DeskState
    topics: TopicCatalog
    clock_scale: float
    calendar: float
    random_bytes: RandomBytes
    open_for_ccc: OpenForCcc


class EffectDesk(Protocol):
    """One duty of the CCC: messages of the types it ``handles``, and time."""

    @property
    def handles(self) -> frozenset[MessageType]: ...

    def handle(self, ctx: DeskContext, opened: OpenedMessage) -> list[Effect]: ...

    def tick(self, ctx: DeskContext) -> list[Effect]: ...
