"""What a bureau's client has handed over, kept on disk so a restart re-opens nothing.

The client's inbox position lives in Kafka as committed group offsets; this file keeps the
rest: every message id the client opened and where each item it handed over was read
(topic, partition, offset and the record's timestamp). A line is written and flushed to
disk *before* the item is handed to the application and before the position is committed,
so a crash between the two makes the client re-read a few records, recognise them here,
and hand none of them over again.

Format: JSON Lines, one handed-over item a line, appended::

    {"topic": "i247.ncb.DEU.inbox", "partition": 0, "offset": 17,
     "timestamp_ms": 1764857103123, "message_id": "6f1c...", "kind": "message"}

``message_id`` is null for an item that carries several (a hub's receipt batch). A torn
last line (a crash mid-write) is ignored. A position matches only with the same timestamp,
so a broker that lost its log (the embedded one on restart) and reuses offsets is read
afresh, not skipped.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import structlog

__all__ = ["ClientState", "HandedOver", "state_path"]

log = structlog.get_logger("i247.ncb.client")


def state_path(data_dir: Path, participant: str) -> Path:
    """``<data dir>/clients/<participant>/opened.jsonl`` (``team:x`` becomes ``team-x``)."""
    return data_dir / "clients" / participant.replace(":", "-") / "opened.jsonl"


@dataclass(frozen=True, slots=True)
class HandedOver:
    """One item handed to the application: where it was read and the message id, if any."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    message_id: str | None
    kind: str


@dataclass
class ClientState:
    """The opened ids and handed-over positions, loaded from and appended to ``path``."""

    path: Path
    opened: set[str] = field(default_factory=set)
    positions: dict[tuple[str, int, int], int] = field(default_factory=dict)
    _file: IO[str] | None = None

    @classmethod
    def load(cls, path: Path) -> ClientState:
        """Read ``path`` if it exists (creating its directory), ready to append."""
        state = cls(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with path.open(encoding="utf-8") as lines:
                for number, line in enumerate(lines, 1):
                    entry = _parse(line)
                    if entry is None:
                        log.warning("client-state-line-ignored", path=str(path), line=number)
                        continue
                    state._remember(entry)
        state._file = path.open("a", encoding="utf-8")
        return state

    def _remember(self, entry: HandedOver) -> None:
        if entry.message_id is not None:
            self.opened.add(entry.message_id)
        self.positions[(entry.topic, entry.partition, entry.offset)] = entry.timestamp_ms

    def handed_over(self, topic: str, partition: int, offset: int, timestamp_ms: int) -> bool:
        """True if the record at this position (same timestamp) was handed over before."""
        return self.positions.get((topic, partition, offset)) == timestamp_ms

    def record(self, entry: HandedOver) -> None:
        """Append ``entry`` and force it to disk before the caller hands the item over."""
        if self._file is None:
            raise RuntimeError(f"client state {self.path} is closed: load it again")
        self._file.write(
            json.dumps(
                {
                    "topic": entry.topic,
                    "partition": entry.partition,
                    "offset": entry.offset,
                    "timestamp_ms": entry.timestamp_ms,
                    "message_id": entry.message_id,
                    "kind": entry.kind,
                },
                separators=(",", ":"),
            )
            + "\n"
        )
        self._file.flush()
        os.fsync(self._file.fileno())
        self._remember(entry)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _parse(line: str) -> HandedOver | None:
    try:
        raw: Any = json.loads(line)
        return HandedOver(
            topic=str(raw["topic"]),
            partition=int(raw["partition"]),
            offset=int(raw["offset"]),
            timestamp_ms=int(raw["timestamp_ms"]),
            message_id=None if raw.get("message_id") is None else str(raw["message_id"]),
            kind=str(raw.get("kind", "message")),
        )
    except (ValueError, KeyError, TypeError):
        return None
