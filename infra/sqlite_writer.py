"""Group commit's own connection to a SQLite event store file.

Only the batch's leader writes, one at a time per process (and one process at a time,
under the store's writer lock), so one connection serves every batch. Going through the
library's connection pool instead cost a pool checkout, its reader/writer interlock, and
a statement cache of one (`cached_statements=True`), so each statement was parsed again:
15% of a command's instructions (callgrind). The connection is opened
as the library opens its own (autocommit, default synchronous=FULL, so a commit is
durable), and errors reach callers as the library's exception types, as before.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from eventsourcing import persistence

T = TypeVar("T")

# The library's SQLite transaction maps sqlite3's errors onto its own by the same names.
_LIBRARY_ERRORS: dict[type[BaseException], type[BaseException]] = {
    getattr(sqlite3, name): getattr(persistence, name)
    for name in (
        "InterfaceError",
        "DataError",
        "OperationalError",
        "IntegrityError",
        "InternalError",
        "ProgrammingError",
        "NotSupportedError",
        "DatabaseError",
    )
}


def library_error(exc: sqlite3.Error) -> BaseException:
    for kind in type(exc).__mro__:
        if kind in _LIBRARY_ERRORS:
            return _LIBRARY_ERRORS[kind](exc)
    return persistence.PersistenceError(exc)


class SQLiteBatchWriter:
    def __init__(self, db_name: str, timeout: float) -> None:
        self.db_name = db_name
        self.timeout = timeout
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # callers already take turns; this makes sure

    def transaction(self, work: Callable[[sqlite3.Cursor], T]) -> T:
        """`work(cursor)` inside one committed transaction; rolled back if it raises."""
        with self._lock:
            conn = self._connection()
            try:
                cur = conn.cursor()
                cur.execute("BEGIN IMMEDIATE")
                try:
                    done = work(cur)
                except BaseException:
                    conn.rollback()
                    raise
                conn.commit()
                return done
            except sqlite3.Error as exc:
                self.close()  # a connection that failed mid-transaction is not reused
                raise library_error(exc) from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = sqlite3.connect(
                self.db_name,
                uri=True,
                check_same_thread=False,
                isolation_level=None,
                timeout=self.timeout,
                # A batch's multi-row INSERT is one statement per batch size (sql.many_rows).
                cached_statements=512,
            )
        return self._conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:
                pass


def batch_writer(recorder: Any) -> SQLiteBatchWriter | None:
    """A writer for the recorder's store file; None for a memory database, whose
    connections must share the library's pool and its interlock."""
    pool = getattr(getattr(recorder, "datastore", None), "pool", None)
    name = getattr(pool, "db_name", None)
    if not name or getattr(pool, "is_sqlite_memory_mode", True):
        return None
    return SQLiteBatchWriter(name, float(getattr(pool, "lock_timeout", None) or 5))


__all__ = ["SQLiteBatchWriter", "batch_writer", "library_error"]
