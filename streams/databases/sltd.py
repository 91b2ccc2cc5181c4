"""SLTD, the Stolen and Lost Travel Documents database, simulated.

Theory of operation
-------------------
``generate(seed)`` draws an endless, deterministic stream of documents from its own
``random.Random(seed)``: an issuing country (large reporters weighted up), a document type
(mostly passports and identity cards), a number in that country's format for that type
(``FORMATS``; a generic one otherwise), a status, the date it was reported (SLTD opened in
2002) and the reporting NCB (the issuing country's, or now and then the NCB of the country
where it was stolen). ``open_sltd`` stores the first ``size`` distinct (country, number)
pairs through ``store.open_store`` and looks them up by that primary key.

Worked example::

    sltd = open_sltd(Path("var/databases"), seed=247, size=10_000)
    record = sltd.sample(random.Random(1))          # a real entry
    sltd.lookup(record.number, record.issuing_country) == record   # a hit
    sltd.lookup("NOSUCH", "FRA") is None                           # no hit
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from schemas.checks import DocumentStatus, DocumentType, TravelDocumentRecord
from streams.databases.store import Recipe, Store, fill_unique, open_store
from streams.databases.text import draw, normalise_identifier
from streams.databases.world import CountryDraw, draw_date

__all__ = ["DEFAULT_SIZE", "FORMATS", "VERSION", "SltdDatabase", "generate", "open_sltd"]

DEFAULT_SIZE = 1_000_000
VERSION = 1

# (country, type) -> number pattern (streams.databases.text); passports unless stated.
FORMATS: dict[tuple[str, DocumentType], str] = {
    ("USA", DocumentType.PASSPORT): "A99999999",
    ("GBR", DocumentType.PASSPORT): "999999999",
    ("FRA", DocumentType.PASSPORT): "99AA99999",
    ("FRA", DocumentType.ID_CARD): "XXXXXXXXX",
    ("DEU", DocumentType.PASSPORT): "CXXXXXXXX",
    ("DEU", DocumentType.ID_CARD): "LXXXXXXXX",
    ("ITA", DocumentType.PASSPORT): "AA9999999",
    ("ITA", DocumentType.ID_CARD): "CA99999AA",
    ("ESP", DocumentType.PASSPORT): "AAA999999",
    ("ESP", DocumentType.ID_CARD): "AAA999999",
    ("NLD", DocumentType.PASSPORT): "AAXXXXXX9",
    ("BEL", DocumentType.PASSPORT): "AA999999",
    ("BEL", DocumentType.ID_CARD): "999999999999",
    ("CAN", DocumentType.PASSPORT): "AA999999",
    ("AUS", DocumentType.PASSPORT): "A9999999",
    ("IND", DocumentType.PASSPORT): "A9999999",
    ("CHN", DocumentType.PASSPORT): "E99999999",
    ("JPN", DocumentType.PASSPORT): "AA9999999",
    ("BRA", DocumentType.PASSPORT): "AA999999",
    ("RUS", DocumentType.PASSPORT): "999999999",
    ("TUR", DocumentType.PASSPORT): "U99999999",
    ("MEX", DocumentType.PASSPORT): "A99999999",
    ("NGA", DocumentType.PASSPORT): "A99999999",
    ("ZAF", DocumentType.PASSPORT): "A99999999",
    ("POL", DocumentType.PASSPORT): "AA9999999",
    ("POL", DocumentType.ID_CARD): "AAA999999",
}
_GENERIC: dict[DocumentType, str] = {
    DocumentType.PASSPORT: "A9999999",
    DocumentType.ID_CARD: "AA9999999",
    DocumentType.VISA: "V99999999",
    DocumentType.RESIDENCE_PERMIT: "RA9999999",
    DocumentType.REFUGEE_TRAVEL_DOCUMENT: "T9999999",
    DocumentType.SEAFARER_ID: "S99999999",
}
_TYPES = tuple(DocumentType)
_TYPE_WEIGHTS = (60, 30, 5, 3, 1, 1)  # passport, ID card, visa, permit, refugee, seafarer
_STATUSES = tuple(DocumentStatus)
_STATUS_WEIGHTS = (45, 50, 5)  # stolen, lost, revoked
_REPORTED_ABROAD = 0.08

Row = tuple[str, ...]  # issuing_country, number, document_type, status, reported_on, reporting_ncb

_SCHEMA = (
    "CREATE TABLE sltd (issuing_country TEXT NOT NULL, number TEXT NOT NULL,"
    " document_type TEXT NOT NULL, status TEXT NOT NULL, reported_on TEXT NOT NULL,"
    " reporting_ncb TEXT NOT NULL, PRIMARY KEY (issuing_country, number)) WITHOUT ROWID",
)
_INSERT = "INSERT OR IGNORE INTO sltd VALUES (?, ?, ?, ?, ?, ?)"
_SELECT = (
    "SELECT issuing_country, number, document_type, status, reported_on, reporting_ncb"
    " FROM sltd WHERE issuing_country = ? AND number = ?"
)


def generate(seed: int) -> Iterator[Row]:
    """Endless SLTD rows from ``seed``; the same seed gives the same rows."""
    rng = random.Random(seed)
    country_of = CountryDraw()
    patterns = {
        (code, kind): FORMATS.get((code, kind), _GENERIC[kind])
        for code in country_of.codes
        for kind in _TYPES
    }
    while True:
        country = country_of(rng)
        kind = rng.choices(_TYPES, _TYPE_WEIGHTS)[0]
        status = rng.choices(_STATUSES, _STATUS_WEIGHTS)[0]
        reporter = country_of.uniform(rng) if rng.random() < _REPORTED_ABROAD else country
        yield (
            country,
            draw(rng, patterns[(country, kind)]),
            kind.value,
            status.value,
            draw_date(rng, 2002, 2025),
            reporter,
        )


class SltdDatabase:
    """Read-only SLTD lookups by (number, issuing country)."""

    __slots__ = ("_connection", "_samples", "store")

    def __init__(self, store: Store) -> None:
        self.store = store
        self._connection = store.connection
        self._samples = [tuple(key.split(":", 1)) for key in store.sample_keys()]

    def lookup(self, number: str, issuing_country: str) -> TravelDocumentRecord | None:
        """The entry for this document, or None; spaces and dashes in ``number`` ignored."""
        row = self._connection.execute(
            _SELECT, (issuing_country, normalise_identifier(number))
        ).fetchone()
        return None if row is None else _record(row)

    def sample(self, rng: random.Random) -> TravelDocumentRecord:
        """A real entry, picked with ``rng`` among the sampled ones."""
        country, number = rng.choice(self._samples)
        record = self.lookup(number, country)
        if record is None:  # pragma: no cover - samples are keys of stored rows
            raise LookupError(f"sampled SLTD key {country}:{number} is missing; rebuild")
        return record

    def __len__(self) -> int:
        return self.store.manifest.rows


def _record(row: tuple[str, ...]) -> TravelDocumentRecord:
    country, number, kind, status, reported_on, reporter = row
    return TravelDocumentRecord(
        number=number,
        issuing_country=country,
        document_type=DocumentType(kind),
        status=DocumentStatus(status),
        reported_on=reported_on,
        reporting_ncb=reporter,
    )


def _recipe(seed: int, size: int) -> Recipe:
    def fill(connection: sqlite3.Connection) -> int:
        return fill_unique(connection, _INSERT, generate(seed), size, lambda r: f"{r[0]}:{r[1]}")

    return Recipe("sltd", VERSION, seed, size, _SCHEMA, fill)


def open_sltd(directory: Path, *, seed: int, size: int = DEFAULT_SIZE) -> SltdDatabase:
    """SLTD under ``directory``, built on first use (see ``store.open_store``)."""
    return SltdDatabase(open_store(directory, _recipe(seed, size)))
