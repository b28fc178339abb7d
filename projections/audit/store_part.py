"""One part of the event store scanned for `kosh audit verify`: its leaf hashes, their Merkle
levels, and whether the trail recorded the same leaves at the same places.

A part is the rows with sequence numbers in (after, upto], expected to begin at leaf index
``start``. The verdict is only a shortcut: whoever puts the parts together checks that each
began where it was expected to, and rescans against the trail when it did not or when the
part does not match (to name the first event concerned).

Standard library only: on a large SQLite store `kosh audit verify` runs this module as a
helper process for the older part of the store (see projections/audit/scan.py).
"""

from __future__ import annotations

import functools
import gc
import sqlite3
import struct
import sys
from array import array
from collections.abc import Callable
from typing import ParamSpec

from projections.audit.leaf_hashes import blocks, hash_page
from projections.audit.trail_match import trail_matches

TYPE_CHECKING = False  # dataclasses, typing and pathlib would double the helper's start-up
if TYPE_CHECKING:
    from collections.abc import Sequence

    from projections.audit.leaf_hashes import Select

PAGE = 4096
CHUNK = 16 * PAGE
MMAP_BYTES = 1 << 31  # SQLite caps it at its own limit
P = ParamSpec("P")
_HEAD = struct.Struct("<QQQQ")  # rows, start, matched, blocks


class StorePart:
    __slots__ = ("start", "seqs", "blocks", "matched")

    def __init__(
        self, start: int, seqs: array[int], blocks: list[list[bytes]], matched: bool
    ) -> None:
        self.start = start  # the leaf index the part was scanned as beginning at
        self.seqs = seqs
        self.blocks = blocks  # leaf_hashes.blocks of its leaf hashes at ``start``
        self.matched = matched  # the trail holds these leaves there (as far as it counted)

    @property
    def leaves(self) -> bytes:
        """The leaf hashes, joined."""
        return b"".join(levels[0] for levels in self.blocks)


def _without_collector(scan: Callable[P, StorePart]) -> Callable[P, StorePart]:
    """Rows are tuples of ints and bytes: no cycles to collect, yet without this the
    collector would run every 700 of them and, in its older generations, walk every object
    the process holds (a tenth of this process's CPU in a long-running one)."""

    @functools.wraps(scan)
    def run(*args: P.args, **kwargs: P.kwargs) -> StorePart:
        collecting = gc.isenabled()
        gc.disable()
        try:
            return scan(*args, **kwargs)
        finally:
            if collecting:
                gc.enable()

    return run


@_without_collector
def scan_part(
    select: Select,
    table: str,
    seq: str,
    postgres: bool,
    after: int,
    upto: int | None,
    start: int,
    trail: Select,
    recorded: int,
) -> StorePart:
    """A chunk at a time, so that only folded levels (64 bytes a leaf) are kept."""
    part = StorePart(start, array("q"), [], True)
    while True:
        seqs: list[int] = []
        hashes: list[bytes] = []
        while len(seqs) < CHUNK:
            page_seqs, page_hashes = hash_page(select, table, seq, postgres, after, upto, PAGE)
            seqs += page_seqs
            hashes += page_hashes
            if len(page_seqs) < PAGE:
                break
            after = page_seqs[-1]
        at = start + len(part.seqs)
        if part.matched:
            part.matched = trail_matches(
                trail, at, recorded, seqs, b"".join(hashes), sqlite=not postgres
            )
        part.blocks += blocks(hashes, at)
        part.seqs.extend(seqs)
        if len(seqs) < CHUNK:
            return part


# -- the helper process ----------------------------------------------------------------------
def encode(part: StorePart) -> bytes:
    out = [
        _HEAD.pack(len(part.seqs), part.start, part.matched, len(part.blocks)),
        part.seqs.tobytes(),
    ]
    for levels in part.blocks:
        out.append(struct.pack("<Q", len(levels[0]) // 32))
        out += levels
    return b"".join(out)


def decode(data: bytes) -> StorePart:
    """What :func:`encode` wrote; ValueError when it is cut short or malformed."""
    try:
        count, start, matched, n_blocks = _HEAD.unpack_from(data)
        seqs = array("q")
        at = _HEAD.size + 8 * count
        seqs.frombytes(data[_HEAD.size : at])
        parts = []
        for _ in range(n_blocks):
            (rows,) = struct.unpack_from("<Q", data, at)
            at += 8
            levels = []
            for k in range(max(1, rows.bit_length())):
                levels.append(data[at : at + 32 * (rows >> k)])
                at += 32 * (rows >> k)
            parts.append(levels)
    except struct.error as exc:
        raise ValueError("the helper's answer is cut short") from exc
    if at != len(data) or len(seqs) != count or sum(len(b[0]) for b in parts) != 32 * count:
        raise ValueError("the helper's answer is cut short")
    return StorePart(start, seqs, parts, bool(matched))


def main(argv: Sequence[str]) -> None:
    """argv: store file, table, sequence column, after, upto, start, trail file, recorded."""
    store_path, table, seq, after, upto, start, trail_path, recorded = argv
    store, trail = (sqlite3.connect(p, timeout=30) for p in (store_path, trail_path))
    # Pages read from the mapped file rather than copied in by a system call each (the scan's
    # system time). An I/O error then kills this process instead of raising, which costs
    # nothing: the parent scans the part itself when the helper fails.
    store.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
    part = scan_part(
        lambda sql, params: store.execute(sql, params).fetchall(),
        table,
        seq,
        False,
        int(after),
        int(upto),
        int(start),
        lambda sql, params: trail.execute(sql, params).fetchall(),
        int(recorded),
    )
    sys.stdout.buffer.write(encode(part))


if __name__ == "__main__":
    main(sys.argv[1:])
