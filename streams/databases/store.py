"""Build a simulated database into a SQLite file once; open it read-only ever after.

Theory of operation
-------------------
A database is fully determined by its ``Recipe``: name, generator version, seed and size.
Its file, ``<dir>/<name>-v<version>-seed<seed>-n<size>.sqlite``, carries a ``manifest``
table repeating those four values and the row count. ``open_store``:

1. opens the file read-only if it exists and its manifest matches the recipe (a second
   start costs a file open and one query: milliseconds);
2. otherwise builds it: into a temporary file beside it, journal and fsync off, in one
   transaction of ``executemany`` calls (the recipe's ``fill``), manifest last; then renames
   it into place, so a crash mid-build leaves no file that looks finished.

Tables are ``WITHOUT ROWID`` with their primary key on the lookup key, so a lookup is one
B-tree descent, O(log n). Each recipe also fills ``sample`` (``serial`` -> ``key``): a few
thousand of its records' keys, from which traffic generators pick real records to hit.

Worked example: ``open_store(Path("var/databases"), Recipe("sltd", 1, seed=247,
size=1_000_000, schema=..., fill=...))`` builds ``sltd-v1-seed247-n1000000.sqlite`` in
about 15 s the first time (``store.built`` is True, ``store.build_seconds`` says how long)
and opens it in about a millisecond afterwards (``store.built`` is False).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import structlog

__all__ = [
    "SAMPLE_SIZE",
    "Manifest",
    "Recipe",
    "Store",
    "StoreBuildError",
    "fill_unique",
    "open_store",
    "sample_stride",
]

SAMPLE_SIZE = 4096
_CHUNK = 50_000
_FORMAT = 1  # the file layout (manifest and sample tables) itself

log = structlog.get_logger(__name__)


class StoreBuildError(RuntimeError):
    """A build produced fewer rows than its recipe asks for: a generator bug."""


@dataclass(frozen=True, slots=True)
class Manifest:
    name: str
    version: int
    seed: int
    size: int
    rows: int


Fill = Callable[[sqlite3.Connection], int]
"""Fills the tables inside the build's transaction; returns the main table's row count."""


@dataclass(frozen=True, slots=True)
class Recipe:
    """What determines a database file; a change of any field means a new file."""

    name: str
    version: int
    seed: int
    size: int
    schema: Sequence[str]
    fill: Fill

    @property
    def file_name(self) -> str:
        return f"{self.name}-v{self.version}-seed{self.seed}-n{self.size}.sqlite"


@dataclass(frozen=True, slots=True)
class Store:
    """An open, read-only database file and how it came to be."""

    connection: sqlite3.Connection
    path: Path
    manifest: Manifest
    built: bool
    build_seconds: float

    def sample_keys(self) -> list[str]:
        """The sampled records' keys, by serial (deterministic for a recipe)."""
        rows = self.connection.execute("SELECT key FROM sample ORDER BY serial").fetchall()
        return [str(key) for (key,) in rows]

    def close(self) -> None:
        self.connection.close()


def fill_unique(
    connection: sqlite3.Connection,
    insert_or_ignore: str,
    rows: Iterator[tuple[str, ...]],
    size: int,
    key_of: Callable[[tuple[str, ...]], str],
) -> int:
    """Insert rows from ``rows`` until ``size`` distinct keys are stored; returns ``size``.

    A drawn key that repeats an earlier one is ignored by the table's primary key and the
    next row is drawn, so the result depends only on the seed. Every ``sample_stride``-th
    row drawn has its key put in ``sample``.
    """
    stride = sample_stride(size)
    stored = 0
    serial = 0
    samples: list[tuple[int, str]] = []
    while stored < size:
        chunk = list(islice(rows, min(_CHUNK, size - stored)))
        if not chunk:
            raise StoreBuildError(f"the row generator ran dry after {stored} of {size} rows")
        for row in chunk:
            if serial % stride == 0 and len(samples) < SAMPLE_SIZE:
                samples.append((serial, key_of(row)))
            serial += 1
        before = connection.total_changes
        connection.executemany(insert_or_ignore, chunk)
        stored += connection.total_changes - before
    connection.executemany("INSERT INTO sample VALUES (?, ?)", samples)
    return stored


def open_store(directory: Path, recipe: Recipe) -> Store:
    """The recipe's database, built first if no matching file exists under ``directory``."""
    path = directory / recipe.file_name
    expected = (recipe.name, recipe.version, recipe.seed, recipe.size)
    if path.exists():
        connection = _open_read_only(path)
        manifest = _read_manifest(connection)
        if (
            manifest is not None
            and (
                manifest.name,
                manifest.version,
                manifest.seed,
                manifest.size,
            )
            == expected
        ):
            return Store(connection, path, manifest, built=False, build_seconds=0.0)
        connection.close()
        log.warning("database.manifest_mismatch", path=str(path), manifest=manifest)
    started = time.perf_counter()
    _build(path, recipe)
    seconds = time.perf_counter() - started
    connection = _open_read_only(path)
    manifest = _read_manifest(connection)
    if manifest is None:  # pragma: no cover - _build wrote it
        raise StoreBuildError(f"{path} has no manifest after its build; delete it and retry")
    log.info("database.built", name=recipe.name, rows=manifest.rows, seconds=round(seconds, 2))
    return Store(connection, path, manifest, built=True, build_seconds=seconds)


def _open_read_only(path: Path) -> sqlite3.Connection:
    # immutable=1: the file never changes once built, so SQLite skips locking entirely
    uri = f"file:{path.resolve()}?mode=ro&immutable=1"
    return sqlite3.connect(uri, uri=True, check_same_thread=False)


def _read_manifest(connection: sqlite3.Connection) -> Manifest | None:
    try:
        rows = dict(connection.execute("SELECT key, value FROM manifest").fetchall())
        if int(rows["format"]) != _FORMAT:
            return None
        return Manifest(
            name=str(rows["name"]),
            version=int(rows["version"]),
            seed=int(rows["seed"]),
            size=int(rows["size"]),
            rows=int(rows["rows"]),
        )
    except (sqlite3.DatabaseError, KeyError, ValueError):
        return None


def _build(path: Path, recipe: Recipe) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    building = path.with_name(f"{path.name}.building-{os.getpid()}")
    building.unlink(missing_ok=True)
    connection = sqlite3.connect(building, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = OFF")
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute("PRAGMA cache_size = -262144")  # 256 MiB: the B-trees stay in memory
        connection.execute("BEGIN")
        connection.execute(
            "CREATE TABLE manifest (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID"
        )
        connection.execute("CREATE TABLE sample (serial INTEGER PRIMARY KEY, key TEXT NOT NULL)")
        for statement in recipe.schema:
            connection.execute(statement)
        rows = recipe.fill(connection)
        if rows < recipe.size:
            raise StoreBuildError(
                f"{recipe.name} built {rows} rows of {recipe.size}: the generator is wrong"
            )
        manifest = {
            "format": _FORMAT,
            "name": recipe.name,
            "version": recipe.version,
            "seed": recipe.seed,
            "size": recipe.size,
            "rows": rows,
        }
        connection.executemany(
            "INSERT INTO manifest VALUES (?, ?)", [(k, str(v)) for k, v in manifest.items()]
        )
        connection.execute("COMMIT")
    except BaseException:
        connection.close()
        building.unlink(missing_ok=True)
        raise
    connection.close()
    os.replace(building, path)


def sample_stride(size: int) -> int:
    """Every how many records one is sampled, for about ``SAMPLE_SIZE`` samples."""
    return max(1, size // SAMPLE_SIZE)
