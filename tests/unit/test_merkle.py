"""RFC 6962 Merkle trees: roots, inclusion and consistency proofs, and their refusals."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

# RFC 6962's reference test data (certificate-transparency-go merkle tests): 8 leaves.
INPUTS = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
LEAVES = [leaf_hash(d) for d in INPUTS]


def test_empty_tree_is_the_hash_of_nothing() -> None:
    assert root([]) == hashlib.sha256(b"").digest()


@pytest.mark.parametrize(("size", "expected"), sorted(ROOTS.items()))
def test_roots_match_the_reference_vectors(size: int, expected: str) -> None:
    assert root(LEAVES[:size]).hex() == expected


def test_an_odd_tree_splits_at_the_largest_power_of_two() -> None:
    a, b, c = LEAVES[:3]
    assert root([a, b, c]) == node_hash(node_hash(a, b), c)


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=40, unique=True), st.data())
def test_every_leaf_has_a_verifying_inclusion_proof(data: list[bytes], draw: st.DataObject) -> None:
    leaves = [leaf_hash(d) for d in data]
    index = draw.draw(st.integers(0, len(leaves) - 1))
    head = root(leaves)
    proof = inclusion_proof(index, leaves)
    assert verify_inclusion(index, len(leaves), leaves[index], proof, head)
    assert not verify_inclusion(index, len(leaves), leaf_hash(b"forged"), proof, head)
    if len(leaves) > 1:
        assert not verify_inclusion(
            (index + 1) % len(leaves), len(leaves), leaves[index], proof, head
        )


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=40), st.data())
def test_a_grown_log_is_consistent_with_every_earlier_head(
    data: list[bytes], draw: st.DataObject
) -> None:
    leaves = [leaf_hash(d) for d in data]
    old = draw.draw(st.integers(1, len(leaves)))
    proof = consistency_proof(old, leaves)
    assert verify_consistency(old, len(leaves), root(leaves[:old]), root(leaves), proof)


def test_a_rewritten_history_is_not_consistent() -> None:
    rewritten = [LEAVES[0], leaf_hash(b"rewritten"), *LEAVES[2:]]
    proof = consistency_proof(3, rewritten)
    assert not verify_consistency(3, 8, root(LEAVES[:3]), root(rewritten), proof)


def test_proofs_outside_the_tree_are_refused() -> None:
    with pytest.raises(IndexError):
        inclusion_proof(8, LEAVES)
    with pytest.raises(ValueError, match="consistency"):
        consistency_proof(9, LEAVES)
