"""A ``DeskContext`` for desk tests: the hub's reads without a hub."""

from __future__ import annotations

import os
from datetime import datetime

from schemas.keys import Directory
from schemas.sealing import RandomBytes
from schemas.topics import TopicCatalog
from streams.core.desk_state import DeskState
from streams.core.roster import DutyRoster
from streams.desks.context import DeskContext, OpenForCcc

__all__ = ["HUB", "desk_context"]

HUB = "hub:lyon"


def desk_context(
    now: datetime,
    directory: Directory,
    *,
    desks: DeskState | None = None,
    roster: DutyRoster | None = None,
    clock_scale: float = 1.0,
    calendar: float | None = None,
    random_bytes: RandomBytes = os.urandom,
    open_for_ccc: OpenForCcc = lambda sealed, key: None,
) -> DeskContext:
    """What hub:lyon's desks would read at ``now``."""
    return DeskContext(
        now=now,
        hub=HUB,
        directory=directory,
        roster=roster or DutyRoster(),
        desks=desks or DeskState(),
        topics=TopicCatalog(),
        clock_scale=clock_scale,
        calendar=clock_scale if calendar is None else calendar,
        random_bytes=random_bytes,
        open_for_ccc=open_for_ccc,
    )
