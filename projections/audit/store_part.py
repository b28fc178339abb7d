"""One part of the event store scanned for `kosh audit verify`: its leaf hashes, their Merkle
levels, and whether the trail recorded the same leaves at the same places.

A part is the rows with sequence numbers in (after, upto], expected to begin at leaf index
``start``. The verdict is only a shortcut: whoever puts the parts together checks that each
began where it was expected to, and rescans against the trail when it did not or when the
part does not match (to name the first event concerned).

Standard library only: on a large SQLite store `kosh audit verify` runs this module as a
helper process that takes chunks of the store from the same queue as the parent (see
projections/audit/scan.py).
"""

from __future__ import annotations

import gc
import os
import sqlite3
import struct
import sys
from array import array

from infra.heap import without_collector
from projections.audit.leaf_hashes import blocks, hash_page
from projections.audit.trail_match import trail_matches

TYPE_CHECKING = False  # dataclasses, typing and pathlib would double the helper's start-up
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from projections.audit.leaf_hashes import Select

# Rows read and folded at a time: a page's rows, leaves and levels stay in the core's cache
# between SQLite handing them over and their hashes being folded (4096 rows at a time ran a
# tenth slower).
PAGE = 512
WINDOW = 8 * PAGE  # leaves held against the trail in one query
MMAP_BYTES = 1 << 31  # SQLite caps it at its own limit
_HEAD = struct.Struct("<QQQQ")  # rows, start, matched, blocks
_RECORD = struct.Struct("<QQ")  # chunk number, bytes of its encoded part
CLAIM = 4  # bytes of one chunk number in the queue


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


@without_collector
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
    """A page at a time, folded while it is fresh, so that only folded levels (64 bytes a
    leaf) are kept; a window of pages at a time is held against the trail."""
    part = StorePart(start, array("q"), [], True)
    window_at, window_seqs, window_leaves = start, [], []
    while True:
        seqs, hashes = hash_page(select, table, seq, postgres, after, upto, PAGE)
        at = start + len(part.seqs)
        folded = blocks(hashes, at)
        part.blocks += folded
        part.seqs.extend(seqs)
        done = len(seqs) < PAGE
        if part.matched:
            window_seqs += seqs
            window_leaves += [levels[0] for levels in folded]
            if done or len(window_seqs) >= WINDOW:
                leaves = b"".join(window_leaves)
                part.matched = trail_matches(
                    trail, window_at, recorded, window_seqs, leaves, sqlite=not postgres
                )
                window_at += len(window_seqs)
                window_seqs, window_leaves = [], []
        if done:
            return part
        after = seqs[-1]


def chunk_bounds(chunk: int, plan: Sequence[int]) -> tuple[int, int | None, int]:
    """(after, upto, start) of chunk ``chunk`` of a plan (size, fine, big, count): ``big``
    chunks of ``size`` sequence numbers from 0, then chunks of ``fine`` up to ``count`` in
    all, the last one open-ended so that it takes whatever was appended since the chunks were
    counted; placed where SQLite's dense numbering from 1 puts them."""
    size, fine, big, count = plan
    after = chunk * size if chunk < big else big * size + (chunk - big) * fine
    width = size if chunk < big else fine
    return after, None if chunk == count - 1 else after + width, after


def chunk_plan(total: int, size: int, fine: int, tail: int) -> tuple[int, int, int, int]:
    """(size, fine, big, count): ``total`` sequence numbers in chunks of ``size``, but the
    last ``tail`` of them cut into chunks of ``fine``, so that the process that takes the last
    chunk ends soon after the other (which waits for it), yet few chunks are handed out."""
    count = -(-total // size)
    big = max(0, count - tail) if 0 < fine < size else count
    return size, fine, big, big + -(-(total - big * size) // fine) if big < count else count


def claim(queue: int) -> int | None:
    """The next chunk number from the queue both processes take from, None once it is empty.
    A pipe hands each read of a few bytes to one reader whole, so no chunk goes to both."""
    data = os.read(queue, CLAIM)
    return int.from_bytes(data, "little") if len(data) == CLAIM else None


def chunk_queue(count: int) -> bytes:
    """What :func:`claim` takes ``count`` chunks from, lowest first."""
    return b"".join(k.to_bytes(CLAIM, "little") for k in range(count))


def sqlite_readers(store_path: str, trail_path: str) -> tuple[Select, Select, Callable[[], None]]:
    """(store select, trail select, close) on connections of their own, for scanning.

    Pages are read from the mapped files rather than copied in by a system call each: the
    shared connections' page reads were 40 ms of system time in a 100,000-event scan (about
    what touching the mapping costs in user time instead, so this is for the covering index
    and the plain cursor more than for the mapping). SQLite reports an I/O error on a mapped
    file as a SIGBUS, which ends the process: for the helper that costs nothing (the parent
    scans its chunks itself), and `kosh audit verify` would stop on the error anyway.
    """
    store, trail = (sqlite3.connect(p, timeout=30) for p in (store_path, trail_path))
    for conn in (store, trail):
        conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")

    def close() -> None:
        store.close()
        trail.close()

    return (
        lambda sql, params: store.execute(sql, params).fetchall(),
        lambda sql, params: trail.execute(sql, params).fetchall(),
        close,
    )


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


def decode(data: bytes | memoryview) -> StorePart:
    """What :func:`encode` wrote; ValueError when it is cut short or malformed. The levels
    are views of ``data``, not copies: MerkleTree.extend_levels copies them once, into the
    tree (copying megabytes of fresh memory costs a page fault every 4 KiB)."""
    data = memoryview(data)
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
    # Views of `data` where hashes are expected: every reader of them takes bytes-likes.
    return StorePart(start, seqs, parts, bool(matched))  # type: ignore[arg-type]


def encode_chunks(parts: dict[int, StorePart]) -> bytes:
    out = []
    for chunk, part in parts.items():
        data = encode(part)
        out += [_RECORD.pack(chunk, len(data)), data]
    return b"".join(out)


def decode_chunks(data: bytes | memoryview) -> dict[int, StorePart]:
    """What :func:`encode_chunks` wrote; ValueError when it is cut short or malformed."""
    parts, at, data = {}, 0, memoryview(data)
    while at < len(data):
        try:
            chunk, size = _RECORD.unpack_from(data, at)
        except struct.error as exc:
            raise ValueError("the helper's answer is cut short") from exc
        at += _RECORD.size
        if at + size > len(data):
            raise ValueError("the helper's answer is cut short")
        parts[chunk] = decode(data[at : at + size])
        at += size
    return parts


def main(argv: Sequence[str]) -> None:
    """argv: store file, table, sequence column, trail file, recorded, the chunk plan's four
    numbers (chunk_plan), the queue's file descriptor. Writes the parts of the chunks it took."""
    store_path, table, seq, trail_path, recorded, *plan_args, queue = argv
    plan = [int(n) for n in plan_args]
    gc.disable()  # as scan_part does; nothing lives long enough here to need collecting
    rows, leaves, _ = sqlite_readers(store_path, trail_path)
    out = sys.stdout.buffer
    while (chunk := claim(int(queue))) is not None:
        after, upto, start = chunk_bounds(chunk, plan)
        part = scan_part(rows, table, seq, False, after, upto, start, leaves, int(recorded))
        # Each part as soon as it is scanned, into a file (scan.StoreScan gives one) that never
        # blocks: encoded all at the end and sent through a pipe, the parts of half a 100,000
        # event store kept the parent waiting 14-19 ms once it had scanned its own chunks
        # (3-6 ms now, measured, the finer last chunks included).
        out.write(encode_chunks({chunk: part}))
    out.flush()
    os._exit(0)  # the parent waits for the exit: skip freeing every object on the way out


if __name__ == "__main__":
    main(sys.argv[1:])
