"""The shape of a consumed Kafka record as the rest of the backbone sees it.

aiokafka has its own record types; converting at the edge to this one
keeps the pure core free of both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from brokers.record_headers import header_value

__all__ = ["Headers", "OutboundRecord", "ReceivedRecord", "origin_of"]

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class ReceivedRecord:
    """One record as read from a topic, with where it was read."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: Headers = ()

    @property
    def origin(self) -> str:
        """``topic/partition/offset``: where this record sits in the log."""
        return origin_of(self.topic, self.partition, self.offset)

    def header(self, name: str) -> bytes | None:
        """The last value of header ``name`` (Kafka's ``lastHeader``), or None."""
        return header_value(self.headers, name)


@dataclass(frozen=True, slots=True)
class OutboundRecord:
    """A record to produce: an effect the core returns and the shell carries out."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers = ()

    def header(self, name: str) -> bytes | None:
        """The last value of header ``name`` (Kafka's ``lastHeader``), or None."""
        return header_value(self.headers, name)

    def with_headers(self, extra: Iterable[tuple[str, bytes]]) -> OutboundRecord:
        return OutboundRecord(self.topic, self.key, self.value, self.headers + tuple(extra))


def origin_of(topic: str, partition: int, offset: int) -> str:
    return f"{topic}/{partition}/{offset}"
