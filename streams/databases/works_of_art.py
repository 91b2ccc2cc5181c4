"""The Stolen Works of Art database (about 47,000 records), simulated.

Theory of operation
-------------------
Each record has an id (``WOA-0000123``), a title drawn from a category's own title forms
(a painting is a "Portrait of a Young Woman", an icon a "Virgin Hodegetria"), an artist or
school, dimensions that fit the category, the country it was stolen in, the date and the
reporting NCB. Searches are by keywords from the title or the artist, as a buyer or a
border officer would type them: every normalised word of title and artist goes into an
inverted index ``woa_word (word, record_id)``, a ``WITHOUT ROWID`` table keyed on both, and
a search intersects the keywords' postings, smallest first.

Worked example: ``search(["madonna", "LIPPI"])`` returns every stolen work whose title or
artist holds both words, accents and case ignored ("Madonna and Child", "Filippo Lippi").
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

from schemas.checks import ArtworkRecord
from streams.databases.store import Recipe, Store, fill_unique, open_store
from streams.databases.text import tokens
from streams.databases.world import CountryDraw, draw_date

__all__ = [
    "CATEGORIES",
    "DEFAULT_SIZE",
    "VERSION",
    "WorksOfArtDatabase",
    "generate",
    "open_works_of_art",
]

DEFAULT_SIZE = 47_000
VERSION = 1
MAX_RESULTS = 64
STOP_WORDS = frozenset({"a", "an", "and", "of", "the", "with", "in", "on", "at", "de", "la", "le"})

_SUBJECTS = (
    "a Young Woman", "an Old Man", "a Nobleman", "the Artist's Wife", "a Child", "a Cardinal",
    "a Merchant", "Saint Jerome", "a Lady in Blue", "the Duke",
)  # fmt: skip
_PLACES = (
    "Venice", "the Seine", "Delft", "the Alps", "Toledo", "Kyoto", "the Nile", "Bruges",
    "a Harbour", "a Village", "Montmartre", "the Danube",
)  # fmt: skip
_THINGS = ("Lemons", "Flowers", "Fish", "a Skull", "Oysters", "Grapes", "a Lute", "Tulips")
_SAINTS: tuple[str, ...] = (
    "Madonna and Child",
    "Saint George",
    "The Annunciation",
    "Saint Nicholas",
)
_SAINTS += ("Virgin Hodegetria", "The Crucifixion", "Christ Pantocrator", "Saint Sebastian")
_OBJECTS = ("Bust", "Figure", "Vase", "Mask", "Head", "Amphora", "Statuette", "Relief")
_MATERIALS = ("Bronze", "Marble", "Terracotta", "Jade", "Ivory", "Gold", "Wood", "Limestone")
_ARTISTS = (
    "Filippo Lippi", "Rembrandt van Rijn", "Pieter Brueghel", "Camille Pissarro",
    "Claude Monet", "Pablo Picasso", "Francisco de Goya", "Joan Miró", "Égon Schiele",
    "Gustav Klimt", "Andrei Rublev", "Katsushika Hokusai", "Frida Kahlo", "Amedeo Modigliani",
    "Caravaggio", "Jan Steen", "Antoine Watteau", "Ilya Repin", "Diego Rivera", "Titian",
)  # fmt: skip
_SCHOOLS = (
    "Flemish school", "Venetian school", "Russian icon school", "Dutch school",
    "French school", "Spanish school", "Edo period workshop", "Byzantine workshop",
    "Unknown artist", "Roman workshop", "Etruscan", "Khmer", "Benin court", "Pre-Columbian",
)  # fmt: skip

# category -> (title forms, dimension range in cm (min, max), share of known artists)
CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[int, int], float]] = {
    "painting": (
        ("Portrait of {subject}", "View of {place}", "Still Life with {thing}", "{saint}"),
        (20, 220),
        0.7,
    ),
    "icon": (("{saint}",), (15, 90), 0.2),
    "drawing": (("Study of {subject}", "Sketch of {place}"), (10, 60), 0.6),
    "sculpture": (("{material} {object}", "{object} of {subject}"), (10, 200), 0.4),
    "archaeological object": (("{material} {object}",), (5, 80), 0.0),
    "manuscript": (("Book of Hours", "Illuminated Gospel", "Psalter"), (15, 45), 0.0),
    "coin": (("{material} Coin",), (1, 4), 0.0),
    "clock": (("Mantel Clock", "Carriage Clock", "Longcase Clock"), (20, 230), 0.1),
}
_CATEGORY_NAMES = tuple(CATEGORIES)
_CATEGORY_WEIGHTS = (40, 10, 10, 15, 12, 5, 5, 3)

Row = tuple[str, ...]  # record_id, title, artist, category, dimensions, country, stolen, ncb

_SCHEMA = (
    "CREATE TABLE woa (record_id TEXT PRIMARY KEY, title TEXT NOT NULL, artist TEXT NOT NULL,"
    " category TEXT NOT NULL, dimensions TEXT NOT NULL, country TEXT NOT NULL,"
    " stolen_on TEXT NOT NULL, reporting_ncb TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE woa_word (word TEXT NOT NULL, record_id TEXT NOT NULL,"
    " PRIMARY KEY (word, record_id)) WITHOUT ROWID",
)
_INSERT = "INSERT OR IGNORE INTO woa VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_WORD = "INSERT OR IGNORE INTO woa_word VALUES (?, ?)"
_BY_ID = (
    "SELECT record_id, title, artist, category, dimensions, country, stolen_on, reporting_ncb"
    " FROM woa WHERE record_id = ?"
)
_POSTINGS = "SELECT record_id FROM woa_word WHERE word = ?"


def generate(seed: int) -> Iterator[Row]:
    """Endless Works of Art rows from ``seed``; ids run from ``WOA-0000001``."""
    rng = random.Random(seed)
    country_of = CountryDraw()
    serial = 0
    while True:
        serial += 1
        category = rng.choices(_CATEGORY_NAMES, _CATEGORY_WEIGHTS)[0]
        forms, (low, high), known = CATEGORIES[category]
        title = rng.choice(forms).format(
            subject=rng.choice(_SUBJECTS),
            place=rng.choice(_PLACES),
            thing=rng.choice(_THINGS),
            saint=rng.choice(_SAINTS),
            material=rng.choice(_MATERIALS),
            object=rng.choice(_OBJECTS),
        )
        artist = rng.choice(_ARTISTS) if rng.random() < known else rng.choice(_SCHOOLS)
        height = rng.randint(low, high)
        width = max(1, round(height * rng.uniform(0.5, 1.4)))
        country = country_of(rng)
        yield (
            f"WOA-{serial:07d}",
            title,
            artist,
            category,
            f"{height} x {width} cm",
            country,
            draw_date(rng, 1990, 2025),
            country,
        )


def index_words(row: Row) -> Iterable[tuple[str, str]]:
    """The (word, record id) postings of one row: title and artist words, stop words out."""
    words = set(tokens(row[1])) | set(tokens(row[2]))
    return ((word, row[0]) for word in sorted(words - STOP_WORDS))


class WorksOfArtDatabase:
    """Read-only keyword search over stolen works of art."""

    __slots__ = ("_connection", "_samples", "store")

    def __init__(self, store: Store) -> None:
        self.store = store
        self._connection = store.connection
        self._samples = store.sample_keys()

    def get(self, record_id: str) -> ArtworkRecord | None:
        row = self._connection.execute(_BY_ID, (record_id,)).fetchone()
        return None if row is None else _record(row)

    def search(self, keywords: Iterable[str]) -> tuple[ArtworkRecord, ...]:
        """Records whose title or artist holds every keyword (at most ``MAX_RESULTS``)."""
        words = {w for keyword in keywords for w in tokens(keyword)} - STOP_WORDS
        if not words:
            return ()
        postings = sorted(
            ({r for (r,) in self._connection.execute(_POSTINGS, (w,)).fetchall()} for w in words),
            key=len,
        )
        found = set.intersection(*postings)
        records = (self.get(record_id) for record_id in sorted(found)[:MAX_RESULTS])
        return tuple(r for r in records if r is not None)

    def sample(self, rng: random.Random) -> ArtworkRecord:
        record = self.get(rng.choice(self._samples))
        if record is None:  # pragma: no cover - samples are keys of stored rows
            raise LookupError("a sampled Works of Art id is missing; delete the file to rebuild")
        return record

    def __len__(self) -> int:
        return self.store.manifest.rows


def _record(row: tuple[str, ...]) -> ArtworkRecord:
    record_id, title, artist, category, dimensions, country, stolen_on, reporter = row
    return ArtworkRecord(
        record_id=record_id,
        title=title,
        artist=artist,
        category=category,
        dimensions=dimensions,
        country=country,
        stolen_on=stolen_on,
        reporting_ncb=reporter,
    )


def _recipe(seed: int, size: int) -> Recipe:
    def fill(connection: sqlite3.Connection) -> int:
        rows: list[Row] = []

        def kept(source: Iterator[Row]) -> Iterator[Row]:
            for row in source:
                rows.append(row)
                yield row

        stored = fill_unique(connection, _INSERT, kept(generate(seed)), size, lambda r: r[0])
        connection.executemany(_INSERT_WORD, (p for row in rows for p in index_words(row)))
        return stored

    return Recipe("woa", VERSION, seed, size, _SCHEMA, fill)


def open_works_of_art(
    directory: Path, *, seed: int, size: int = DEFAULT_SIZE
) -> WorksOfArtDatabase:
    """Works of Art under ``directory``, built on first use (see ``store.open_store``)."""
    return WorksOfArtDatabase(open_store(directory, _recipe(seed, size)))
