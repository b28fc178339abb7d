"""Leaf hashes of the event store's rows, fast enough for `kosh audit verify` over a whole
country's log: rows come in pages of plain tuples, each leaf is built by one `%` format and
hashed in a tight loop, and Merkle levels are folded a list at a time.

The bytes hashed are exactly :func:`projections.audit.proofs.encode_leaf`'s (the tests hold
the two against each other). A row whose columns are not what the store writes (edited by
hand) is re-read as it is and encoded like `leaves.read_rows` does, so it still gets a leaf
(which then mismatches the one recorded) rather than stopping the check.

Only the standard library, as the helper process of projections/audit/store_part.py needs.
"""

from __future__ import annotations

import hashlib
from operator import itemgetter

TYPE_CHECKING = False  # typing costs the helper process's start-up more than it hashes
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, TypeAlias

    Rows: TypeAlias = Sequence[Sequence[Any]]
    Select: TypeAlias = Callable[[str, Sequence[Any]], Rows]

# RFC 6962 leaf prefix 0x00, then proofs.LEAF_MAGIC, then proofs.encode_leaf's fields.
LEAF_PREFIX = b"\x00kosh-event-v1\n"
_HEADER = LEAF_PREFIX + b"%d\n%d\n%d:%b\n%d:%b\n"
_LEAF = _HEADER + b"%b"
_sha256 = hashlib.sha256
_first = itemgetter(0)


def fast_query(table: str, seq: str, postgres: bool, bounded: bool) -> str:
    """Rows as (seq, id bytes, version, topic bytes, state), ``seq > ?`` (``<= ?``) ``LIMIT ?``.
    SQLite hands text over as bytes only when it is text (anything else reads as NULL and
    sends the page down the slow path); PostgreSQL's columns are typed, so always."""
    if postgres:
        oid, topic = "convert_to(originator_id::text, 'UTF8')", "convert_to(topic, 'UTF8')"
    else:
        oid = "CASE WHEN typeof(originator_id) = 'text' THEN CAST(originator_id AS BLOB) END"
        topic = "CASE WHEN typeof(topic) = 'text' THEN CAST(topic AS BLOB) END"
    bound = f" AND {seq} <= ?" if bounded else ""
    return (
        f"SELECT {seq}, {oid}, originator_version, {topic}, state FROM {table} "
        f"WHERE {seq} > ?{bound} ORDER BY {seq} LIMIT ?"
    )


def raw_query(table: str, seq: str, bounded: bool) -> str:
    bound = f" AND {seq} <= ?" if bounded else ""
    return (
        f"SELECT {seq}, originator_id, originator_version, topic, state FROM {table} "
        f"WHERE {seq} > ?{bound} ORDER BY {seq} LIMIT ?"
    )


def fast_hashes(rows: Rows) -> list[bytes] | None:
    """Leaf hashes of rows from :func:`fast_query`, or None when one of them is not as the
    store writes rows (a `%d`, a `%b` or the hash refuses its value: text, NULL, an infinite
    REAL…). The state is hashed where sqlite3 left it, after the short header, rather than
    copied behind the header into a leaf first (measured: 1.29 -> 1.19 us a leaf)."""
    out: list[bytes] = []
    add = out.append
    try:
        for s, o, v, t, state in rows:
            h = _sha256(_HEADER % (s, v, len(o), o, len(t), t))
            h.update(state)
            add(h.digest())
    except (TypeError, ValueError, OverflowError):
        return None
    return out


def canonical(row: Sequence[Any]) -> tuple[int, str, int, str, bytes]:
    """A raw row as `leaves.StoredRow` holds it: whatever a hand edit left in a column
    becomes something the leaf encoding takes."""
    return int(row[0]), str(row[1]), _int(row[2]), str(row[3]), _bytes(row[4])


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a REAL set to 9e999
        return -1


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return b"" if value is None else str(value).encode("utf-8")


def canonical_hash(seq: int, originator_id: str, version: int, topic: str, state: bytes) -> bytes:
    oid, top = originator_id.encode("utf-8"), topic.encode("utf-8")
    return _sha256(_LEAF % (seq, version, len(oid), oid, len(top), top, state)).digest()


def hash_page(
    select: Select, table: str, seq: str, postgres: bool, after: int, upto: int | None, limit: int
) -> tuple[list[int], list[bytes]]:
    """(sequence numbers, leaf hashes) of the next ``limit`` rows after ``after``."""
    params = [after, limit] if upto is None else [after, upto, limit]
    rows = select(fast_query(table, seq, postgres, upto is not None), params)
    hashes = fast_hashes(rows)
    if hashes is None:  # rare: re-read the page as it is
        rows = [canonical(r) for r in select(raw_query(table, seq, upto is not None), params)]
        hashes = [canonical_hash(*r) for r in rows]
    return list(map(_first, rows)), hashes


def fold(level: Sequence[bytes]) -> list[bytes]:
    """One Merkle level up: RFC 6962 node hashes of each pair (an odd last node waits)."""
    pairs = iter(level)
    return [
        _sha256(b"\x01" + left + right).digest() for left, right in zip(pairs, pairs, strict=False)
    ]


def levels(hashes: Sequence[bytes]) -> list[bytes]:
    """Every level of the aligned perfect subtrees over ``hashes`` (the first leaf at an
    index divisible by their count), joined: level k holds len(hashes) >> k roots."""
    out, level = [b"".join(hashes)], hashes
    while len(level) > 1:
        level = fold(level)
        out.append(b"".join(level))
    return out


def blocks(hashes: Sequence[bytes], start: int) -> list[list[bytes]]:
    """The :func:`levels` of the leaves ``hashes`` placed at leaf index ``start``, cut into
    aligned perfect subtrees (one block, perfect or not, from index 0), as
    MerkleTree.extend_levels takes them one after another."""
    if start == 0:
        return [levels(hashes)] if hashes else []
    out, i, n = [], 0, len(hashes)
    while i < n:
        at = start + i
        level = min((n - i).bit_length(), (at & -at).bit_length()) - 1
        out.append(levels(hashes[i : i + (1 << level)]))
        i += 1 << level
    return out
