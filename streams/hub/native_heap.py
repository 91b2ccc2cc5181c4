"""The C heap under a hub's Python objects: what it holds, and handing its free pages back.

A hub under backlog allocates many short-lived buffers of a few KiB (fetched records,
envelopes, base64 text) between long-lived ones; glibc's malloc serves those from its
heap, and the free pages left between live chunks stay in the process (RSS) after the
backlog drains. A soak read that as a leak: the Python objects the hub holds level off
(``I247_MEMORY_CENSUS``) while RSS keeps its high-water mark. ``malloc_trim(0)`` hands
whole free pages back to the system; the hub calls it once a minute. Other C libraries
(musl, macOS) have neither call, and the functions here then do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from dataclasses import dataclass
from functools import cache

import psutil

__all__ = ["HeapFigures", "TrimResult", "heap_figures", "resident_mib", "trim_heap"]

_MIB = 2**20


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


@dataclass(frozen=True, slots=True)
class HeapFigures:
    """MiB malloc holds for live chunks (heap and mmapped) and MiB it holds free."""

    in_use_mib: float
    free_mib: float


@dataclass(frozen=True, slots=True)
class TrimResult:
    """What one trim did: resident MiB before and after, and how long it took."""

    rss_before_mib: float
    rss_after_mib: float
    took_ms: float


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not (hasattr(libc, "malloc_trim") and hasattr(libc, "mallinfo2")):
        return None  # not glibc (or glibc before 2.33)
    libc.mallinfo2.restype = _Mallinfo2
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    libc.malloc_trim.restype = ctypes.c_int
    return libc


def resident_mib() -> float | None:
    """This process's resident set, MiB (psutil, as the soak reads it), or None if unreadable."""
    try:
        return round(psutil.Process().memory_info().rss / _MIB, 1)
    except psutil.Error:
        return None


def heap_figures() -> HeapFigures | None:
    """malloc's own view of the heap, or None without glibc."""
    libc = _libc()
    if libc is None:
        return None
    info = libc.mallinfo2()
    return HeapFigures(
        in_use_mib=round((info.uordblks + info.hblkhd) / _MIB, 1),
        free_mib=round(info.fordblks / _MIB, 1),
    )


def trim_heap() -> TrimResult | None:
    """Hand the heap's free pages back to the system; None without glibc."""
    libc = _libc()
    before = resident_mib()
    if libc is None or before is None:
        return None
    started = time.perf_counter()
    libc.malloc_trim(0)
    took = (time.perf_counter() - started) * 1000
    return TrimResult(before, resident_mib() or before, round(took, 2))
