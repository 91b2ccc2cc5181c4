"""The archive's contract: leaf encoding, incremental roots, proofs from levels, tree heads."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from schemas import merkle
from schemas.archive import (
    ArchivedRecord,
    BadLeaf,
    MerkleAccumulator,
    TreeHead,
    TreeLevels,
    decode_leaf,
    encode_leaf,
    record_leaf_hash,
    sign_tree_head,
)

optional_bytes = st.none() | st.binary(max_size=40)
records = st.builds(
    ArchivedRecord,
    topic=st.text(min_size=1, max_size=30),
    partition=st.integers(0, 2**31 - 1),
    offset=st.integers(0, 2**63 - 1),
    timestamp_ms=st.integers(-(2**63), 2**63 - 1),
    key=optional_bytes,
    value=optional_bytes,
    headers=st.lists(st.tuples(st.text(max_size=12), optional_bytes), max_size=5).map(tuple),
)


def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


class TestLeafEncoding:
    @given(st.integers(0, 2**64 - 1), records)
    def test_decoding_an_encoding_gives_back_the_position_and_the_record(
        self, index: int, record: ArchivedRecord
    ) -> None:
        assert decode_leaf(encode_leaf(index, record)) == (index, record)

    @given(st.integers(0, 1000), records, st.integers(0, 1000), records)
    def test_different_records_or_positions_never_share_an_encoding(
        self, i: int, a: ArchivedRecord, j: int, b: ArchivedRecord
    ) -> None:
        if (i, a) != (j, b):
            assert encode_leaf(i, a) != encode_leaf(j, b)

    @pytest.mark.parametrize(
        ("a", "b"),
        [
            # bytes moved across a field boundary
            (("t", b"ab", b"c", ()), ("t", b"a", b"bc", ())),
            # a null key is not an empty key
            (("t", None, b"v", ()), ("t", b"", b"v", ())),
            # header order is part of the record
            (
                ("t", None, b"", (("a", b"1"), ("b", b"2"))),
                ("t", None, b"", (("b", b"2"), ("a", b"1"))),
            ),
            # a header's name and value cannot trade bytes
            (("t", None, b"", (("ab", b"c"),)), ("t", None, b"", (("a", b"bc"),))),
            # the topic cannot borrow from the key
            (("t1", b"x", b"", ()), ("t", b"1x", b"", ())),
        ],
    )
    def test_look_alike_records_hash_apart(
        self,
        a: tuple[str, bytes | None, bytes, tuple[tuple[str, bytes], ...]],
        b: tuple[str, bytes | None, bytes, tuple[tuple[str, bytes], ...]],
    ) -> None:
        ra = ArchivedRecord(a[0], 0, 0, 0, a[1], a[2], a[3])
        rb = ArchivedRecord(b[0], 0, 0, 0, b[1], b[2], b[3])
        assert record_leaf_hash(0, ra) != record_leaf_hash(0, rb)

    def test_the_same_record_at_another_position_is_another_leaf(self) -> None:
        record = ArchivedRecord("t", 0, 5, 1, b"k", b"v")
        assert record_leaf_hash(1, record) != record_leaf_hash(2, record)

    def test_the_leaf_hash_is_rfc6962s_over_the_encoding(self) -> None:
        record = ArchivedRecord("t", 1, 2, 3, b"k", b"v", (("h", b"x"),))
        expected = hashlib.sha256(b"\x00" + encode_leaf(9, record)).digest()
        assert record_leaf_hash(9, record) == expected

    @pytest.mark.parametrize(
        "damage",
        [
            lambda b: b[:-1],
            lambda b: b + b"\x00",
            lambda b: b"x" + b[1:],
        ],
    )
    def test_damaged_inputs_are_refused(self, damage: object) -> None:
        data = encode_leaf(0, ArchivedRecord("t", 0, 0, 0, b"k", b"v", (("h", b"x"),)))
        with pytest.raises(BadLeaf):
            decode_leaf(damage(data))  # type: ignore[operator]


class TestIncrementalTree:
    @pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 33, 64, 100])
    def test_the_accumulated_root_is_rfc6962s_root(self, n: int) -> None:
        tree = MerkleAccumulator()
        leaves = _leaves(n)
        for leaf in leaves:
            tree.append(leaf)
        assert tree.size == n
        assert tree.root() == merkle.root(leaves)

    @pytest.mark.parametrize("n", range(1, 34))
    def test_proofs_from_levels_equal_the_reference_proofs(self, n: int) -> None:
        leaves = _leaves(40)
        levels = TreeLevels(leaves)
        assert levels.mth(0, n) == merkle.root(leaves[:n])
        for m in range(n):
            assert levels.inclusion_proof(m, n) == merkle.inclusion_proof(m, leaves[:n])
        for m in range(1, n + 1):
            assert levels.consistency_proof(m, n) == merkle.consistency_proof(m, leaves[:n])

    def test_a_range_that_is_no_node_is_refused(self) -> None:
        with pytest.raises(ValueError, match="not a node"):
            TreeLevels(_leaves(8)).mth(1, 3)


class TestTreeHeads:
    key = Ed25519PrivateKey.generate()

    def test_a_signed_head_verifies_with_its_key_and_survives_json(self) -> None:
        head = sign_tree_head(3, merkle.root(_leaves(3)), 1_700_000_000_000, self.key)
        again = TreeHead.from_json(head.to_json())
        assert again == head
        assert again.verify(self.key.public_key())

    @pytest.mark.parametrize("field", ["size", "root", "timestamp_ms"])
    def test_changing_any_signed_field_breaks_the_signature(self, field: str) -> None:
        head = sign_tree_head(3, merkle.root(_leaves(3)), 1_700_000_000_000, self.key)
        changed = {
            "size": 4,
            "root": merkle.root(_leaves(4)),
            "timestamp_ms": 1_700_000_000_001,
        }[field]
        forged = TreeHead(**{**{f: getattr(head, f) for f in head.__slots__}, field: changed})
        assert not forged.verify(self.key.public_key())

    def test_another_key_does_not_verify_it(self) -> None:
        head = sign_tree_head(1, _leaves(1)[0], 0, self.key)
        assert not head.verify(Ed25519PrivateKey.generate().public_key())
