"""Diffusions (expand, ledger, recall) and a recipient's NoticeView converging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.bodies import DiffusionBody
from schemas.notice_view import NoticeView, Update
from schemas.notices import (
    Diffusion,
    DiffusionRecall,
    Notice,
    NoticeColour,
    NoticeState,
    PersonSubject,
    RecallReason,
)
from schemas.registry import Region, UnknownMember, default_registry
from streams.core.diffusions import (
    AlreadyRecalled,
    ConflictingDiffusion,
    DiffusionLedger,
    UnknownDiffusion,
    diffusion_from_message,
    expand_diffusion,
)
from tests.unit.factories import make_header

REGISTRY = default_registry()
T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
EUROPE = tuple(m.iso3 for m in REGISTRY.in_region(Region.EUROPE))


def uid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def diffusion(n: int = 1, **changes: Any) -> Diffusion:
    fields: dict[str, Any] = {
        "diffusion_id": uid(n), "sender": "FRA", "ncbs": ("USA",), "region": Region.EUROPE,
        "subject": "Locate", "facts": "f", "sent_at": T0,
    }  # fmt: skip
    return Diffusion(**(fields | changes))


@pytest.mark.parametrize(
    ("ncbs", "region", "expected"),
    [
        (("USA", "DEU"), None, ("DEU", "USA")),
        (("USA",), Region.EUROPE, tuple(sorted({*EUROPE, "USA"} - {"FRA"}))),
        ((), Region.EUROPE, tuple(c for c in EUROPE if c != "FRA")),
        (("FRA", "ITA"), None, ("ITA",)),  # never back to its sender
    ],
    ids=["named NCBs", "named plus region", "region only", "sender dropped"],
)
def test_a_diffusion_reaches_the_named_ncbs_and_the_regions_members(
    ncbs: tuple[str, ...], region: Region | None, expected: tuple[str, ...]
) -> None:
    assert expand_diffusion(diffusion(ncbs=ncbs, region=region), REGISTRY) == expected


def test_a_diffusion_to_no_one_or_to_a_non_member_is_refused() -> None:
    with pytest.raises(ValueError, match="needs recipients"):
        diffusion(ncbs=(), region=None)
    with pytest.raises(UnknownMember, match="not an INTERPOL member"):
        expand_diffusion(diffusion(ncbs=("PRK",)), REGISTRY)


def test_a_diffusion_record_is_built_from_the_message_that_carried_it() -> None:
    header = make_header(recipients=["DEU", "ITA", "team:imest-lyon"], created_at=T0)
    body = DiffusionBody(subject="Locate", text="f", purpose="locate", region=Region.AFRICA)
    record = diffusion_from_message(header, body)
    assert (record.diffusion_id, record.sender) == (header.message_id, header.sender)
    assert (record.ncbs, record.region, record.facts) == (("DEU", "ITA"), Region.AFRICA, "f")


def test_a_recall_goes_to_every_original_recipient_once() -> None:
    ledger = DiffusionLedger(REGISTRY)
    reached = ledger.record(diffusion())
    assert ledger.record(diffusion()) == reached  # redelivered: harmless
    recall = DiffusionRecall(diffusion_id=uid(1), reason=RecallReason.COMPLIANCE_FINDING)
    effect = ledger.recall(recall)
    assert (effect.recall, effect.sender, effect.recipients) == (recall, "FRA", reached)
    assert len(reached) == len(EUROPE)  # Europe less FRA, plus USA
    assert ledger.recalled() == (uid(1),)
    with pytest.raises(AlreadyRecalled, match="already recalled"):
        ledger.recall(recall)


def test_recalling_an_unknown_diffusion_or_reusing_an_id_raises() -> None:
    ledger = DiffusionLedger(REGISTRY)
    with pytest.raises(UnknownDiffusion, match="no diffusion"):
        ledger.recall(DiffusionRecall(diffusion_id=uid(9), reason=RecallReason.SUPERSEDED))
    ledger.record(diffusion())
    with pytest.raises(ConflictingDiffusion, match="new message id"):
        ledger.record(diffusion(subject="Other"))
    assert len(ledger) == 1
    assert ledger.sent() == (diffusion(),)


# --- NoticeView ---


def notice(n: int, version: int, state: NoticeState = NoticeState.PUBLISHED) -> Notice:
    return Notice(
        notice_id=f"red-2026-{n:06d}", request_id=uid(n), colour=NoticeColour.RED, state=state,
        requester="FRA", subject=PersonSubject(family_name="DOE"), facts="f", version=version,
        published_at=T0, expires_at=T0 + timedelta(days=1826),
    )  # fmt: skip


def test_a_stale_version_never_overwrites_a_newer_one() -> None:
    view = NoticeView([notice(1, 3, NoticeState.SUSPENDED)])
    assert view.apply(notice(1, 2)) is False
    assert view.latest("red-2026-000001") == notice(1, 3, NoticeState.SUSPENDED)
    assert dict(view.in_force()) == {}
    assert list(view.suspended()) == ["red-2026-000001"]


@pytest.mark.parametrize("final", [NoticeState.CANCELLED, NoticeState.EXPIRED])
def test_cancelled_or_expired_leaves_the_notices_in_force(final: NoticeState) -> None:
    view = NoticeView([notice(1, 1), notice(2, 1), notice(1, 2, final)])
    assert list(view.in_force()) == ["red-2026-000002"]


def test_a_recall_purges_the_copy_even_when_it_arrives_first() -> None:
    recall = DiffusionRecall(diffusion_id=uid(1), reason=RecallReason.COMPLIANCE_FINDING)
    view = NoticeView([recall, diffusion(1), diffusion(2)])
    assert list(view.diffusions()) == [uid(2)]


STATES = [NoticeState.PUBLISHED, NoticeState.SUSPENDED, NoticeState.CANCELLED]
notices = st.builds(notice, st.integers(1, 3), st.integers(1, 4), st.sampled_from(STATES))
diffusions = st.builds(diffusion, st.integers(1, 4))
recalls = st.builds(
    DiffusionRecall,
    diffusion_id=st.integers(1, 4).map(uid),
    reason=st.sampled_from(list(RecallReason)),
)
updates = st.lists(st.one_of(notices, diffusions, recalls), max_size=25)


@given(updates, st.randoms(use_true_random=False), st.lists(st.integers(0, 24), max_size=10))
def test_any_order_and_duplication_of_the_same_updates_gives_the_same_view(
    batch: list[Update], rng: Any, repeats: list[int]
) -> None:
    shuffled = list(batch) + [batch[i] for i in repeats if i < len(batch)]
    rng.shuffle(shuffled)
    assert NoticeView(batch).snapshot() == NoticeView(shuffled).snapshot()


@given(updates)
def test_the_view_holds_each_notices_highest_version_and_no_recalled_copy(
    batch: list[Update],
) -> None:
    view = NoticeView(batch)
    for item in batch:
        if isinstance(item, Notice):
            latest = view.latest(item.notice_id)
            assert latest is not None
            assert latest.version >= item.version
    recalled = {u.diffusion_id for u in batch if isinstance(u, DiffusionRecall)}
    assert recalled.isdisjoint(view.diffusions())
