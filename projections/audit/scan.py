"""The whole store scanned for `kosh audit verify`, in parts, in store order.

On a large SQLite store a helper process (projections/audit/store_part.py, standard library
only) scans the older part while this process scans the newer, so verification uses both
cores. Threads would not: building sqlite3 rows and hashing leaves under 2 KiB both hold the
GIL. The helper only reads; should it fail, this process scans its part too.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from infra.sql import Database
from projections.audit.leaves import events_table, no_table, select
from projections.audit.store_part import StorePart, decode, scan_part

HELPER_MIN_ROWS = 20_000  # below this, starting a process costs more than it saves
HELPER_SHARE = 0.5  # of the rows: it pays for starting up, this process for the rest of verify
# The newer part begins at a multiple of this, so it folds its own Merkle subtrees.
ALIGN = 1024
_ROOT = Path(__file__).resolve().parents[2]  # the directory holding the projections package


class StoreScan:
    """Parts of the store that together hold every row, in store order; ``recorded`` is how
    many leaves of the trail (audit_leaves) they are held against.

    The helper, if any, starts as the scan is made, so that its interpreter starts up while
    this process does whatever else comes before :meth:`parts` (reading the signed heads).
    Use it as a context manager: leaving it stops a helper no one asked for its part."""

    def __init__(self, store: Database, audit: Database, recorded: int) -> None:
        self.store, self.audit, self.recorded = store, audit, recorded
        self.split = _split(store, audit, recorded)
        self.helper = _start_helper(store, audit, recorded, self.split[0]) if self.split else None

    def __enter__(self) -> StoreScan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.helper is not None and self.helper.poll() is None:
            self.helper.kill()
            self.helper.wait()

    def parts(self) -> Iterator[StorePart]:
        store, audit, recorded = self.store, self.audit, self.recorded
        table, seq = events_table(store)

        def rows(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
            return select(store, sql, params)

        def trail(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
            return select(audit, sql, params)

        def scan(after: int, upto: int | None, start: int) -> StorePart:
            return scan_part(
                rows, table, seq, store.is_postgres, after, upto, start, trail, recorded
            )

        helper = self.helper
        if self.split is None or helper is None:
            try:
                whole = scan(0, None, 0)
            except Exception as exc:
                if not no_table(exc):
                    raise
                return
            yield whole
            return
        upto, start = self.split
        try:
            newer = scan(upto, None, start)
            out, _ = helper.communicate()
        finally:
            self.close()
        try:
            older = decode(out) if helper.returncode == 0 else None
        except ValueError:
            older = None
        yield older if older is not None else scan(0, upto, 0)
        yield newer


def _start_helper(
    store: Database, audit: Database, recorded: int, upto: int
) -> subprocess.Popen[bytes] | None:
    """The helper scanning the rows up to ``upto`` as the part beginning the store."""
    table, seq = events_table(store)
    args = [str(_ROOT), str(store.sqlite_path), table, seq, "0", str(upto), "0"]
    try:
        return subprocess.Popen(
            # -I -S: no site packages or environment; it needs only the standard library.
            [sys.executable, "-I", "-S", "-c", _HELPER, *args, str(audit.sqlite_path)]
            + [str(recorded)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except OSError:  # no interpreter to start (embedded): scan here alone
        return None


_HELPER = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from projections.audit.store_part import main; main(sys.argv[2:])"
)


def _split(store: Database, audit: Database, recorded: int) -> tuple[int, int] | None:
    """(last sequence number of the older part, leaf index the newer part begins at), or
    None to scan the store here in one part."""
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
    start = int(total * HELPER_SHARE) // ALIGN * ALIGN
    if start == 0:
        return None
    # Where the trail put that leaf, else where the store holds it now (slower to find). Either
    # way the parts cover the store; a part that does not begin where expected is rescanned.
    found = []
    if start <= recorded:
        found = select(audit, "SELECT seq FROM audit_leaves WHERE leaf_index = ?", (start - 1,))
    if not found or not isinstance(found[0][0], int):
        found = select(
            store, f"SELECT {seq} FROM {table} ORDER BY {seq} LIMIT 1 OFFSET ?", (start - 1,)
        )
    return (int(found[0][0]), start) if found else None
