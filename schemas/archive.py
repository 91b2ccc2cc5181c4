"""The audit archive's contract: how a record becomes a Merkle leaf, and signed tree heads.

Theory of operation. The archiver appends every backbone record, exactly as read (sealed
bodies stay sealed), to an append-only log; leaf ``i`` of an RFC 6962 Merkle tree is the
record at archive position ``i``. A *signed tree head* (size, root, time, Ed25519 signature
of the auditor) commits to the first ``size`` leaves: change a byte, drop a record or move
one and the recomputed root no longer matches a signature nobody else can forge.

Leaf input (``encode_leaf``), big-endian, every variable field length-prefixed, so no two
different records share an encoding::

    "i247-archive-leaf/1"          19 ASCII bytes, a domain tag
    leaf index                     u64: the record's position, so a moved record is a changed one
    topic                          u32 length + UTF-8
    partition                      u32
    offset                         u64
    timestamp (ms since epoch)     i64
    key, value                     each u8 presence (0 = null, 1 = present) [+ u32 length + bytes]
    header count                   u32, then per header in record order:
                                   u32 length + UTF-8 name, u8 presence [+ u32 length + bytes]

The leaf hash is ``SHA-256(0x00 || leaf input)`` (schemas.merkle.leaf_hash). A tree head
signs ``"i247-tree-head/1" || u64 size || i64 timestamp ms || 32-byte root``.

    >>> r = ArchivedRecord("i247.control", 0, 7, 1_700_000_000_000, None, b"{}", ())
    >>> decode_leaf(encode_leaf(3, r)) == (3, r)
    True
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from schemas.keys import key_id
from schemas.merkle import leaf_hash, node_hash, root

__all__ = [
    "HEAD_TAG",
    "LEAF_TAG",
    "ArchivedRecord",
    "BadLeaf",
    "MerkleAccumulator",
    "TreeHead",
    "TreeLevels",
    "decode_headers",
    "decode_leaf",
    "encode_headers",
    "encode_leaf",
    "head_payload",
    "record_leaf_hash",
    "sign_tree_head",
]

LEAF_TAG = b"i247-archive-leaf/1"
HEAD_TAG = b"i247-tree-head/1"
Header = tuple[str, bytes | None]


class BadLeaf(ValueError):
    """Bytes that are not a leaf input of this format; the archive file is damaged."""


@dataclass(frozen=True, slots=True)
class ArchivedRecord:
    """One Kafka record exactly as the archiver read it."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()

    @property
    def origin(self) -> str:
        """``topic/partition/offset``, as brokers.records spells a record's place."""
        return f"{self.topic}/{self.partition}/{self.offset}"


def _blob(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _optional(data: bytes | None) -> bytes:
    return b"\x00" if data is None else b"\x01" + _blob(data)


def encode_headers(headers: tuple[Header, ...]) -> bytes:
    """The header part of a leaf input (also how the archive stores headers)."""
    parts = [struct.pack(">I", len(headers))]
    for name, value in headers:
        parts += [_blob(name.encode("utf-8")), _optional(value)]
    return b"".join(parts)


def encode_leaf(index: int, record: ArchivedRecord, headers_blob: bytes | None = None) -> bytes:
    """The canonical leaf input of ``record`` at archive position ``index`` (see above).

    ``headers_blob``, when given, is ``encode_headers(record.headers)`` already computed.
    """
    return b"".join(
        (
            LEAF_TAG,
            struct.pack(">Q", index),
            _blob(record.topic.encode("utf-8")),
            struct.pack(">IQq", record.partition, record.offset, record.timestamp_ms),
            _optional(record.key),
            _optional(record.value),
            encode_headers(record.headers) if headers_blob is None else headers_blob,
        )
    )


def record_leaf_hash(index: int, record: ArchivedRecord) -> bytes:
    return leaf_hash(encode_leaf(index, record))


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise BadLeaf(f"leaf input ends early at byte {self.at}")
        chunk = self.data[self.at : self.at + n]
        self.at += n
        return chunk

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def blob(self) -> bytes:
        (n,) = self.unpack(">I")
        return self.take(n)

    def optional(self) -> bytes | None:
        flag = self.take(1)
        if flag not in (b"\x00", b"\x01"):
            raise BadLeaf(f"presence byte {flag!r} at byte {self.at - 1} is neither 0 nor 1")
        return None if flag == b"\x00" else self.blob()


def decode_headers(data: bytes) -> tuple[Header, ...]:
    reader = _Reader(data)
    headers = _read_headers(reader)
    if reader.at != len(data):
        raise BadLeaf(f"{len(data) - reader.at} stray bytes after the headers")
    return headers


def _read_headers(reader: _Reader) -> tuple[Header, ...]:
    (count,) = reader.unpack(">I")
    return tuple((reader.blob().decode("utf-8"), reader.optional()) for _ in range(count))


def decode_leaf(data: bytes) -> tuple[int, ArchivedRecord]:
    """The position and record a leaf input encodes; ``BadLeaf`` if it is not one."""
    reader = _Reader(data)
    if reader.take(len(LEAF_TAG)) != LEAF_TAG:
        raise BadLeaf("not an i247-archive-leaf/1 input")
    (index,) = reader.unpack(">Q")
    topic = reader.blob().decode("utf-8")
    partition, offset, timestamp_ms = reader.unpack(">IQq")
    key, value = reader.optional(), reader.optional()
    headers = _read_headers(reader)
    if reader.at != len(data):
        raise BadLeaf(f"{len(data) - reader.at} stray bytes after the leaf")
    return index, ArchivedRecord(topic, partition, offset, timestamp_ms, key, value, headers)


class MerkleAccumulator:
    """The root of a growing tree in O(log n) memory: one perfect subtree per bit of n.

    MTH(D[n]) folds these subtrees right to left (RFC 6962's split is always the largest
    power of two), so appending and reading the root never touch old leaves again.
    """

    def __init__(self) -> None:
        self._peaks: list[tuple[int, bytes]] = []  # (leaf count, hash), largest first
        self.size = 0

    def append(self, leaf: bytes) -> None:
        count, node = 1, leaf
        while self._peaks and self._peaks[-1][0] == count:
            left_count, left = self._peaks.pop()
            count, node = left_count + count, node_hash(left, node)
        self._peaks.append((count, node))
        self.size += 1

    def root(self) -> bytes:
        if not self._peaks:
            return root([])
        node = self._peaks[-1][1]
        for _, left in reversed(self._peaks[:-1]):
            node = node_hash(left, node)
        return node


def _split(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)  # the largest power of two below n (n >= 2)


class TreeLevels:
    """Every perfect subtree hash of a tree, level by level: any RFC 6962 node in O(log n).

    Each node of the RFC 6962 recursion covers ``D[a:b]`` with ``a`` a multiple of the
    smallest power of two >= ``b - a``, so it folds from the aligned perfect blocks of
    ``b - a``'s bits; proofs of any size up to ``n`` cost O(log^2 n), not O(n). Levels are
    flat bytearrays (32 bytes a hash): about 64 bytes a leaf in all.
    """

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.size = len(leaves)
        self._levels = [bytes(b"".join(leaves))]
        count = self.size
        while count > 1:
            below = self._levels[-1]
            above = bytearray()
            for at in range(0, 64 * (count // 2), 64):
                above += hashlib.sha256(b"\x01" + below[at : at + 64]).digest()
            self._levels.append(bytes(above))
            count //= 2

    def _block(self, level: int, index: int) -> bytes:
        return self._levels[level][32 * index : 32 * index + 32]

    def leaf(self, index: int) -> bytes:
        return self._block(0, index)

    def mth(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a node of the recursion (``start`` aligned as above)."""
        if not 0 <= start <= end <= self.size:
            raise IndexError(f"no range {start}..{end} in a tree of {self.size}")
        if start == end:
            return root([])
        peaks: list[bytes] = []
        while start < end:
            width = 1 << ((end - start).bit_length() - 1)
            level = width.bit_length() - 1
            if start % width:
                raise ValueError(f"D[{start}:{end}] is not a node of an RFC 6962 tree")
            peaks.append(self._block(level, start >> level))
            start += width
        node = peaks[-1]
        for left in reversed(peaks[:-1]):
            node = node_hash(left, node)
        return node

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """PATH(index, D[size]) of RFC 6962 §2.1.1."""
        if not 0 <= index < size <= self.size:
            raise IndexError(f"leaf {index} is not in a tree of {size}")
        return self._path(index, 0, size)

    def _path(self, m: int, start: int, end: int) -> list[bytes]:
        if end - start == 1:
            return []
        k = _split(end - start)
        if m < k:
            return [*self._path(m, start, start + k), self.mth(start + k, end)]
        return [*self._path(m - k, start + k, end), self.mth(start, start + k)]

    def consistency_proof(self, old_size: int, size: int) -> list[bytes]:
        """PROOF(old_size, D[size]) of RFC 6962 §2.1.2."""
        if not 0 < old_size <= size <= self.size:
            raise ValueError(f"no consistency proof from size {old_size} to {size}")
        return self._subproof(old_size, 0, size, True)

    def _subproof(self, m: int, start: int, end: int, complete: bool) -> list[bytes]:
        if m == end - start:
            return [] if complete else [self.mth(start, end)]
        k = _split(end - start)
        if m <= k:
            return [*self._subproof(m, start, start + k, complete), self.mth(start + k, end)]
        return [*self._subproof(m - k, start + k, end, False), self.mth(start, start + k)]


@dataclass(frozen=True, slots=True)
class TreeHead:
    """A signed commitment to the first ``size`` leaves of the archive."""

    size: int
    root: bytes
    timestamp_ms: int
    key_id: str
    signature: bytes

    def signed_bytes(self) -> bytes:
        return head_payload(self.size, self.root, self.timestamp_ms)

    def verify(self, public: Ed25519PublicKey) -> bool:
        """True if the signature is the holder of ``public``'s over this head."""
        if key_id(public.public_bytes_raw()) != self.key_id:
            return False
        try:
            public.verify(self.signature, self.signed_bytes())
        except InvalidSignature:
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "root": self.root.hex(),
            "timestamp_ms": self.timestamp_ms,
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode("ascii"),
            "signed": self.signed_bytes().hex(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TreeHead:
        return cls(
            size=int(data["size"]),
            root=bytes.fromhex(data["root"]),
            timestamp_ms=int(data["timestamp_ms"]),
            key_id=str(data["key_id"]),
            signature=base64.b64decode(data["signature"], validate=True),
        )


def head_payload(size: int, tree_root: bytes, timestamp_ms: int) -> bytes:
    if len(tree_root) != 32:
        raise ValueError(f"a tree root is 32 bytes, not {len(tree_root)}")
    return HEAD_TAG + struct.pack(">Qq", size, timestamp_ms) + tree_root


def sign_tree_head(
    size: int, tree_root: bytes, timestamp_ms: int, key: Ed25519PrivateKey
) -> TreeHead:
    """Sign a head; time comes in as an argument, like every clock in the core."""
    payload = head_payload(size, tree_root, timestamp_ms)
    kid = key_id(key.public_key().public_bytes_raw())
    return TreeHead(size, tree_root, timestamp_ms, kid, key.sign(payload))
