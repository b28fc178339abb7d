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
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from infra.sql import Database
from projections.audit.leaves import events_table, no_table, select
from projections.audit.store_part import (
    StorePart,
    chunk_bounds,
    chunk_queue,
    claim,
    decode_chunks,
    scan_part,
    without_collector,
)

HELPER_MIN_ROWS = 20_000  # below this, starting a process costs more than it saves
# Sequence numbers per chunk, at least: a power of two, so that a chunk of a dense store is
# a perfect subtree in its place and is folded where it is scanned. Small enough that the
# process finishing first waits little for the other, large enough to cost little to hand out.
CHUNK = 4096
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
        self.chunks = _chunks(store, audit)  # (size, count) or None: one part, scanned here
        self.helper: subprocess.Popen[bytes] | None = None
        self._fds: list[int] = []
        if self.chunks is not None:
            self._queue, self._fill = os.pipe()
            self._fds = [self._queue, self._fill]
            self.helper = _start_helper(store, audit, recorded, *self.chunks, self._queue)

    def __enter__(self) -> StoreScan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.helper is not None and self.helper.poll() is None:
            self.helper.kill()
            self.helper.wait()
        self._close_fds()

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
        size, count = self.chunks
        try:
            os.write(self._fill, chunk_queue(count))  # at most PIPE_BUF: written at once
            self._fds.remove(self._fill)
            os.close(self._fill)  # the queue now ends where the chunks do
            mine = self._claim_chunks()
            theirs = {} if len(mine) == count else self._answer(helper)
        finally:
            self.close()
        for chunk in range(count):
            part = mine.get(chunk) or theirs.get(chunk)
            yield part if part is not None else self._scan(*chunk_bounds(chunk, size, count))

    @without_collector
    def _claim_chunks(self) -> dict[int, StorePart]:
        assert self.chunks is not None
        size, count = self.chunks
        mine = {}
        while (chunk := claim(self._queue)) is not None:
            mine[chunk] = self._scan(*chunk_bounds(chunk, size, count))
        return mine

    def _scan(self, after: int, upto: int | None, start: int) -> StorePart:
        store, audit = self.store, self.audit
        table, seq = events_table(store)

        def rows(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
            return select(store, sql, params)

        def trail(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
            return select(audit, sql, params)

        return scan_part(
            rows, table, seq, store.is_postgres, after, upto, start, trail, self.recorded
        )

    @staticmethod
    def _answer(helper: subprocess.Popen[bytes]) -> dict[int, StorePart]:
        """The helper's parts by chunk, or none at all if it failed."""
        out, _ = helper.communicate()
        if helper.returncode != 0:
            return {}
        try:
            return decode_chunks(out)
        except ValueError:
            return {}


def _start_helper(
    store: Database, audit: Database, recorded: int, size: int, count: int, queue: int
) -> subprocess.Popen[bytes] | None:
    table, seq = events_table(store)
    args = [str(store.sqlite_path), table, seq, str(audit.sqlite_path), str(recorded)]
    try:
        return subprocess.Popen(
            # -I -S: no site packages or environment; it needs only the standard library.
            [sys.executable, "-I", "-S", "-c", _HELPER, str(_ROOT), *args]
            + [str(size), str(count), str(queue)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            pass_fds=(queue,),
        )
    except OSError:  # no interpreter to start (embedded): scan here alone
        return None


_HELPER = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from projections.audit.store_part import main; main(sys.argv[2:])"
)


def _chunks(store: Database, audit: Database) -> tuple[int, int] | None:
    """(chunk size, chunk count), or None to scan the store here in one part."""
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
    while -(-total // size) > MAX_CHUNKS:
        size *= 2
    return size, -(-total // size)
