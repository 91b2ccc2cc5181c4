"""SMV, the Stolen Motor Vehicles database, simulated.

Theory of operation
-------------------
Each vehicle has a 17-character VIN built as ISO 3779 lays it out: the manufacturer's
world identifier (``WMI``, three characters, real ones per make), five descriptor
characters, the **check digit** in position 9, the model-year code, a plant code and a
six-digit serial. The check digit follows the North American scheme (49 CFR 565), which
makes every VIN self-checking: each character is transliterated to a number (digits as
themselves; A-H 1-8, J-N 1-5, P 7, R 9, S-Z 2-9), multiplied by its position's weight
(8 7 6 5 4 3 2 10 0 9 8 7 6 5 4 3 2), and the sum modulo 11 is the digit (10 is ``X``).

Vehicles are stored by VIN (the primary key) and indexed by (registration country,
normalised plate), so both lookups are one B-tree descent.

Worked example: ``check_digit("1M8GDM9A_KP042788")`` (position 9 ignored) is ``"X"``,
so ``1M8GDM9AXKP042788`` is valid and ``is_valid_vin`` says so; changing any one
character makes it invalid.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from schemas.checks import VehicleRecord
from streams.databases.store import Recipe, Store, fill_unique, open_store
from streams.databases.text import draw, normalise_identifier
from streams.databases.world import CountryDraw, draw_date

__all__ = [
    "DEFAULT_SIZE",
    "MAKES",
    "PLATES",
    "VERSION",
    "SmvDatabase",
    "check_digit",
    "generate",
    "is_valid_vin",
    "open_smv",
]

DEFAULT_SIZE = 200_000
VERSION = 1

_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY123456789"  # 2010..2039 (A=2010, 2040 wraps)

# make -> (world manufacturer identifiers, models)
MAKES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Toyota": (("JT2", "JTD", "SB1", "4T1"), ("Corolla", "RAV4", "Land Cruiser", "Hilux", "Yaris")),
    "Volkswagen": (("WVW", "WVG", "3VW"), ("Golf", "Passat", "Tiguan", "Polo", "Touareg")),
    "BMW": (("WBA", "WBS", "WBX"), ("3 Series", "5 Series", "X5", "X3", "1 Series")),
    "Mercedes-Benz": (("WDB", "WDD", "WDC"), ("C-Class", "E-Class", "S-Class", "GLE", "Sprinter")),
    "Audi": (("WAU", "WA1"), ("A4", "A6", "Q5", "Q7", "A3")),
    "Renault": (("VF1",), ("Clio", "Megane", "Captur", "Kangoo")),
    "Peugeot": (("VF3",), ("208", "308", "3008", "Partner")),
    "Fiat": (("ZFA",), ("Panda", "500", "Tipo", "Ducato")),
    "Ford": (("1FA", "1FT", "WF0"), ("Focus", "F-150", "Transit", "Fiesta", "Ranger")),
    "Honda": (("JHM", "1HG", "SHH"), ("Civic", "Accord", "CR-V", "Jazz")),
    "Nissan": (("JN1", "SJN", "1N4"), ("Qashqai", "X-Trail", "Altima", "Navara")),
    "Hyundai": (("KMH", "TMA"), ("Tucson", "i30", "Santa Fe", "Elantra")),
    "Kia": (("KNA", "U5Y"), ("Sportage", "Ceed", "Sorento", "Picanto")),
    "Land Rover": (("SAL",), ("Range Rover", "Discovery", "Defender")),
    "Skoda": (("TMB",), ("Octavia", "Fabia", "Superb", "Kodiaq")),
    "Volvo": (("YV1",), ("XC60", "XC90", "V60", "S60")),
    "Lexus": (("JTH",), ("RX", "LX", "NX")),
    "Porsche": (("WP0", "WP1"), ("911", "Cayenne", "Macan")),
}
_MAKE_NAMES = tuple(MAKES)
_COLOURS = ("black", "white", "silver", "grey", "blue", "red", "green", "beige", "brown")
_COLOUR_WEIGHTS = (20, 22, 16, 15, 10, 8, 3, 3, 3)

# registration country -> plate pattern (streams.databases.text)
PLATES: dict[str, str] = {
    "FRA": "AA-999-AA",
    "DEU": "AA-AA 9999",
    "GBR": "AA99 AAA",
    "ITA": "AA 999AA",
    "ESP": "9999 AAA",
    "NLD": "99-AAA-9",
    "BEL": "1-AAA-999",
    "POL": "AA 99999",
    "USA": "9AAA999",
    "CAN": "AAAA 999",
    "BRA": "AAA9A99",
    "RUS": "A999AA 99",
    "UKR": "AA 9999 AA",
    "TUR": "99 A 9999",
    "ZAF": "AA 99 AA GP",
    "AUS": "9AA 9AA",
    "JPN": "99-99",
}
_GENERIC_PLATE = "AAA 9999"

Row = tuple[str, ...]  # vin, plate, plate_key, country, make, model, colour, reported_on, ncb

_SCHEMA = (
    "CREATE TABLE smv (vin TEXT PRIMARY KEY, plate TEXT NOT NULL, plate_key TEXT NOT NULL,"
    " registration_country TEXT NOT NULL, make TEXT NOT NULL, model TEXT NOT NULL,"
    " colour TEXT NOT NULL, reported_on TEXT NOT NULL, reporting_ncb TEXT NOT NULL)"
    " WITHOUT ROWID",
    "CREATE TABLE smv_plate (registration_country TEXT NOT NULL, plate_key TEXT NOT NULL,"
    " vin TEXT NOT NULL, PRIMARY KEY (registration_country, plate_key, vin)) WITHOUT ROWID",
)
_INSERT = "INSERT OR IGNORE INTO smv VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INDEX_PLATES = (
    "INSERT INTO smv_plate SELECT registration_country, plate_key, vin FROM smv"
    " ORDER BY registration_country, plate_key, vin"
)
_COLUMNS = "vin, plate, registration_country, make, model, colour, reported_on, reporting_ncb"
_BY_VIN = f"SELECT {_COLUMNS} FROM smv WHERE vin = ?"  # noqa: S608 - constant column list
_BY_PLATE = (
    f"SELECT {_COLUMNS} FROM smv WHERE vin IN (SELECT vin FROM smv_plate"  # noqa: S608
    " WHERE registration_country = ? AND plate_key = ?) ORDER BY vin"
)


def check_digit(vin: str) -> str:
    """The check digit position 9 must hold (whatever it holds now), ``0``-``9`` or ``X``.

    Raises ``ValueError`` for a VIN that is not 17 characters of the VIN alphabet.
    """
    if len(vin) != 17:
        raise ValueError(f"a VIN has 17 characters, {vin!r} has {len(vin)}")
    try:
        total = sum(
            _VALUES[c] * w for i, (c, w) in enumerate(zip(vin, _WEIGHTS, strict=True)) if i != 8
        )
    except KeyError as error:
        raise ValueError(
            f"{vin!r} holds {error.args[0]!r}: VINs use 0-9 and A-Z but I, O, Q"
        ) from None
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def is_valid_vin(vin: str) -> bool:
    """Whether ``vin`` is 17 VIN characters with the right check digit."""
    try:
        return vin[8] == check_digit(vin)
    except (ValueError, IndexError):
        return False


def _vin(rng: random.Random, wmi: str, year: int) -> str:
    body = f"{wmi}{draw(rng, '#####')}0{_YEAR_CODES[(year - 2010) % 30]}{draw(rng, '#999999')}"
    return f"{body[:8]}{check_digit(body)}{body[9:]}"


def generate(seed: int) -> Iterator[Row]:
    """Endless SMV rows from ``seed``; the same seed gives the same rows."""
    rng = random.Random(seed)
    country_of = CountryDraw()
    while True:
        make = rng.choice(_MAKE_NAMES)
        wmis, models = MAKES[make]
        reported_on = draw_date(rng, 2010, 2025)
        year = rng.randint(2010, int(reported_on[:4]))
        country = country_of(rng)
        plate = draw(rng, PLATES.get(country, _GENERIC_PLATE))
        yield (
            _vin(rng, rng.choice(wmis), year),
            plate,
            normalise_identifier(plate),
            country,
            make,
            rng.choice(models),
            rng.choices(_COLOURS, _COLOUR_WEIGHTS)[0],
            reported_on,
            country,
        )


class SmvDatabase:
    """Read-only SMV lookups by VIN, or by plate and registration country."""

    __slots__ = ("_connection", "_samples", "store")

    def __init__(self, store: Store) -> None:
        self.store = store
        self._connection = store.connection
        self._samples = store.sample_keys()

    def lookup_vin(self, vin: str) -> VehicleRecord | None:
        row = self._connection.execute(_BY_VIN, (vin.strip().upper(),)).fetchone()
        return None if row is None else _record(row)

    def lookup_plate(self, plate: str, country: str) -> tuple[VehicleRecord, ...]:
        """Every stolen vehicle registered under this plate in ``country`` (usually 0 or 1)."""
        rows = self._connection.execute(_BY_PLATE, (country, normalise_identifier(plate)))
        return tuple(_record(row) for row in rows.fetchall())

    def sample(self, rng: random.Random) -> VehicleRecord:
        record = self.lookup_vin(rng.choice(self._samples))
        if record is None:  # pragma: no cover - samples are keys of stored rows
            raise LookupError("a sampled SMV VIN is missing; delete the file to rebuild it")
        return record

    def __len__(self) -> int:
        return self.store.manifest.rows


def _record(row: tuple[str, ...]) -> VehicleRecord:
    vin, plate, country, make, model, colour, reported_on, reporter = row
    return VehicleRecord(
        vin=vin,
        plate=plate,
        registration_country=country,
        make=make,
        model=model,
        colour=colour,
        reported_on=reported_on,
        reporting_ncb=reporter,
    )


def _recipe(seed: int, size: int) -> Recipe:
    def fill(connection: sqlite3.Connection) -> int:
        stored = fill_unique(connection, _INSERT, generate(seed), size, lambda row: row[0])
        connection.execute(_INDEX_PLATES)
        return stored

    return Recipe("smv", VERSION, seed, size, _SCHEMA, fill)


def open_smv(directory: Path, *, seed: int, size: int = DEFAULT_SIZE) -> SmvDatabase:
    """SMV under ``directory``, built on first use (see ``store.open_store``)."""
    return SmvDatabase(open_store(directory, _recipe(seed, size)))
