"""A DB-API connection to SQLite or PostgreSQL, with `?` placeholders on both."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from infra import pg_pool

# Rows a multi-row INSERT takes at once: far below SQLite's 32,766 parameters a statement.
ROWS_PER_INSERT = 1000


@lru_cache(maxsize=1024)
def many_rows(statement: str, rows: int) -> str:
    """`INSERT … VALUES (?, …) [ON CONFLICT …]` for one row, made into the statement for
    `rows` rows. SQLite runs it in one step, and sqlite3 hands the GIL over around each
    step: executemany's step a row, under the store's writer lock, let the process's other
    threads take the GIL from the writer once a row, and the lock was held that much longer."""
    head, _, tail = statement.partition("VALUES")
    tail = tail.lstrip()
    close = tail.index(")") + 1
    return f"{head}VALUES {', '.join([tail[:close]] * rows)}{tail[close:]}"


def insert_rows(cur: Any, statement: str, rows: Sequence[Sequence[Any]]) -> int:
    """Inserts `rows` with `statement` (one row's INSERT) in as few steps as SQLite takes;
    returns how many rows it inserted (an ON CONFLICT DO NOTHING skips some)."""
    done = 0
    for at in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[at : at + ROWS_PER_INSERT]
        cur.execute(many_rows(statement, len(chunk)), [v for row in chunk for v in row])
        done += cur.rowcount
    return done


class SQLiteWriterLock:
    """The right to write one SQLite file, shared by every Kosh writer of it.

    SQLite lets one connection write at a time; the others retry in its busy handler,
    which sleeps 1, 2, 5, 10… ms between tries, so under load each collision stalls a
    writer for milliseconds (the publisher saving its position behind a stream of
    commands, for one). Writers that take this lock first queue instead: threads of a
    process on a lock, processes on an exclusive `flock` of a file beside the database,
    and each wakes the moment the previous writer is done. Re-entrant on a thread."""

    _by_path: dict[str, SQLiteWriterLock] = {}
    _registry_lock = threading.Lock()

    @classmethod
    def for_database(cls, path: str) -> SQLiteWriterLock:
        with cls._registry_lock:
            if path not in cls._by_path:
                cls._by_path[path] = cls(path + ".writer-lock")
            return cls._by_path[path]

    def __init__(self, lock_path: str) -> None:
        self.lock_path = lock_path
        self._threads = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._pid = 0

    def __enter__(self) -> None:
        self._threads.acquire()
        try:
            if self._depth == 0:
                if self._fd is None or self._pid != os.getpid():  # a forked child: own fd
                    self._fd, self._pid = os.open(self.lock_path, os.O_RDWR | os.O_CREAT,
                                                  0o600), os.getpid()
                fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise
        self._depth += 1

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


def sqlite_writer_lock(path: str | Path | None) -> Any:
    """The writer lock of a database file; none for memory databases."""
    name = str(path or "")
    if not name or ":memory:" in name or "mode=memory" in name:
        return contextlib.nullcontext()
    return SQLiteWriterLock.for_database(os.path.abspath(name))


class Database:
    """Each `transaction()` commits or rolls back as one. SQLite: a connection per thread.
    PostgreSQL: a thread holds a connection only while in a transaction, then hands it back
    to the process's pool for this server and schema (infra/pg_pool.py): a server's
    connection slots are few, threads and registers are many."""

    def __init__(self, url: str | None, sqlite_path: Path | None = None, schema: str = "public"):
        self.is_postgres = bool(url)
        self.url = url
        self.sqlite_path = sqlite_path
        self.schema = schema
        self._local = threading.local()
        self._pool: tuple[int, pg_pool.ConnectionPool] | None = None  # (fork generation, pool)
        self._writer_lock: Any = contextlib.nullcontext()
        if not self.is_postgres and sqlite_path is not None:
            sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            self._writer_lock = sqlite_writer_lock(sqlite_path)

    @property
    def pool(self) -> pg_pool.ConnectionPool:
        """Shared with every Database of this server and schema in the process; kept
        here, so that it lives as long as one of them does."""
        held = self._pool
        if held is None or held[0] != pg_pool.generation():
            assert self.url is not None
            held = self._pool = (pg_pool.generation(), pg_pool.pool_for(self.url, self.schema))
        return held[1]

    def _connect(self) -> Any:
        if self.is_postgres:
            import psycopg

            assert self.url is not None
            pg = psycopg.connect(self.url, autocommit=False, connect_timeout=5)
            with pg.cursor() as cur:
                take_ddl_lock(cur, self.schema)
                cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                cur.execute(f'SET search_path TO "{self.schema}"')
            pg.commit()
            return pg
        conn = sqlite3.connect(str(self.sqlite_path), timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.pool.checkout(self._connect) if self.is_postgres else self._connect()
            self._local.conn = conn
        return conn

    def _release(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            self.pool.checkin(conn)

    def reset(self) -> None:
        """Drops this thread's connection (after an error that may have broken it)."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close
                pass
            if self.is_postgres:
                self.pool.discarded(held=True)

    def forget_connections(self) -> Any:
        """In a forked child: starts afresh, as if no connection were open, and returns
        the inherited thread-local one for the caller to keep unused; a connection must
        not be used across a fork, and closing one could touch the parent's locks or
        session (the pools start afresh in every child: infra/pg_pool.py)."""
        inherited = self._local
        self._local = threading.local()
        return inherited

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        # A transaction inside another on this thread shares its connection.
        outermost = self.is_postgres and getattr(self._local, "conn", None) is None
        try:
            with self._transaction() as cur:
                yield cur
        finally:
            if outermost:
                self._release()

    @contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        if self.is_postgres:
            with self._open_transaction() as cur:
                yield cur
            return
        with self._writer_lock, self._open_transaction() as cur:
            yield cur

    @contextmanager
    def _open_transaction(self) -> Iterator[Cursor]:
        conn = self.connection()
        cur = Cursor(conn.cursor(), self.is_postgres, self.schema)
        try:
            if not self.is_postgres:
                cur.execute("BEGIN IMMEDIATE")
            yield cur
            if self.is_postgres:
                conn.commit()
            else:
                cur.execute("COMMIT")
        except BaseException:
            try:
                if self.is_postgres:
                    conn.rollback()
                else:
                    cur.execute("ROLLBACK")
            except Exception:  # noqa: BLE001
                self.reset()
            raise
        finally:
            try:
                cur.close()
            except Exception:  # noqa: BLE001 - closed by reset(): the first error stands
                pass

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if not self.is_postgres:
            # A read: in WAL mode one statement sees one committed state, and taking
            # the write lock (BEGIN IMMEDIATE) for it would queue readers behind writers.
            return list(self.connection().execute(sql, tuple(params)).fetchall())
        with self.transaction() as cur:
            cur.execute(sql, params)
            return cur.fetchall()


# PostgreSQL refuses concurrent `CREATE ... IF NOT EXISTS` of one object ("tuple
# concurrently updated") when several processes start at once: DDL takes this lock first.
DDL_LOCK_WAIT_S = 10.0


def ddl_lock_key(schema: str) -> int:
    """One lock per schema: the conflict is between creators of the same objects."""
    return 0x4B6F7368_00000000 | zlib.crc32(schema.encode())


def take_ddl_lock(raw_cursor: Any, schema: str, session: bool = False) -> bool:
    """Waits up to DDL_LOCK_WAIT_S for the DDL lock. Gives up rather than hang: a holder
    that long is this very process one connection over (nested set-up), where going on
    without the lock is right."""
    fn = "pg_try_advisory_lock" if session else "pg_try_advisory_xact_lock"
    deadline = time.monotonic() + DDL_LOCK_WAIT_S
    while True:
        raw_cursor.execute(f"SELECT {fn}(%s)", (ddl_lock_key(schema),))
        row = raw_cursor.fetchone()
        if row and row[0]:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


class Cursor:
    def __init__(self, raw: Any, is_postgres: bool, schema: str = "public") -> None:
        self._raw = raw
        self._schema = schema
        self._pg = is_postgres
        self._ddl_locked = False

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        if self._pg:
            if not self._ddl_locked and sql.lstrip()[:6].upper() == "CREATE":
                take_ddl_lock(self._raw, self._schema)
                self._ddl_locked = True
            sql = sql.replace("?", "%s")
        self._raw.execute(sql, tuple(params))
        return int(self._raw.rowcount)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if self._pg:
            sql = sql.replace("?", "%s")
        self._raw.executemany(sql, [tuple(r) for r in rows])

    def executemany_rows(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """`executemany` for rows already in a form the driver binds (lists or tuples):
        on SQLite they go as they are, not copied into tuples first (bulk writes)."""
        if self._pg:
            self.executemany(sql, rows)
        else:
            self._raw.executemany(sql, rows)

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._raw.fetchone()

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._raw.fetchall())

    def close(self) -> None:
        self._raw.close()
