"""`kosh audit verify`: recompute the tree from the store and hold it against the trail.

Three witnesses are compared: the store's rows as they are now, the leaf hashes the trail
persisted when each event was new, and the signed tree heads. A store row that was changed,
removed, inserted or moved no longer matches the leaf recorded at its position; a trail
rewritten to match a forged store no longer matches the signed roots.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any

from infra.settings import Settings
from infra.sql import Database
from projections.audit.heads import TreeHeads, key_id, signing_key_path
from projections.audit.leaves import select, store_db
from projections.audit.merkle import MerkleTree, TreeHeadSigner
from projections.audit.proofs import verify_tree_head
from projections.audit.scan import StoreScan
from projections.audit.store_part import StorePart
from projections.audit.trail import audit_database, ensure_tables


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    events_checked: int  # store events compared with the leaf the trail recorded for them
    first_bad_seq: int | None  # the first sequence number changed, removed or moved
    problem: str  # "" when ok
    store_events: int = 0
    heads_checked: int = 0
    untracked: int = 0  # newest store events the trail has not appended yet (not a fault)


@dataclass(frozen=True)
class _Leaf:
    index: int
    seq: int
    hash: bytes


class _Trail:
    """The leaves the trail persisted, in leaf order, as one stream: windows of leaf indexes
    read in turn, up to the count taken when the check began."""

    def __init__(self, db: Database, count: int, window: int = 20_000) -> None:
        self.db, self.count, self.window = db, count, window
        self.start = 0
        self.rows: list[tuple[Any, ...]] = []
        self.at = 0  # rows before this one are taken

    def skip(self, position: int, n: int) -> bool:
        """Passes over ``n`` leaves at ``position`` that were already found in place, when
        the stream stands there with nothing read ahead."""
        if self.at < len(self.rows) or self.start != position:
            return False
        self.start += n
        return True

    def take(self, n: int) -> list[tuple[Any, ...]]:
        """The next ``n`` leaves as (leaf index, seq, hash) rows; fewer once it runs dry."""
        while len(self.rows) - self.at < n and self.start < self.count:
            rows = select(
                self.db,
                "SELECT leaf_index, seq, leaf_hash FROM audit_leaves WHERE "
                "leaf_index >= ? AND leaf_index < ? ORDER BY leaf_index",
                (self.start, min(self.count, self.start + self.window)),
            )
            if not rows:
                self.start = self.count
                break
            del self.rows[: self.at]
            self.at = 0
            self.rows += rows
            self.start = int(rows[-1][0]) + 1
        taken = self.rows[self.at : self.at + n]
        self.at += len(taken)
        return taken


def _leaf(row: tuple[Any, ...] | None) -> _Leaf | None:
    return None if row is None else _Leaf(int(row[0]), int(row[1]), bytes(row[2]))


def _check_part(trail: _Trail, size: int, recorded: int, part: StorePart) -> tuple[int, str] | None:
    """The first of the part's leaves (placed at ``size``) that the trail recorded otherwise."""
    n = min(len(part.seqs), recorded - size)
    if n <= 0 or (part.start == size and part.matched and trail.skip(size, n)):
        return None
    hashes = part.leaves
    for lo in range(0, n, trail.window):
        rows = trail.take(min(n - lo, trail.window))
        for i in range(lo, min(n, lo + trail.window)):
            row = rows[i - lo] if i - lo < len(rows) else None
            bad = _leaf_mismatch(size + i, _leaf(row), part.seqs[i], hashes[32 * i : 32 * i + 32])
            if bad is not None:
                return bad
    return None


def _leaf_mismatch(
    tree_size: int, leaf: _Leaf | None, seq: int | None, h: bytes | None
) -> tuple[int, str] | None:
    """(first bad seq, what happened) at one position, or None when the store matches."""
    at = f"leaf {tree_size}"
    if leaf is None:
        return None
    if seq is None:
        return leaf.seq, (
            f"event {leaf.seq} ({at}) is missing from the store: removed, or "
            "its sequence number changed"
        )
    if seq > leaf.seq:
        return leaf.seq, (
            f"event {leaf.seq} ({at}) is missing from the store (removed, or "
            f"its sequence number changed); the store holds {seq} there"
        )
    if seq < leaf.seq:
        return seq, (
            f"the store holds event {seq} at {at}, where the trail recorded event "
            f"{leaf.seq}: inserted afterwards or moved"
        )
    if h != leaf.hash:
        return seq, (
            f"event {seq} ({at}): the stored bytes differ from those recorded "
            "(changed, or swapped with another row)"
        )
    return None


def verify_store(settings: Settings) -> VerifyReport:
    events_file = settings.data_dir / "events.sqlite"
    if not settings.database_url and not events_file.exists():
        return VerifyReport(False, 0, None, f"no event store at {events_file}")
    audit, store = audit_database(settings), store_db(settings)
    ensure_tables(audit)
    # The trail's length and the heads before the store is read (a helper process starts up
    # in between, but is handed no chunk of the store until parts() is asked for): everything
    # they cover was in the store by then, so events appended meanwhile cannot look missing.
    recorded = int(select(audit, "SELECT COUNT(*) FROM audit_leaves")[0][0])
    tree, seqs = MerkleTree(), array("q")
    trail = _Trail(audit, recorded)
    first_bad: tuple[int, str] | None = None
    with StoreScan(store, audit, recorded) as scan:
        public_pem = _public_key(settings)
        signed = TreeHeads(audit).all()
        for part in scan.parts():
            if first_bad is None:
                first_bad = _check_part(trail, tree.size, recorded, part)
            if part.start == tree.size:
                for levels in part.blocks:
                    tree.extend_levels(levels)
            else:  # the part was folded for another place
                leaves = part.leaves
                tree.extend_hashes([leaves[i : i + 32] for i in range(0, len(leaves), 32)])
            seqs.extend(part.seqs)
    if first_bad is None and tree.size < recorded:
        rows = trail.take(1)
        first_bad = _leaf_mismatch(tree.size, _leaf(rows[0] if rows else None), None, None)
    checked = min(tree.size, recorded)
    untracked = max(0, tree.size - recorded)

    head_problem = _check_heads(signed, tree, seqs, public_pem)
    if first_bad is not None:
        seq, problem = first_bad
        if head_problem is None and signed:
            problem += (
                "; the store still matches every signed tree head, so the trail's "
                "record of this leaf was altered"
            )
        return VerifyReport(False, checked, seq, problem, tree.size, len(signed), untracked)
    if head_problem is not None:
        head_seq, problem = head_problem
        return VerifyReport(False, checked, head_seq, problem, tree.size, len(signed), untracked)
    return VerifyReport(True, checked, None, "", tree.size, len(signed), untracked)


def _public_key(settings: Settings) -> bytes | None:
    path = signing_key_path(settings)
    return TreeHeadSigner.from_pem(path.read_bytes()).public_pem() if path.exists() else None


def _check_heads(
    signed: list[dict[str, object]], tree: MerkleTree, seqs: array[int], public_pem: bytes | None
) -> tuple[int | None, str] | None:
    """The first signed head the store contradicts, located between the last head that
    still holds and this one."""
    good = 0
    for head in signed:  # ascending size
        size = int(head["tree_size"])  # type: ignore[call-overload]
        name = f"signed tree head of size {size} at {head['timestamp_ms']} ms"
        if public_pem is None or head["key_id"] != key_id(public_pem):
            return None, f"{name} was signed by key {head['key_id']}, not this deployment's"
        if not verify_tree_head(dict(head), public_pem):
            return None, f"{name}: the signature does not verify (head altered)"
        if size > tree.size:
            after = f"after event {seqs[-1]}" if seqs else "from the start"
            return None, (
                f"{name} covers {size} events but the store holds {tree.size}: "
                f"events {after} were removed"
            )
        if tree.root(size).hex() != head["root_hash"]:
            first = seqs[good]
            return first, (
                f"{name}: the store no longer yields its root; an event between "
                f"{first} and {seqs[size - 1]} was changed, removed or moved, and "
                "the trail's leaf hashes were rewritten to match"
            )
        good = size
    return None
