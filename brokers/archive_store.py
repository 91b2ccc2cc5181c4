"""The audit archive on local disk: an append-only SQLite file in WAL mode.

Theory of operation. One table holds the records in leaf order (``leaf_index`` 0, 1, 2,
...), each with its stored leaf hash (schemas.archive); ``UNIQUE(topic, partition,
offset)`` makes a record archivable once. The archive is its own offset store: the last
archived offset of each partition is read back from the records themselves, so an archiver
killed at any instant resumes at ``last + 1`` with no gap and no duplicate, because a batch
and its offsets commit in one transaction. Signed tree heads sit in a second table. Nothing
here deletes: retention of the broker never reaches this file.

It lives on the brokers floor because both the archiver (streams) and the operators'
audit and replay tools (agents) read it, and agents may not import streams.

    store = ArchiveStore.open_writer(path)
    store.append([ArchivedRecord("i247.inbound", 0, 0, 1700000000000, b"FRA", b"...", ())])
    store.positions()  # {("i247.inbound", 0): 0}
    for record in iter_archive(path): ...
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from brokers.settings import Settings
from schemas.archive import (
    ArchivedRecord,
    MerkleAccumulator,
    TreeHead,
    decode_headers,
    encode_headers,
    encode_leaf,
)
from schemas.merkle import leaf_hash

__all__ = [
    "ArchiveBusy",
    "ArchiveStore",
    "ArchiveUnreadable",
    "StoredRecord",
    "default_archive_path",
    "iter_archive",
    "require_archive",
]

FORMAT = "i247-archive/1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    leaf_index INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    key BLOB,
    value BLOB,
    headers BLOB NOT NULL,
    leaf_hash BLOB NOT NULL,
    UNIQUE (topic, partition, "offset")
);
CREATE INDEX IF NOT EXISTS records_by_time ON records (timestamp_ms);
CREATE TABLE IF NOT EXISTS tree_heads (
    size INTEGER PRIMARY KEY,
    root BLOB NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    signature BLOB NOT NULL,
    published INTEGER NOT NULL DEFAULT 1
);
"""
_HEAD_COLUMNS = "size, root, timestamp_ms, key_id, signature"
_COLUMNS = 'leaf_index, topic, partition, "offset", timestamp_ms, key, value, headers, leaf_hash'


class ArchiveUnreadable(Exception):
    """The file is not an audit archive SQLite can read (another file, or corrupt)."""

    def __init__(self, path: Path, cause: object) -> None:
        super().__init__(
            f"{path} is not a readable audit archive ({cause}); pass the file `i247 archive` "
            "wrote (--archive PATH), or omit the path for the default one"
        )
        self.path = path


def require_archive(path: Path) -> Path:
    """``path`` if it exists; ``FileNotFoundError`` saying how to make one otherwise."""
    if not path.exists():
        raise FileNotFoundError(f"no archive at {path}; run `i247 archive --archive {path}`")
    return path


class ArchiveBusy(RuntimeError):
    """Another archiver holds the archive; two writers would interleave leaf indices."""


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record as the archive holds it: its position, the record, its stored leaf hash."""

    leaf_index: int
    record: ArchivedRecord
    headers_blob: bytes
    leaf_hash: bytes

    def leaf_input(self) -> bytes:
        """The leaf input recomputed from the stored record bytes."""
        return encode_leaf(self.leaf_index, self.record, self.headers_blob)


def default_archive_path(settings: Settings) -> Path:
    """``<I247_DATA_DIR>/audit/<prefix>-archive.sqlite3``: one archive per deployment."""
    return Path(settings.data_dir) / "audit" / f"{settings.topic_prefix}-archive.sqlite3"


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    """An open archive; ``ArchiveUnreadable`` for a file that is not one."""
    if readonly:
        uri = f"{require_archive(path).resolve().as_uri()}?mode=ro"
        connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
        try:
            row = connection.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
        except sqlite3.DatabaseError as exc:
            connection.close()
            raise ArchiveUnreadable(path, exc) from exc
        if row is None or row[0] != FORMAT:
            connection.close()
            raise ArchiveUnreadable(path, f"format {row[0] if row else None!r}, not {FORMAT!r}")
        return connection
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _open_writable(path)
    except sqlite3.DatabaseError as exc:
        raise ArchiveUnreadable(path, exc) from exc


def _open_writable(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        return _prepare(connection)
    except BaseException:
        connection.close()
        raise


def _prepare(connection: sqlite3.Connection) -> sqlite3.Connection:
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")  # a signed head never covers a lost batch
    # the tables and the format row in one transaction: a reader that opens the file while
    # it is being created finds either no archive yet or a whole one, never a format-less one
    connection.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                connection.execute(statement)
        connection.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (FORMAT,))
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    columns = {row[1] for row in connection.execute("PRAGMA table_info(tree_heads)")}
    if "published" not in columns:  # an archive from before heads were tracked: all were sent
        connection.execute("ALTER TABLE tree_heads ADD COLUMN published INTEGER NOT NULL DEFAULT 1")
    return connection


def _where(
    topics: Iterable[str] | None, since_ms: int | None, until_ms: int | None
) -> tuple[str, list[Any]]:
    """The WHERE clause (values bound) for a topic list and a ``[since, until)`` window."""
    clauses: list[str] = []
    params: list[Any] = []
    if topics is not None:
        names = list(topics)
        clauses.append(f"topic IN ({', '.join('?' * len(names))})")
        params += names
    if since_ms is not None:
        clauses.append("timestamp_ms >= ?")
        params.append(since_ms)
    if until_ms is not None:
        clauses.append("timestamp_ms < ?")
        params.append(until_ms)
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params


def _stored(row: Sequence[Any]) -> StoredRecord:
    index, topic, partition, offset, timestamp_ms, key, value, headers, leaf = row
    record = ArchivedRecord(
        topic, partition, offset, timestamp_ms, key, value, decode_headers(headers)
    )
    return StoredRecord(index, record, headers, leaf)


class ArchiveStore:
    """One archive file; ``open_writer`` for the archiver, ``open_reader`` for tools."""

    def __init__(self, path: Path, connection: sqlite3.Connection, lock: IO[bytes] | None):
        self.path = path
        self._db = connection
        self._lock = lock
        self._positions: dict[tuple[str, int], int] = {}
        self._tree = MerkleAccumulator()
        if lock is not None:
            self._positions = self.positions()
            for leaf in self.leaf_hashes():
                self._tree.append(leaf)

    @classmethod
    def open_writer(cls, path: Path) -> ArchiveStore:
        """Open (creating) the archive for appending; ``ArchiveBusy`` if another writer has it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = (path.parent / f"{path.name}.lock").open("wb")
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise ArchiveBusy(f"{path} is being written by another archiver (pid in use)") from None
        lock.write(str(os.getpid()).encode())
        lock.flush()
        return cls(path, _connect(path, readonly=False), lock)

    @classmethod
    def open_reader(cls, path: Path) -> ArchiveStore:
        return cls(path, _connect(path, readonly=True), None)

    def close(self) -> None:
        self._db.close()
        if self._lock is not None:
            self._lock.close()

    def __enter__(self) -> ArchiveStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- writing -------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Leaves appended so far (writer: from memory; reader: from the file)."""
        if self._lock is not None:
            return self._tree.size
        (count,) = self._db.execute("SELECT COUNT(*) FROM records").fetchone()
        return int(count)

    def root(self) -> bytes:
        """The Merkle root over every leaf appended (writer only)."""
        return self._tree.root()

    def append(self, records: Iterable[ArchivedRecord]) -> list[ArchivedRecord]:
        """Archive the records not archived yet, in one transaction; returns those appended.

        A record at or below its partition's last archived offset is skipped: it was
        archived before a crash and read again since.
        """
        if self._lock is None:
            raise PermissionError(f"{self.path} is open read-only; use ArchiveStore.open_writer")
        fresh: list[ArchivedRecord] = []
        rows: list[tuple[Any, ...]] = []
        positions = dict(self._positions)
        index = self._tree.size
        leaves: list[bytes] = []
        for record in records:
            where = (record.topic, record.partition)
            if record.offset <= positions.get(where, -1):
                continue
            positions[where] = record.offset
            headers = encode_headers(record.headers)
            leaf = leaf_hash(encode_leaf(index, record, headers))
            rows.append(
                (
                    index,
                    record.topic,
                    record.partition,
                    record.offset,
                    record.timestamp_ms,
                    record.key,
                    record.value,
                    headers,
                    leaf,
                )
            )
            fresh.append(record)
            leaves.append(leaf)
            index += 1
        if not rows:
            return []
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                f"INSERT INTO records ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608  # column list is a constant
                rows,
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._positions = positions
        for leaf in leaves:
            self._tree.append(leaf)
        return fresh

    def add_head(self, head: TreeHead) -> None:
        """Store a signed head as not yet published; ``mark_published`` once it is sent."""
        if self._lock is None:
            raise PermissionError(f"{self.path} is open read-only; use ArchiveStore.open_writer")
        self._db.execute(
            f"INSERT OR REPLACE INTO tree_heads ({_HEAD_COLUMNS}, published) "  # noqa: S608  # constant columns
            "VALUES (?, ?, ?, ?, ?, 0)",
            (head.size, head.root, head.timestamp_ms, head.key_id, head.signature),
        )

    def mark_published(self, size: int) -> None:
        """The head of ``size`` reached the control topic; a restart need not send it again."""
        if self._lock is None:
            raise PermissionError(f"{self.path} is open read-only; use ArchiveStore.open_writer")
        self._db.execute("UPDATE tree_heads SET published = 1 WHERE size = ?", (size,))

    # --- reading -------------------------------------------------------------------

    def positions(self) -> dict[tuple[str, int], int]:
        """The last archived offset of every partition, read from the records."""
        rows = self._db.execute(
            'SELECT topic, partition, MAX("offset") FROM records GROUP BY topic, partition'
        )
        return {(topic, partition): offset for topic, partition, offset in rows}

    def leaf_hashes(self, size: int | None = None) -> list[bytes]:
        """The stored leaf hashes in leaf order (the first ``size`` if given)."""
        query = "SELECT leaf_hash FROM records ORDER BY leaf_index"
        if size is None:
            return [row[0] for row in self._db.execute(query)]
        return [row[0] for row in self._db.execute(query + " LIMIT ?", (size,))]

    def heads(self) -> list[TreeHead]:
        rows = self._db.execute(f"SELECT {_HEAD_COLUMNS} FROM tree_heads ORDER BY size")  # noqa: S608  # constant columns
        return [TreeHead(*row) for row in rows]

    def unpublished_heads(self) -> list[TreeHead]:
        """Heads stored but not known to have reached the control topic (a crash between)."""
        rows = self._db.execute(
            f"SELECT {_HEAD_COLUMNS} FROM tree_heads WHERE published = 0 ORDER BY size"  # noqa: S608  # constant columns
        )
        return [TreeHead(*row) for row in rows]

    def topic_names(self) -> list[str]:
        """Every topic with an archived record: one index seek per topic, not a scan."""
        rows = self._db.execute(
            "WITH RECURSIVE t(topic) AS (SELECT MIN(topic) FROM records UNION ALL "
            "SELECT (SELECT MIN(topic) FROM records WHERE topic > t.topic) FROM t "
            "WHERE t.topic IS NOT NULL) SELECT topic FROM t WHERE topic IS NOT NULL"
        )
        return [row[0] for row in rows]

    def count(
        self,
        *,
        topics: Iterable[str] | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> int:
        """How many records ``records`` would yield with the same arguments."""
        where, params = _where(topics, since_ms, until_ms)
        (count,) = self._db.execute(f"SELECT COUNT(*) FROM records{where}", params).fetchone()  # noqa: S608  # fixed clauses, values bound
        return int(count)

    def records(
        self,
        *,
        topics: Iterable[str] | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> Iterator[StoredRecord]:
        """Stored records in leaf order, optionally of some topics and a time window."""
        where, params = _where(topics, since_ms, until_ms)
        cursor = self._db.execute(
            f"SELECT {_COLUMNS} FROM records{where} ORDER BY leaf_index",  # noqa: S608  # fixed clauses, values bound
            params,
        )
        while chunk := cursor.fetchmany(10_000):
            yield from (_stored(row) for row in chunk)

    def find(self, topic: str, partition: int, offset: int) -> StoredRecord | None:
        row = self._db.execute(
            f'SELECT {_COLUMNS} FROM records WHERE topic = ? AND partition = ? AND "offset" = ?',  # noqa: S608  # column list is a constant
            (topic, partition, offset),
        ).fetchone()
        return None if row is None else _stored(row)


def iter_archive(
    path: Path,
    *,
    topics: Iterable[str] | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> Iterator[ArchivedRecord]:
    """The archived records in archive order, for replay; read-only, safe beside a writer."""
    store = ArchiveStore.open_reader(path)
    try:
        for stored in store.records(topics=topics, since_ms=since_ms, until_ms=until_ms):
            yield stored.record
    finally:
        store.close()
