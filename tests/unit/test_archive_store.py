"""The archive file and its audit: idempotent appends, resumption, and tampering found."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from agents.ops.audit import NotProvable, prove_consistency, prove_record, verify_archive
from brokers.archive_source import ArchiveSource
from brokers.archive_store import ArchiveBusy, ArchiveStore, iter_archive
from schemas.archive import ArchivedRecord, sign_tree_head
from schemas.keys import key_id
from schemas.merkle import verify_consistency

KEY = Ed25519PrivateKey.generate()
SIGNERS: dict[str, Ed25519PublicKey] = {
    key_id(KEY.public_key().public_bytes_raw()): KEY.public_key()
}


def _record(topic: str, partition: int, offset: int) -> ArchivedRecord:
    return ArchivedRecord(
        topic,
        partition,
        offset,
        1_700_000_000_000 + offset,
        f"k{offset}".encode(),
        f"value {topic} {partition} {offset}".encode(),
        (("ce_id", f"{offset}".encode()), ("content-type", b"x")),
    )


def _interleaved(n: int) -> list[ArchivedRecord]:
    """``n`` records over two topics, three partitions, interleaved as a consumer sees them."""
    where = [("t.inbound", 0), ("t.inbound", 1), ("t.control", 0)]
    counters = dict.fromkeys(where, 0)
    out = []
    for i in range(n):
        spot = where[i % 3]
        out.append(_record(spot[0], spot[1], counters[spot]))
        counters[spot] += 1
    return out


def _archive(path: Path, records: list[ArchivedRecord], head_every: int = 10) -> None:
    with ArchiveStore.open_writer(path) as store:
        for first in range(0, len(records), head_every):
            store.append(records[first : first + head_every])
            store.add_head(sign_tree_head(store.size, store.root(), first, KEY))


@pytest.fixture
def archived(tmp_path: Path) -> Path:
    path = tmp_path / "archive.sqlite3"
    _archive(path, _interleaved(60))
    return path


def _sql(path: Path, *statements: str) -> None:
    db = sqlite3.connect(path)
    with db:
        for statement in statements:
            db.execute(statement)
    db.close()


def flip_byte(path: Path, *, leaf_index: int, at: int) -> None:
    """Change one byte of one archived record's value, as a tamperer with the file would."""
    db = sqlite3.connect(path)
    with db:
        (value,) = db.execute(
            "SELECT value FROM records WHERE leaf_index = ?", (leaf_index,)
        ).fetchone()
        changed = value[:at] + bytes([value[at] ^ 0x01]) + value[at + 1 :]
        db.execute("UPDATE records SET value = ? WHERE leaf_index = ?", (changed, leaf_index))
    db.close()


class TestAppending:
    def test_records_already_archived_are_skipped_on_a_second_append(self, tmp_path: Path) -> None:
        path = tmp_path / "a.sqlite3"
        records = _interleaved(9)
        with ArchiveStore.open_writer(path) as store:
            assert store.append(records[:6]) == records[:6]
            assert store.append(records) == records[6:]
            assert store.size == 9

    def test_a_reopened_archive_resumes_from_its_own_positions(self, tmp_path: Path) -> None:
        path = tmp_path / "a.sqlite3"
        records = _interleaved(9)
        with ArchiveStore.open_writer(path) as store:
            store.append(records[:5])
            root_before = store.root()
        with ArchiveStore.open_writer(path) as store:
            assert store.positions() == {
                ("t.inbound", 0): 1,
                ("t.inbound", 1): 1,
                ("t.control", 0): 0,
            }
            assert store.root() == root_before
            assert store.append(records) == records[5:]
        assert list(iter_archive(path)) == records

    def test_a_second_writer_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "a.sqlite3"
        with ArchiveStore.open_writer(path), pytest.raises(ArchiveBusy):
            ArchiveStore.open_writer(path)

    def test_replay_can_read_one_topic_in_archive_order(self, archived: Path) -> None:
        control = list(iter_archive(archived, topics=["t.control"]))
        assert [r.offset for r in control] == list(range(20))


class TestVerification:
    def test_an_untouched_archive_verifies(self, archived: Path) -> None:
        report = verify_archive(archived, SIGNERS)
        assert report.ok, report.findings
        assert (report.records, report.heads) == (60, 6)

    def test_one_changed_byte_names_the_record(self, archived: Path) -> None:
        flip_byte(archived, leaf_index=31, at=4)
        report = verify_archive(archived, SIGNERS)
        assert report.first is not None
        assert (report.first.leaf_index, report.first.origin) == (31, "t.inbound/1/10")

    def test_a_deleted_record_is_named(self, archived: Path) -> None:
        _sql(archived, "DELETE FROM records WHERE leaf_index = 31")
        report = verify_archive(archived, SIGNERS)
        assert report.first is not None
        assert (report.first.leaf_index, report.first.origin) == (31, "t.inbound/1/10")

    def test_a_deleted_record_with_the_rest_renumbered_is_named(self, archived: Path) -> None:
        _sql(
            archived,
            "DELETE FROM records WHERE leaf_index = 31",
            "UPDATE records SET leaf_index = leaf_index - 1 WHERE leaf_index > 31",
        )
        report = verify_archive(archived, SIGNERS)
        assert not report.ok
        assert any(f.origin == "t.inbound/1/10" for f in report.findings)

    def test_two_swapped_rows_name_the_first_one_moved(self, archived: Path) -> None:
        _sql(
            archived,
            "UPDATE records SET leaf_index = -1 WHERE leaf_index = 20",
            "UPDATE records SET leaf_index = 20 WHERE leaf_index = 40",
            "UPDATE records SET leaf_index = 40 WHERE leaf_index = -1",
        )
        report = verify_archive(archived, SIGNERS)
        assert report.first is not None
        assert report.first.leaf_index == 20
        assert report.first.origin == "t.inbound/1/13"  # leaf 40's record, now at 20

    def test_a_rewrite_with_fresh_leaf_hashes_fails_against_the_signed_heads(
        self, archived: Path, tmp_path: Path
    ) -> None:
        records = _interleaved(60)
        records[45] = dataclasses.replace(records[45], value=b"rewritten")
        forged = tmp_path / "forged.sqlite3"
        with ArchiveStore.open_writer(forged) as store:
            store.append(records)
        _sql(
            forged,
            f"ATTACH '{archived}' AS real",
            "INSERT INTO tree_heads SELECT * FROM real.tree_heads",
        )
        report = verify_archive(forged, SIGNERS)
        assert report.first is not None
        assert "root differs" in report.first.problem
        assert report.first.leaf_index == 40  # the first leaf after the last good head

    def test_a_head_not_signed_by_the_auditor_fails(self, archived: Path) -> None:
        _sql(archived, "UPDATE tree_heads SET signature = zeroblob(64) WHERE size = 30")
        report = verify_archive(archived, SIGNERS)
        assert report.first is not None
        assert "signature" in report.first.problem

    def test_a_truncated_archive_fails_against_the_last_head(self, archived: Path) -> None:
        _sql(archived, "DELETE FROM records WHERE leaf_index >= 55")
        report = verify_archive(archived, SIGNERS)
        assert any("no longer has" in f.problem for f in report.findings)


class TestProofs:
    def test_a_record_after_the_last_head_cannot_be_proved_yet(self, tmp_path: Path) -> None:
        path = tmp_path / "a.sqlite3"
        _archive(path, _interleaved(10))
        with ArchiveStore.open_writer(path) as store:
            store.append([_record("t.control", 0, 4)])
        with pytest.raises(NotProvable, match="no signed tree head"):
            prove_record(path, "t.control", 0, 4)

    def test_an_unknown_record_cannot_be_proved(self, archived: Path) -> None:
        with pytest.raises(NotProvable, match="not in the archive"):
            prove_record(archived, "t.control", 0, 999)

    def test_a_proof_is_against_the_latest_head(self, archived: Path) -> None:
        proof = prove_record(archived, "t.inbound", 0, 0)
        assert (proof["leaf_index"], proof["tree_size"]) == (0, 60)


class TestConsistency:
    @pytest.mark.parametrize(("old", "new"), [(10, 60), (20, 30), (40, 40), (10, 20)])
    def test_a_proof_between_two_heads_verifies(self, archived: Path, old: int, new: int) -> None:
        proof = prove_consistency(archived, old, new)
        hashes = [bytes.fromhex(h) for h in proof["proof"]]
        old_root = bytes.fromhex(proof["old_head"]["root"])
        new_root = bytes.fromhex(proof["new_head"]["root"])
        assert verify_consistency(old, new, old_root, new_root, hashes)
        assert (proof["old_size"], proof["new_size"]) == (old, new)

    def test_only_stored_heads_can_be_proved(self, archived: Path) -> None:
        with pytest.raises(NotProvable, match="no signed tree head of size 15"):
            prove_consistency(archived, 15, 60)

    def test_a_rewritten_leaf_breaks_the_proof(self, archived: Path) -> None:
        _sql(archived, "UPDATE records SET leaf_hash = zeroblob(32) WHERE leaf_index = 25")
        with pytest.raises(NotProvable, match="not consistent"):
            prove_consistency(archived, 20, 60)


class TestPublishedHeads:
    def test_a_stored_head_is_unpublished_until_marked(self, tmp_path: Path) -> None:
        path = tmp_path / "a.sqlite3"
        with ArchiveStore.open_writer(path) as store:
            store.append(_interleaved(6))
            store.add_head(sign_tree_head(store.size, store.root(), 1, KEY))
            store.append([_record("t.control", 0, 2)])
            store.add_head(sign_tree_head(store.size, store.root(), 2, KEY))
            store.mark_published(6)
            assert [h.size for h in store.unpublished_heads()] == [7]
        with ArchiveStore.open_writer(path) as store:  # as after a crash
            assert [h.size for h in store.unpublished_heads()] == [7]
            store.mark_published(7)
            assert store.unpublished_heads() == []
            assert [h.size for h in store.heads()] == [6, 7]

    def test_an_archive_from_before_the_flag_counts_its_heads_as_published(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "old.sqlite3"
        _archive(path, _interleaved(20))
        _sql(path, "ALTER TABLE tree_heads DROP COLUMN published")
        with ArchiveStore.open_writer(path) as store:
            assert store.unpublished_heads() == []
            assert len(store.heads()) == 2


class TestArchiveSource:
    def test_time_window_and_topics_go_into_the_query(self, archived: Path) -> None:
        since, until = 1_700_000_000_005, 1_700_000_000_012  # offsets 5..11 of each partition
        with ArchiveSource(
            archived, select=lambda t: t == "t.inbound", since_ms=since, until_ms=until
        ) as source:
            got = list(source)
            assert source.topics == ["t.inbound"]
            assert source.total == len(got) == 14
        assert {r.topic for r in got} == {"t.inbound"}
        assert all(since <= r.timestamp_ms < until for r in got)
        for partition in (0, 1):
            offsets = [r.offset for r in got if r.partition == partition]
            assert offsets == list(range(5, 12))

    def test_everything_in_leaf_order_with_bytes_intact(self, archived: Path) -> None:
        with ArchiveSource(archived) as source:
            got = list(source)
            assert source.total == 60
        stored = list(iter_archive(archived))
        assert [(r.topic, r.partition, r.offset) for r in got] == [
            (r.topic, r.partition, r.offset) for r in stored
        ]
        assert [(r.key, r.value, r.headers) for r in got] == [
            (r.key, r.value, r.headers) for r in stored
        ]

    def test_no_selected_topic_reads_nothing(self, archived: Path) -> None:
        with ArchiveSource(archived, select=lambda t: False) as source:
            assert (source.total, list(source)) == (0, [])


def test_the_consistency_command_prints_a_proof_or_says_why_not(
    archived: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agents.cli import main

    assert (
        main(["audit", "consistency", "--archive", str(archived), "--from", "20", "--to", "50"])
        == 0
    )
    proof = json.loads(capsys.readouterr().out)
    assert proof["format"] == "i247-consistency-proof/1"
    assert (proof["old_head"]["size"], proof["new_head"]["size"]) == (20, 50)
    assert (
        main(["audit", "consistency", "--archive", str(archived), "--from", "7", "--to", "50"]) == 1
    )
    assert "no signed tree head of size 7" in capsys.readouterr().out
