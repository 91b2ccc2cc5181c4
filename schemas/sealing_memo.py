"""What a process remembers of envelopes it has read or sealed, so it does not redo the work.

Two steps of reading an envelope are pure and costly: parsing the record bytes (``parse
envelope``: two JSON passes, pydantic, base64; ~45 µs) and the Ed25519 check of a signature
(~70 µs). Their results depend only on their inputs, so they are remembered keyed by those
inputs and nothing else: the record bytes for a parse, and (the signer's *raw public key*,
the signed bytes, the signature) for a check. Nothing keyed by a participant or a key id
is cached, so a key rotated in the directory (other public bytes) can never be answered
from memory, and a record altered by one bit is a miss that is parsed and checked afresh.
A *revoked* key keeps its public bytes, so ``schemas.sealing.verify`` asks the directory
about the key id (``Directory.check_signing_key``) before this memo is consulted.
Only successes are remembered; every refusal is computed again, with its reason.

Why it pays: the simulator opens nearly every envelope it sealed itself (a delivery carries
the sender's envelope unchanged), the Observer and each recipient of a diffusion or a
broadcast read the same bytes, and a hub verifies at intake what its desks then open. The
sealer primes both memos, having made the bytes and the signature itself.

Both memos are bounded (oldest out first) and safe to share between threads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = [
    "ENVELOPE_MEMO_SIZE",
    "SIGNATURE_MEMO_SIZE",
    "Memo",
    "clear_memos",
    "envelopes",
    "memo_stats",
    "memos_off",
    "remember_signature",
    "signatures",
    "verify_signature",
]

K = TypeVar("K")
V = TypeVar("V")

ENVELOPE_MEMO_SIZE = 4096
"""Parsed envelopes kept: ~5 KB each; at 400 sealed/s, the last ten seconds of traffic."""

SIGNATURE_MEMO_SIZE = 16384
"""Checked signatures kept: ~200 bytes each."""


class Memo(Generic[K, V]):
    """A bounded map, oldest entry evicted first; counts hits and misses for the benchmarks."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a memo holds at least one entry, not {capacity}")
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self.enabled = True
        self._items: dict[K, V] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: K) -> V | None:
        if not self.enabled:
            return None
        value = self._items.get(key)
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    def put(self, key: K, value: V) -> None:
        if not self.enabled:
            return
        with self._lock:
            items = self._items
            if key not in items:
                while len(items) >= self.capacity:
                    del items[next(iter(items))]
            items[key] = value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0


envelopes: Memo[bytes, object] = Memo(ENVELOPE_MEMO_SIZE)
"""Record bytes -> the ``SealedMessage`` they parse to (``schemas.sealing.parse_envelope``,
which checks the type: this module sits below ``schemas.sealing`` and cannot name it)."""

signatures: Memo[tuple[bytes, bytes, bytes], bool] = Memo(SIGNATURE_MEMO_SIZE)
"""(raw Ed25519 public key, signed bytes, signature) that were found (or made) valid."""


def verify_signature(public: Ed25519PublicKey, signature: bytes, message: bytes) -> None:
    """``public.verify(signature, message)``, remembered; raises ``InvalidSignature`` as it."""
    key = (public.public_bytes_raw(), message, signature)
    if signatures.get(key):
        return
    public.verify(signature, message)
    signatures.put(key, True)


def remember_signature(public_raw: bytes, message: bytes, signature: bytes) -> None:
    """Record a signature this process made with the private key of ``public_raw``."""
    signatures.put((public_raw, message, signature), True)


def memo_stats() -> dict[str, dict[str, int]]:
    """Entries, hits and misses of both memos (for benchmarks and logs)."""
    return {
        name: {"entries": len(memo), "hits": memo.hits, "misses": memo.misses}
        for name, memo in (("envelopes", envelopes), ("signatures", signatures))
    }


@contextmanager
def memos_off() -> Iterator[None]:
    """Neither memo answers nor learns inside: for timing the cold path (per-step benchmarks
    that call a step on the same bytes again and again would otherwise time a lookup)."""
    saved = envelopes.enabled, signatures.enabled
    envelopes.enabled = signatures.enabled = False
    try:
        yield
    finally:
        envelopes.enabled, signatures.enabled = saved


def clear_memos() -> None:
    """Forget everything (tests that count work, and benchmarks that time the cold path)."""
    envelopes.clear()
    signatures.clear()
