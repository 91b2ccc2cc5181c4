"""The broadcast bench's summaries: send (or publish) to the last and first copy, percentiles."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.bench.broadcast import Reach, red_notices, to_all, to_first
from schemas.notices import ReviewDecision, subject_identity
from schemas.registry import default_registry
from streams.core.notice_review import review_notice

THREE = {"FRA": 10.25, "DEU": 10.5, "ITA": 10.125}


@pytest.mark.parametrize(
    ("reach", "recipients", "options", "expected"),
    [
        (Reach("n", 10.0, opened_at=THREE), 3, {}, 500.0),
        (Reach("n", 10.0, opened_at=THREE), 4, {}, None),  # one recipient still missing
        (Reach("n", 10.0, opened_at={}), 0, {}, None),  # nothing opened: no last copy
        (Reach("n", 10.0, read_at={"FRA": 10.0625}), 1, {"stage": "read"}, 62.5),
        (Reach("n", 10.0, opened_at=THREE), 3, {"stage": "read"}, None),  # nothing read
        (Reach("n", 10.0, 10.25, opened_at=THREE), 3, {"since_published": True}, 250.0),
        (Reach("n", 10.0, None, opened_at=THREE), 3, {"since_published": True}, None),
        (
            Reach("n", 10.0, 10.25, produced_at={"FRA": 10.5}),
            1,
            {"stage": "produced", "since_published": True},
            250.0,
        ),
    ],
)
def test_to_all_is_the_time_to_the_last_of_every_recipient(
    reach: Reach, recipients: int, options: dict[str, Any], expected: float | None
) -> None:
    assert to_all(reach, recipients, **options) == expected


def test_to_first_is_the_time_to_the_earliest_copy() -> None:
    assert to_first(Reach("n", 10.0, opened_at=THREE)) == 125.0
    assert to_first(Reach("n", 10.0, read_at={"FRA": 10.5}), stage="read") == 500.0
    assert to_first(Reach("n", 10.0, read_at={"FRA": 10.5})) is None


@given(st.lists(st.floats(0, 1e5), min_size=1, max_size=50), st.floats(0, 1e5))
def test_first_never_follows_last(offsets: list[float], sent: float) -> None:
    stamps = {f"C{i}": sent + o for i, o in enumerate(offsets)}
    reach = Reach("n", sent, opened_at=stamps)
    last, first = to_all(reach, len(stamps)), to_first(reach)
    assert last is not None
    assert first is not None
    assert 0 <= first <= last


def test_red_notices_are_sound_and_each_for_a_different_person() -> None:
    codes = default_registry().codes()
    requests = red_notices(codes, 40, random.Random(1))
    assert len({subject_identity(r.subject) for r in requests}) == 40
    assert len({r.request_id for r in requests}) == 40
    now = datetime.now(UTC)
    for request in requests:
        assert request.requesting_ncb in codes
        outcome = review_notice(request, notices_in_force=(), now=now)
        assert outcome.decision is ReviewDecision.PUBLISHED, outcome.reasons
    assert red_notices(codes, 5, random.Random(1)) == requests[:5]  # seeded: the same traffic
