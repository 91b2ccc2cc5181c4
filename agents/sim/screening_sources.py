"""Where the simulated travellers come from: the seeded world the hubs check against.

The simulator needs passengers that really hit (a document really in SLTD, a person really
wanted) and passengers that really do not. So it opens, read-only, the same seeded SLTD
the hubs built (``streams.databases``, at ``I247_DB_SCALE``), and keeps its own list of
wanted persons from the Red Notices its bureaus received: it learns of a Red Notice as a
bureau does, by opening the broadcast, never from the CCC's memory. This is the one place
an agent opens a stream's data, as a simulation device; it writes nothing.

Worked example: ``sources = ScreeningWorld.open(settings)``; a bureau opens a Red Notice
on "Jean DUPONT": ``sources.learn(notice, now)``; ``arriving_travellers(rng, 20, 0.02,
sources)`` may now put Jean DUPONT on a flight, and never by chance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from brokers.settings import Settings
from schemas.notices import Notice
from streams.databases import Databases, open_configured
from streams.databases.nominal import NominalIndex
from streams.databases.sltd import SltdDatabase
from streams.desks.nominal_feed import wanted_person

__all__ = ["ScreeningWorld"]


@dataclass
class ScreeningWorld:
    """SLTD as the hubs hold it, and the wanted persons the bureaus were told of."""

    databases: Databases

    @classmethod
    def open(cls, settings: Settings) -> ScreeningWorld:
        """Open the databases at ``settings.db_scale`` (built once; milliseconds after)."""
        return cls(open_configured(settings, NominalIndex()))

    @property
    def sltd(self) -> SltdDatabase:
        return self.databases.sltd

    @property
    def nominal(self) -> NominalIndex:
        return self.databases.nominal

    def learn(self, notice: Notice, now: datetime) -> None:
        """Follow one notice state a bureau opened: a Red Notice in force names a person."""
        person = wanted_person(notice, now)
        if person is None:
            self.databases.nominal.remove(notice.notice_id)
        else:
            self.databases.nominal.upsert(notice.notice_id, person, notice.requester)

    def close(self) -> None:
        self.databases.close()
