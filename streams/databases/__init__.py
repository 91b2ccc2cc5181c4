"""The simulated INTERPOL databases the CCC checks against (SLTD, SMV, Works of Art,
nominal), opened together.

SLTD, SMV and Works of Art are generated from a seed and stored once under
``<data dir>/databases`` (``store``); the nominal index follows the Red Notices in force.
``open_databases(Settings().data_dir, seed=247)`` opens the full-size set, building what is
missing (about 30 s once on one core; a few milliseconds afterwards).
``open_configured(settings)`` opens the set a hub uses: sizes from ``I247_DB_SCALE``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from brokers.settings import Settings
from streams.databases import sltd, smv, works_of_art
from streams.databases.nominal import NominalIndex
from streams.databases.sltd import SltdDatabase
from streams.databases.smv import SmvDatabase
from streams.databases.works_of_art import WorksOfArtDatabase

__all__ = ["DEFAULT_SEED", "Databases", "open_configured", "open_databases"]

DEFAULT_SEED = 247


@dataclass(frozen=True, slots=True)
class Databases:
    sltd: SltdDatabase
    smv: SmvDatabase
    works_of_art: WorksOfArtDatabase
    nominal: NominalIndex = field(default_factory=NominalIndex)

    def close(self) -> None:
        for store in (self.sltd.store, self.smv.store, self.works_of_art.store):
            store.close()


def open_databases(
    data_dir: Path,
    *,
    seed: int = DEFAULT_SEED,
    sltd_size: int = sltd.DEFAULT_SIZE,
    smv_size: int = smv.DEFAULT_SIZE,
    works_of_art_size: int = works_of_art.DEFAULT_SIZE,
    nominal: NominalIndex | None = None,
) -> Databases:
    """The four databases; the generated ones live in ``data_dir / "databases"``."""
    directory = data_dir / "databases"
    return Databases(
        sltd=sltd.open_sltd(directory, seed=seed, size=sltd_size),
        smv=smv.open_smv(directory, seed=seed + 1, size=smv_size),
        works_of_art=works_of_art.open_works_of_art(
            directory, seed=seed + 2, size=works_of_art_size
        ),
        nominal=NominalIndex() if nominal is None else nominal,
    )


def open_configured(settings: Settings, nominal: NominalIndex | None = None) -> Databases:
    """The databases at the sizes ``settings.db_scale`` asks for, under its data dir."""
    sizes = settings.database_sizes
    return open_databases(
        Path(settings.data_dir),
        sltd_size=sizes["sltd"],
        smv_size=sizes["smv"],
        works_of_art_size=sizes["works_of_art"],
        nominal=nominal,
    )
