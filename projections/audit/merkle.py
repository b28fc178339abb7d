"""Append-only RFC 6962 Merkle tree and Ed25519 signing of its tree heads.

Memory: leaf hashes live in one bytearray (32 bytes per leaf), plus memoised roots of aligned
perfect subtrees of 2**_MEMO_LEVEL leaves and up (about 1/8 more), so 1,000,000 leaves take
about 36 MB. Appending costs amortised O(1) hashes (a "compact range": a stack of the roots of
the perfect subtrees that make up the current tree), so the current root is O(log n) to fold.
Historical roots and proofs are built from memoised perfect subtrees; only subtrees below
_MEMO_LEVEL are rehashed from the leaves. Not thread-safe: callers serialise appends.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .leaf_hashes import blocks as folded_blocks
from .proofs import EMPTY_ROOT, HASH_SIZE, leaf_hash, node_hash, tree_head_message

# Subtrees of 16 leaves or more are memoised; smaller ones cost at most 15 hashes to redo.
_MEMO_LEVEL = 4


def _split(n: int) -> int:
    """RFC 6962 §2.1: k, the largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """RFC 6962 Merkle hash tree over an append-only sequence of leaves."""

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self._leaves = bytearray()
        # _levels[k] holds the roots of the aligned perfect subtrees of 2**k leaves, in order.
        self._levels: dict[int, bytearray] = {}
        self._stack: list[bytes] = []  # compact range of the whole tree, largest subtree first
        self._root: bytes | None = EMPTY_ROOT
        self.extend(leaves)

    @property
    def size(self) -> int:
        return len(self._leaves) // HASH_SIZE

    def __len__(self) -> int:
        return self.size

    def append(self, data: bytes) -> int:
        """Hash ``data`` as a leaf and append it; return its leaf index."""
        return self.append_hash(leaf_hash(data))

    def append_hash(self, h: bytes) -> int:
        """Append a leaf already hashed with ``leaf_hash`` (as persisted by the trail)."""
        if len(h) != HASH_SIZE:
            raise ValueError("a leaf hash is 32 bytes")
        index = self.size
        self._leaves += h
        # Binary-counter carry: each trailing 1 bit of the old size is a subtree of equal size
        # to the left that the new leaf now completes.
        n, level = index, 0
        while n & 1:
            h = node_hash(self._stack.pop(), h)
            level += 1
            if level >= _MEMO_LEVEL:
                self._levels.setdefault(level, bytearray()).extend(h)
            n >>= 1
        self._stack.append(h)
        self._root = None
        return index

    def extend(self, items: Iterable[bytes]) -> None:
        for data in items:
            self.append(data)

    def extend_hashes(self, hashes: Sequence[bytes]) -> None:
        """``append_hash`` of each (the same tree), but folded a level at a time in a tight
        loop: all at once into an empty tree, else one aligned perfect block after another."""
        if not set(map(len, hashes)) <= {HASH_SIZE}:
            raise ValueError("a leaf hash is 32 bytes")
        for levels in folded_blocks(hashes, self.size):
            self.extend_levels(levels)

    def extend_levels(self, levels: Sequence[bytes]) -> None:
        """Append the leaves ``levels[0]`` (joined hashes) with their higher levels already
        folded: ``levels[k]`` joins the roots of their aligned perfect subtrees of 2**k leaves
        (as leaf_hashes.levels gives them). Either the tree is empty, or the leaves are one
        perfect subtree aligned on the tree's size."""
        count, size = len(levels[0]) // HASH_SIZE, self.size
        if len(levels) != max(1, count.bit_length()) or any(
            len(level) != HASH_SIZE * (count >> k) for k, level in enumerate(levels)
        ):
            raise ValueError("levels[k] must hold the leaf count >> k roots, up to the top")
        if count == 0:
            return
        if size and (count & (count - 1) or size % count):
            raise ValueError("only a perfect subtree aligned on the size can extend a tree")
        self._leaves += levels[0]
        for k in range(_MEMO_LEVEL, len(levels)):
            self._levels.setdefault(k, bytearray()).extend(levels[k])
        self._root = None
        if size == 0:  # the compact range: one perfect subtree per 1 bit of the count
            tops = [k for k in reversed(range(len(levels))) if count >> k & 1]
            self._stack = [bytes(levels[k][-HASH_SIZE:]) for k in tops]
            return
        level = len(levels) - 1
        h, n = bytes(levels[level]), size >> level
        while n & 1:  # carry into the equal subtrees to the left, as append_hash does
            h = node_hash(self._stack.pop(), h)
            level += 1
            if level >= _MEMO_LEVEL:
                self._levels.setdefault(level, bytearray()).extend(h)
            n >>= 1
        self._stack.append(h)

    def leaf_hash(self, index: int) -> bytes:
        self._check_index(index, self.size)
        return bytes(self._leaves[index * HASH_SIZE : (index + 1) * HASH_SIZE])

    def root(self, size: int | None = None) -> bytes:
        """RFC 6962 §2.1 MTH of the first ``size`` leaves (default: all of them)."""
        size = self._check_size(size)
        if size == self.size:
            if self._root is None:
                root = self._stack[-1]
                for left in reversed(self._stack[:-1]):
                    root = node_hash(left, root)
                self._root = root
            return self._root
        return EMPTY_ROOT if size == 0 else self._mth(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 6962 §2.1.1 PATH(index, D[0:size]): sibling hashes from the leaf upwards."""
        size = self._check_size(size)
        self._check_index(index, size)
        path: list[bytes] = []
        start, n, m = 0, size, index
        while n > 1:
            k = _split(n)
            if m < k:
                path.append(self._mth(start + k, n - k))
                n = k
            else:
                path.append(self._mth(start, k))
                start, n, m = start + k, n - k, m - k
        path.reverse()  # collected root-down; the proof is read leaf-up
        return path

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """RFC 6962 §2.1.2 PROOF(size1, D[0:size2]); empty when size1 is 0 or size2."""
        size2 = self._check_size(size2)
        if not 0 <= size1 <= size2:
            raise ValueError(f"need 0 <= size1 <= size2, got {size1}, {size2}")
        if size1 in (0, size2):
            return []
        proof: list[bytes] = []
        start, n, m, complete = 0, size2, size1, True
        while m != n:  # SUBPROOF(m, D[start:start+n], complete)
            k = _split(n)
            if m <= k:
                proof.append(self._mth(start + k, n - k))
                n = k
            else:
                proof.append(self._mth(start, k))
                start, n, m, complete = start + k, n - k, m - k, False
        if not complete:  # SUBPROOF(m, D[m], false) = {MTH(D[m])}
            proof.append(self._mth(start, n))
        proof.reverse()
        return proof

    def _mth(self, start: int, n: int) -> bytes:
        """MTH(D[start:start+n]) for n >= 1, where start is aligned as RFC 6962 splits are."""
        if n & (n - 1) == 0:
            return self._perfect(start, n.bit_length() - 1)
        k = _split(n)
        return node_hash(self._perfect(start, k.bit_length() - 1), self._mth(start + k, n - k))

    def _perfect(self, start: int, level: int) -> bytes:
        """Root of the aligned perfect subtree of 2**level leaves starting at ``start``."""
        if level == 0:
            return bytes(self._leaves[start * HASH_SIZE : (start + 1) * HASH_SIZE])
        if level >= _MEMO_LEVEL:
            j = (start >> level) * HASH_SIZE
            return bytes(self._levels[level][j : j + HASH_SIZE])
        half = 1 << (level - 1)
        return node_hash(self._perfect(start, level - 1), self._perfect(start + half, level - 1))

    def _check_size(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise ValueError(f"size {size} outside 0..{self.size}")
        return size

    @staticmethod
    def _check_index(index: int, size: int) -> None:
        if not 0 <= index < size:
            raise IndexError(f"leaf index {index} outside 0..{size - 1}")


class TreeHeadSigner:
    """Signs tree heads with an Ed25519 key; the result verifies with proofs.verify_tree_head."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key

    @classmethod
    def generate(cls) -> TreeHeadSigner:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: bytes) -> TreeHeadSigner:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("tree heads are signed with Ed25519; the PEM holds another key type")
        return cls(key)

    def private_pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_pem(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, size: int, root: bytes, timestamp_ms: int) -> dict[str, int | str]:
        if len(root) != HASH_SIZE:
            raise ValueError("root must be a 32-byte SHA-256 hash")
        signature = self._key.sign(tree_head_message(size, root, timestamp_ms))
        return {
            "tree_size": size,
            "root_hash": root.hex(),
            "timestamp_ms": timestamp_ms,
            "signature": base64.b64encode(signature).decode("ascii"),
        }


def load_or_create_signing_key(path: Path) -> TreeHeadSigner:
    """Load the PEM key at ``path``, or create one readable only by its owner (mode 0o600)."""
    try:
        return TreeHeadSigner.from_pem(path.read_bytes())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    signer = TreeHeadSigner.generate()
    try:
        # O_EXCL: never overwrite a key another process created meanwhile; theirs wins.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return TreeHeadSigner.from_pem(path.read_bytes())
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)  # the umask may only narrow it, but be explicit
        f.write(signer.private_pem())
        f.flush()
        os.fsync(f.fileno())
    return signer
