"""The audit bench end to end at a tiny size, on the session's broker: every part runs and
reports what it counted; a second run reuses the cached archive."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.bench.audit import bench_archive_path, bench_audit
from agents.ops.audit import verify_archive
from brokers.settings import Settings
from schemas.keys import load_directory
from schemas.participants import AUDITOR

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def test_bench_audit_measures_every_part_and_reuses_its_archive(settings: Settings) -> None:
    small = {"records": 2_000, "live_rate": 500.0, "live_seconds": 1.0, "topic_records": 300}
    figures = await bench_audit(settings, **small)  # type: ignore[arg-type]
    assert figures.records == figures.replay_jsonl_records == 2_000
    assert figures.live_records == 500
    assert figures.replay_jsonl_full
    assert (figures.replay_topic_records, figures.replay_topic_full) == (300, False)
    assert figures.verify_heads == 1  # one head at the end: fewer than 100,000 records
    assert not figures.archive_reused
    assert figures.build_records_per_s is not None
    for rate in (
        figures.live_archived_per_s,
        figures.verify_records_per_s,
        figures.replay_jsonl_records_per_s,
        figures.replay_topic_records_per_s,
    ):
        assert rate > 0
    path = bench_archive_path(settings, 2_000)
    keys = Path(settings.data_dir) / "audit-bench" / "keys"
    assert verify_archive(path, load_directory(keys).get(AUDITOR).signing).ok

    again = await bench_audit(settings, **{**small, "topic_records": 5_000})  # type: ignore[arg-type]
    assert again.archive_reused
    assert again.build_records_per_s is None
    assert (again.replay_topic_records, again.replay_topic_full) == (2_000, True)
