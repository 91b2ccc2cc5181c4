"""The C heap figures and trim a hub uses to keep a backlog's high-water mark from staying."""

from __future__ import annotations

import ctypes.util

import pytest

from streams.hub import native_heap
from streams.hub.native_heap import heap_figures, resident_mib, trim_heap

glibc = pytest.mark.skipif(native_heap._libc() is None, reason="needs glibc 2.33+ (mallinfo2)")


@glibc
def test_a_trim_hands_back_the_pages_a_drained_backlog_left_free() -> None:
    backlog = [bytes(3000) for _ in range(20_000)]  # ~57 MiB of heap chunks, under mmap size
    kept = backlog[::50]
    del backlog
    figures = heap_figures()
    assert figures is not None
    assert figures.free_mib > 40
    result = trim_heap()
    assert result is not None
    assert result.rss_after_mib < result.rss_before_mib - 30
    assert len(kept) == 400


@glibc
def test_heap_figures_count_what_is_allocated() -> None:
    before = heap_figures()
    held = [bytes(4000) for _ in range(5_000)]  # ~19 MiB
    after = heap_figures()
    assert before is not None
    assert after is not None
    assert after.in_use_mib - before.in_use_mib > 15
    assert len(held) == 5_000


def test_resident_set_is_read() -> None:
    rss = resident_mib()
    assert rss is not None
    assert rss > 5


def test_without_glibc_there_are_no_figures_and_no_trim(monkeypatch: pytest.MonkeyPatch) -> None:
    native_heap._libc.cache_clear()
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    try:
        assert heap_figures() is None
        assert trim_heap() is None
    finally:
        native_heap._libc.cache_clear()
