"""RFC 6962 Merkle tree: roots, inclusion and consistency proofs, checked against an independent
reference written here (hashlib only) and the certificate-transparency test vectors."""

from __future__ import annotations

import hashlib

import pytest

from projections.audit.leaf_hashes import levels
from projections.audit.merkle import MerkleTree
from projections.audit.proofs import EMPTY_ROOT, leaf_hash, verify_consistency, verify_inclusion

SIZES = range(1, 18)


# --- Independent reference: RFC 6962 §2.1 definitions, transcribed literally. ---------------

def ref_mth(leaves: list[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:])).digest()


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:  # §2.1.1
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return ref_path(m, leaves[:k]) + [ref_mth(leaves[k:])]
    return ref_path(m - k, leaves[k:]) + [ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:  # §2.1.2
    n = len(leaves)
    if m == n:
        return [] if complete else [ref_mth(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return ref_subproof(m, leaves[:k], complete) + [ref_mth(leaves[k:])]
    return ref_subproof(m - k, leaves[k:], False) + [ref_mth(leaves[:k])]


def data(n: int) -> list[bytes]:
    return [f"event-{i}".encode() for i in range(n)]


def flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 1]) + h[1:]


# --- certificate-transparency reference vectors (merkle_tree_test / transparency-dev). ------

CT_LEAVES = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
             bytes(range(0x50, 0x58)), bytes(range(0x60, 0x70))]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
H_96A2 = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
H_5F08 = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
H_6B47 = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
CT_CONSISTENCY = {
    (1, 8): [H_96A2, H_5F08, H_6B47],
    (6, 8): ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             CT_ROOTS[3]],
    (2, 5): [H_5F08, "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"],
}


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert MerkleTree().root() == EMPTY_ROOT
    assert MerkleTree().size == 0


def test_roots_match_certificate_transparency_vectors() -> None:
    tree = MerkleTree(CT_LEAVES)
    assert [tree.root(n).hex() for n in range(1, 9)] == CT_ROOTS


def test_inclusion_proof_of_leaf_0_in_8_matches_certificate_transparency_vector() -> None:
    assert [h.hex() for h in MerkleTree(CT_LEAVES).inclusion_proof(0, 8)] == [
        H_96A2, H_5F08, H_6B47]


@pytest.mark.parametrize(("m", "n"), sorted(CT_CONSISTENCY))
def test_consistency_proofs_match_certificate_transparency_vectors(m: int, n: int) -> None:
    tree = MerkleTree(CT_LEAVES)
    proof = tree.consistency_proof(m, n)
    assert [h.hex() for h in proof] == CT_CONSISTENCY[(m, n)]
    assert verify_consistency(m, n, tree.root(m), tree.root(n), proof)


def test_root_of_every_size_1_to_17_matches_independent_rfc6962_computation() -> None:
    leaves = data(17)
    tree = MerkleTree()
    for n in SIZES:
        tree.append(leaves[n - 1])
        assert tree.size == n
        assert tree.root() == ref_mth(leaves[:n])  # incremental (compact range) root
    for n in SIZES:
        assert tree.root(n) == ref_mth(leaves[:n])  # historical root, recomputed


def test_historical_roots_do_not_change_when_leaves_are_appended() -> None:
    tree = MerkleTree(data(5))
    before = [tree.root(n) for n in range(6)]
    tree.extend(data(40)[5:])
    assert [tree.root(n) for n in range(6)] == before
    assert tree.root() == ref_mth(data(40))


@pytest.mark.parametrize("n", SIZES)
def test_every_leaf_inclusion_proof_matches_rfc_path_and_verifies(n: int) -> None:
    leaves = data(n)
    tree = MerkleTree(leaves + [b"later"])  # proofs for a historical size, not just the latest
    root = ref_mth(leaves)
    for i in range(n):
        proof = tree.inclusion_proof(i, n)
        assert proof == ref_path(i, leaves)
        assert verify_inclusion(i, n, leaf_hash(leaves[i]), proof, root)


@pytest.mark.parametrize("n", SIZES)
def test_inclusion_fails_for_wrong_leaf_wrong_index_or_tampered_proof(n: int) -> None:
    leaves = data(n)
    tree = MerkleTree(leaves)
    root = tree.root()
    for i in range(n):
        proof = tree.inclusion_proof(i)
        assert not verify_inclusion(i, n, leaf_hash(b"forged"), proof, root)
        for j in range(n + 1):
            if j != i:
                assert not verify_inclusion(j, n, leaf_hash(leaves[i]), proof, root)
        for k in range(len(proof)):
            tampered = proof[:k] + [flip(proof[k])] + proof[k + 1:]
            assert not verify_inclusion(i, n, leaf_hash(leaves[i]), tampered, root)
        assert not verify_inclusion(i, n, leaf_hash(leaves[i]), proof + [root], root)
        assert not verify_inclusion(i, n, leaf_hash(leaves[i]), proof, flip(root))


@pytest.mark.parametrize("n", SIZES)
def test_consistency_proof_for_every_older_size_matches_rfc_and_verifies(n: int) -> None:
    leaves = data(n)
    tree = MerkleTree(leaves)
    for m in range(1, n + 1):
        proof = tree.consistency_proof(m, n)
        assert proof == ([] if m == n else ref_subproof(m, leaves, True))
        assert verify_consistency(m, n, ref_mth(leaves[:m]), ref_mth(leaves), proof)


@pytest.mark.parametrize("n", SIZES)
def test_consistency_fails_for_wrong_old_root_or_tampered_proof(n: int) -> None:
    tree = MerkleTree(data(n))
    root = tree.root()
    for m in range(1, n + 1):
        proof = tree.consistency_proof(m, n)
        old = tree.root(m)
        assert not verify_consistency(m, n, flip(old), root, proof)
        assert not verify_consistency(m, n, old, flip(root), proof)
        for k in range(len(proof)):
            tampered = proof[:k] + [flip(proof[k])] + proof[k + 1:]
            assert not verify_consistency(m, n, old, root, tampered)
        if m < n:
            assert not verify_consistency(m, n, old, root, [])
            # An old root from a different history does not verify either.
            other = MerkleTree([b"rewritten"] + data(n)[1:]).root(m)
            assert not verify_consistency(m, n, other, root, proof)


def test_consistency_edge_cases_equal_sizes_and_empty_old_tree() -> None:
    tree = MerkleTree(data(5))
    root = tree.root()
    assert tree.consistency_proof(5) == [] and tree.consistency_proof(0) == []
    assert verify_consistency(5, 5, root, root, [])
    assert not verify_consistency(5, 5, root, flip(root), [])
    assert not verify_consistency(5, 5, root, root, [root])
    assert verify_consistency(0, 5, EMPTY_ROOT, root, [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, root, [root])
    assert not verify_consistency(6, 5, root, root, [])


def test_proofs_for_a_larger_tree_match_the_reference() -> None:
    # Crosses the memoised-subtree threshold (16 leaves) several levels over.
    leaves = data(300)
    tree = MerkleTree(leaves)
    for n in (31, 64, 100, 257, 300):
        root = ref_mth(leaves[:n])
        assert tree.root(n) == root
        for i in (0, 15, 16, n // 2, n - 1):
            assert tree.inclusion_proof(i, n) == ref_path(i, leaves[:n])
        for m in (1, 16, 17, n // 3, n - 1):
            assert tree.consistency_proof(m, n) == ref_subproof(m, leaves[:n], True)


def test_out_of_range_sizes_and_indices_are_rejected() -> None:
    tree = MerkleTree(data(3))
    with pytest.raises(ValueError):
        tree.root(4)
    with pytest.raises(IndexError):
        tree.inclusion_proof(3)
    with pytest.raises(IndexError):
        tree.inclusion_proof(2, 2)
    with pytest.raises(ValueError):
        tree.consistency_proof(3, 2)


def test_append_returns_the_leaf_index_and_stores_its_hash() -> None:
    tree = MerkleTree()
    assert [tree.append(d) for d in data(3)] == [0, 1, 2]
    assert tree.leaf_hash(1) == leaf_hash(b"event-1")
    assert len(tree) == 3


def one_by_one(hashes: list[bytes]) -> MerkleTree:
    tree = MerkleTree()
    for h in hashes:
        tree.append_hash(h)
    return tree


@pytest.mark.parametrize("n", [*SIZES, 100, 300])
def test_hashes_appended_in_bulk_make_the_same_tree_as_one_by_one(n: int) -> None:
    hashes = [leaf_hash(d) for d in data(n)]
    for split in sorted({0, 1, n // 3, n // 2, n - 1, n}):
        bulk, mixed = MerkleTree(), one_by_one(hashes[:split])
        bulk.extend_hashes(hashes[:split])
        bulk.extend_hashes(hashes[split:])
        mixed.extend_hashes(hashes[split:])
        for tree in (bulk, mixed):
            reference = one_by_one(hashes)
            assert tree.root() == reference.root() == ref_mth(data(n))
            for size in {1, n // 3, n // 2, n - 1} - {0}:
                assert tree.root(size) == ref_mth(data(size))
            for i in (0, n // 2, n - 1):
                assert tree.inclusion_proof(i) == ref_path(i, data(n))
            # and what later appends build on is the same
            tree.append(b"one more")
            reference.append(b"one more")
            assert tree.root() == reference.root()
            assert tree.consistency_proof(n // 2) == reference.consistency_proof(n // 2)


def test_bulk_appends_refuse_what_is_not_a_leaf_hash_or_a_misplaced_block() -> None:
    tree = MerkleTree()
    with pytest.raises(ValueError):
        tree.extend_hashes([b"short"])
    tree.extend_hashes([leaf_hash(d) for d in data(3)])
    four = levels([leaf_hash(d) for d in data(4)])
    with pytest.raises(ValueError):  # a block of 4 cannot begin at leaf 3
        tree.extend_levels(four)
    with pytest.raises(ValueError):
        MerkleTree().extend_levels(four[:-1])  # its top level missing
    assert tree.root() == ref_mth(data(3))
