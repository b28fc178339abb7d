"""The whole store scanned for `kosh audit verify`, in parts, in store order.

On a large SQLite store the sequence numbers are cut into chunks, and a helper process
(projections/audit/store_part.py, standard library only) takes chunks from the same queue as
this process, so verification uses both cores, and the process that gets more of the CPU
(the host may be busy, the helper starts later) scans more of them. Threads would not do:
building sqlite3 rows and hashing leaves under 2 KiB both hold the GIL. The helper only
reads; a chunk it does not answer for, this process scans too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from infra.sql import Database
from projections.audit.leaves import events_table, no_table, select
from projections.audit.store_part import (
    StorePart,
    chunk_bounds,
    chunk_plan,
    chunk_queue,
    claim,
    decode_chunks,
    scan_part,
    sqlite_readers,
    without_collector,
)

if TYPE_CHECKING:
    from projections.audit.leaf_hashes import Select

HELPER_MIN_ROWS = 20_000  # below this, starting a process costs more than it saves
# Sequence numbers per chunk, at least: a power of two, so that a chunk of a dense store is
# a perfect subtree in its place and is folded where it is scanned. Small enough that the
# process finishing first waits little for the other, large enough to cost little to hand out.
CHUNK = 4096
# The last chunks are cut finer: whoever finishes first waits for the other to end its chunk,
# up to a whole one (4096 rows, some 15 ms of CPU here; 512 rows, 2 ms).
TAIL_CHUNKS = 2  # of CHUNK sequence numbers, cut into ...
FINE_SHIFT = 3  # ... chunks of CHUNK >> FINE_SHIFT ...
FINE_MIN = 512  # ... when that is at least this many (one page: store_part.PAGE)
MAX_CHUNKS = 1024  # a larger store gets larger chunks: the queue is one pipe write (4 KiB)
_ROOT = Path(__file__).resolve().parents[2]  # the directory holding the projections package


class StoreScan:
    """Parts of the store that together hold every row, in store order; ``recorded`` is how
    many leaves of the trail (audit_leaves) they are held against.

    The helper, if any, starts as the scan is made, so that its interpreter starts up while
    this process does whatever else comes before :meth:`parts` (reading the signed heads);
    no chunk is handed out before then. Use it as a context manager: leaving it stops a
    helper no one asked for its chunks."""

    def __init__(self, store: Database, audit: Database, recorded: int) -> None:
        self.store, self.audit, self.recorded = store, audit, recorded
        self.chunks = _chunks(store, audit)  # a chunk plan, or None: one part, scanned here
        self.helper: subprocess.Popen[bytes] | None = None
        self._fds: list[int] = []
        self._readers: tuple[Select, Select, Callable[[], None]] | None = None
        self._answers: BinaryIO | None = None  # where the helper writes its parts
        if self.chunks is not None:
            self._queue, self._fill = os.pipe()
            self._fds = [self._queue, self._fill]
            self._answers = tempfile.TemporaryFile()
            self.helper = _start_helper(
                store, audit, recorded, self.chunks, self._queue, self._answers
            )

    def __enter__(self) -> StoreScan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.helper is not None and self.helper.poll() is None:
            self.helper.kill()
            self.helper.wait()
        self._close_fds()
        if self._answers is not None:
            self._answers.close()
            self._answers = None
        self._close_readers()

    def _close_readers(self) -> None:
        if self._readers is not None:
            self._readers[2]()
            self._readers = None

    def _close_fds(self) -> None:
        while self._fds:
            os.close(self._fds.pop())

    def parts(self) -> Iterator[StorePart]:
        helper = self.helper
        if self.chunks is None or helper is None:
            self._close_fds()
            try:
                whole = self._scan(0, None, 0)
            except Exception as exc:
                if not no_table(exc):
                    raise
                return
            yield whole
            return
        count = self.chunks[-1]
        try:
            os.write(self._fill, chunk_queue(count))  # at most PIPE_BUF: written at once
            self._fds.remove(self._fill)
            os.close(self._fill)  # the queue now ends where the chunks do
            mine = self._claim_chunks()
            self._close_readers()  # while the helper ends its last chunk (unmapping takes ms)
            theirs = {} if len(mine) == count else self._answer(helper)
        finally:
            self.close()
        for chunk in range(count):
            part = mine.get(chunk) or theirs.get(chunk)
            yield part if part is not None else self._scan(*chunk_bounds(chunk, self.chunks))

    @without_collector
    def _claim_chunks(self) -> dict[int, StorePart]:
        assert self.chunks is not None
        mine = {}
        while (chunk := claim(self._queue)) is not None:
            mine[chunk] = self._scan(*chunk_bounds(chunk, self.chunks))
        return mine

    def _scan(self, after: int, upto: int | None, start: int) -> StorePart:
        store = self.store
        table, seq = events_table(store)
        rows, trail = self._selects()
        return scan_part(
            rows, table, seq, store.is_postgres, after, upto, start, trail, self.recorded
        )

    def _selects(self) -> tuple[Select, Select]:
        """SQLite files are read as the helper reads them (store_part.sqlite_readers), not
        through the shared connections, whose every page read is a system call."""
        store, audit = self.store, self.audit
        if store.is_postgres or store.sqlite_path is None or audit.sqlite_path is None:
            return (
                lambda sql, params: select(store, sql, params),
                lambda sql, params: select(audit, sql, params),
            )
        if self._readers is None:
            self._readers = sqlite_readers(str(store.sqlite_path), str(audit.sqlite_path))
        return self._readers[0], self._readers[1]

    def _answer(self, helper: subprocess.Popen[bytes]) -> dict[int, StorePart]:
        """The helper's parts by chunk, or none at all if it failed."""
        if helper.wait() != 0 or self._answers is None:
            return {}
        self._answers.seek(0)
        try:
            return decode_chunks(self._answers.read())
        except ValueError:
            return {}


def _start_helper(
    store: Database,
    audit: Database,
    recorded: int,
    plan: Sequence[int],
    queue: int,
    answers: BinaryIO,
) -> subprocess.Popen[bytes] | None:
    table, seq = events_table(store)
    args = [str(store.sqlite_path), table, seq, str(audit.sqlite_path), str(recorded)]
    try:
        return subprocess.Popen(
            # -I -S: no site packages or environment; it needs only the standard library.
            [sys.executable, "-I", "-S", "-c", _HELPER, str(_ROOT), *args]
            + [str(n) for n in plan]
            + [str(queue)],
            stdout=answers,
            stderr=subprocess.DEVNULL,
            pass_fds=(queue,),
        )
    except OSError:  # no interpreter to start (embedded): scan here alone
        return None


_HELPER = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from projections.audit.store_part import main; main(sys.argv[2:])"
)


def _chunks(store: Database, audit: Database) -> tuple[int, int, int, int] | None:
    """The chunk plan (store_part.chunk_plan), or None to scan the store here in one part."""
    if store.is_postgres or store.sqlite_path is None or audit.sqlite_path is None:
        return None
    table, seq = events_table(store)
    try:  # the highest number counts the rows closely enough (SQLite numbers them densely)
        total = select(store, f"SELECT MAX({seq}) FROM {table}")[0][0]
    except Exception as exc:
        if no_table(exc):
            return None
        raise
    if not isinstance(total, int) or total < HELPER_MIN_ROWS:
        return None
    size = CHUNK
    fine_chunks = TAIL_CHUNKS << FINE_SHIFT
    while -(-total // size) > MAX_CHUNKS - fine_chunks:
        size *= 2
    fine = size >> FINE_SHIFT
    return chunk_plan(total, size, fine if fine >= FINE_MIN else 0, TAIL_CHUNKS)
