"""A key per data subject (AES-256), in a table of its own. Erasing a subject deletes its
key: the events stay byte-for-byte (the audit trail still verifies), their personal
fields become unreadable."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from domain.errors import InvalidTransition
from infra.sql import Database, insert_rows

_DDL = """CREATE TABLE IF NOT EXISTS kosh_subject_keys (
    subject_id TEXT PRIMARY KEY,
    aes_key BYTEA,
    created_at DOUBLE PRECISION NOT NULL,
    erased_at DOUBLE PRECISION
)"""
# Another process may erase a key: cached keys are re-checked after this long.
CACHE_TTL_S = 30.0


_LINKS_DDL = """CREATE TABLE IF NOT EXISTS kosh_subject_aggregates (
    originator_id TEXT PRIMARY KEY,
    subject_id TEXT NOT NULL
)"""


class SubjectErased(InvalidTransition):
    """Nothing new is recorded about an erased subject (HTTP 409, dead letter)."""

    code = "subject_erased"

    @classmethod
    def of(cls, subject_id: str) -> SubjectErased:
        return cls(f"data subject {subject_id} was erased; nothing new is recorded")


_INSERT_KEY = ("INSERT INTO kosh_subject_keys (subject_id, aes_key, created_at) "
               "VALUES (?, ?, ?) ON CONFLICT (subject_id) DO NOTHING")
_INSERT_LINK = ("INSERT INTO kosh_subject_aggregates (originator_id, subject_id) "
                "VALUES (?, ?) ON CONFLICT (originator_id) DO NOTHING")
_STORED_KEY = "SELECT aes_key, erased_at FROM kosh_subject_keys WHERE subject_id = ?"


def _on_events_cursor(sql: str, db: Database) -> str:
    """A statement for the events' own transaction: on PostgreSQL that is the library's
    connection, with its placeholders and without this schema on its search path."""
    if not db.is_postgres:
        return sql
    return sql.replace("?", "%s").replace(" kosh_subject", f' "{db.schema}".kosh_subject')


@dataclass
class KeyWrites:
    """What sealing one command's events needs stored with them: keys created for new
    subjects (not yet known to be committed) and aggregates' links to their subject."""

    keys: dict[str, bytes] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.keys or self.links)


class KeyRace(Exception):
    """Another process stored a different key for a subject first: the command's events
    must be sealed again, with that key."""


class _Deferral(threading.local):
    writes: KeyWrites | None = None  # outside `deferring()`: keys are committed at once


class SubjectKeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        ddl = _DDL if db.is_postgres else _DDL.replace("BYTEA", "BLOB")
        with db.transaction() as cur:
            cur.execute(ddl)
            cur.execute(_LINKS_DDL)
        self._links: dict[str, str] = {}
        self._cache: dict[str, tuple[bytes | None, float]] = {}
        # Keys this process made whose insert has not been seen to commit: every command
        # sealing with one stores it too, so whichever commits first stores it.
        self._unconfirmed: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._local = _Deferral()
        self._insert_key, self._insert_link, self._stored_key = (
            _on_events_cursor(sql, db) for sql in (_INSERT_KEY, _INSERT_LINK, _STORED_KEY)
        )
        # A batch's rows as one statement of arrays on PostgreSQL: psycopg's executemany
        # converts and sends a statement a row, a seventh of a command's CPU there.
        self._insert_keys = self._insert_links = ""
        if db.is_postgres:
            self._insert_keys = (
                f'INSERT INTO "{db.schema}".kosh_subject_keys (subject_id, aes_key, created_at) '
                "SELECT * FROM unnest(%s::text[], %s::bytea[], %s::float8[]) "
                "ON CONFLICT (subject_id) DO NOTHING")
            self._insert_links = (
                f'INSERT INTO "{db.schema}".kosh_subject_aggregates (originator_id, subject_id) '
                "SELECT * FROM unnest(%s::text[], %s::text[]) "
                "ON CONFLICT (originator_id) DO NOTHING")

    # -- writes that travel with the events (group commit) -----------------------------
    @contextmanager
    def deferring(self) -> Iterator[KeyWrites]:
        """While sealing one command's events on this thread: new keys and links are
        collected, for the store to insert in the events' own transaction."""
        writes = KeyWrites()
        self._local.writes = writes
        try:
            yield writes
        finally:
            self._local.writes = None

    def store_batch_with_events(self, cur: Any, batch: list[KeyWrites]) -> bool:
        """Several commands' writes, one statement per table. False when any key was
        stored before (erased, or made by another process, or two keys for one subject in
        the batch): nothing is then known, and the caller rolls back and goes command by
        command through `store_with_events`."""
        keys: dict[str, bytes] = {}
        links: dict[str, str] = {}
        for writes in batch:
            for subject_id, key in writes.keys.items():
                if keys.setdefault(subject_id, key) != key:
                    return False
            links.update(writes.links)
        if keys:
            now = time.time()
            if self._insert_keys:
                cur.execute(self._insert_keys, (list(keys), list(keys.values()),
                                                [now] * len(keys)))
                stored = cur.rowcount
            else:
                stored = insert_rows(cur, self._insert_key, [(s, k, now) for s, k in keys.items()])
            if stored != len(keys):
                return False
        if links and self._insert_links:
            cur.execute(self._insert_links, (list(links), list(links.values())))
        elif links:
            insert_rows(cur, self._insert_link, list(links.items()))
        return True

    def store_with_events(self, cur: Any, writes: KeyWrites) -> None:
        """Inside the events' transaction (a raw sqlite3 cursor holding the write lock, or a
        psycopg cursor holding the events table's lock). Raises SubjectErased, or KeyRace
        when a subject's key is not the one used."""
        cur = getattr(cur, "sqlite_cursor", cur)  # the library's wrapper hides rowcount
        for subject_id, key in writes.keys.items():
            cur.execute(self._insert_key, (subject_id, key, time.time()))
            if cur.rowcount == 1:
                continue
            cur.execute(self._stored_key, (subject_id,))
            row = cur.fetchone()
            # The library's PostgreSQL connection hands rows over as dicts.
            stored, erased_at = row.values() if isinstance(row, dict) else row
            if erased_at is not None:
                raise SubjectErased.of(subject_id)
            if bytes(stored) != key:
                with self._lock:
                    self._unconfirmed.pop(subject_id, None)
                self._remember(subject_id, bytes(stored))
                raise KeyRace(subject_id)
        if writes.links:
            cur.executemany(self._insert_link, list(writes.links.items()))

    def committed(self, writes: KeyWrites) -> None:
        for subject_id, key in writes.keys.items():
            with self._lock:
                if self._unconfirmed.get(subject_id) == key:
                    del self._unconfirmed[subject_id]
            self._remember(subject_id, key)
        self._links.update(writes.links)

    def _deferred_key(self, writes: KeyWrites, subject_id: str) -> bytes:
        with self._lock:
            key = self._unconfirmed.get(subject_id)
        if key is None:
            rows = self.db.query(
                "SELECT aes_key, erased_at FROM kosh_subject_keys WHERE subject_id = ?",
                (subject_id,))
            if rows and rows[0][1] is not None:
                raise SubjectErased.of(subject_id)
            if rows:
                key = bytes(rows[0][0])
                self._remember(subject_id, key)
                return key
            with self._lock:
                key = self._unconfirmed.setdefault(subject_id, os.urandom(32))
        writes.keys[subject_id] = key
        return key

    def _cached(self, subject_id: str) -> tuple[bytes | None, bool]:
        with self._lock:
            hit = self._cache.get(subject_id)
        if hit is not None and time.monotonic() - hit[1] < CACHE_TTL_S:
            return hit[0], True
        return None, False

    def _remember(self, subject_id: str, key: bytes | None) -> None:
        with self._lock:
            self._cache[subject_id] = (key, time.monotonic())

    def key_for_writing(self, subject_id: str) -> bytes:
        """The subject's key, created (and committed) before any event uses it."""
        key, hit = self._cached(subject_id)
        if hit and key is not None:
            return key
        writes: KeyWrites | None = self._local.writes
        if writes is not None:
            return self._deferred_key(writes, subject_id)
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO kosh_subject_keys (subject_id, aes_key, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (subject_id) DO NOTHING",
                (subject_id, os.urandom(32), time.time()),
            )
            cur.execute("SELECT aes_key, erased_at FROM kosh_subject_keys WHERE subject_id = ?",
                        (subject_id,))
            row = cur.fetchone()
        assert row is not None
        if row[1] is not None:
            raise SubjectErased.of(subject_id)
        key = bytes(row[0])
        self._remember(subject_id, key)
        return key

    def key_for_reading(self, subject_id: str) -> bytes | None:
        """The key, or None when the subject was erased (or never had one)."""
        key, hit = self._cached(subject_id)
        if hit:
            return key
        rows = self.db.query("SELECT aes_key FROM kosh_subject_keys WHERE subject_id = ?",
                             (subject_id,))
        key = bytes(rows[0][0]) if rows and rows[0][0] is not None else None
        self._remember(subject_id, key)
        return key

    def link(self, originator_id: str, subject_id: str) -> None:
        """Remembers whose case an aggregate is, so its later events (a correction that
        names no IIN) are sealed under the same subject."""
        if self._links.get(originator_id) == subject_id:
            return
        writes: KeyWrites | None = self._local.writes
        if writes is not None:
            writes.links[originator_id] = subject_id
            return
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO kosh_subject_aggregates (originator_id, subject_id) "
                        "VALUES (?, ?) ON CONFLICT (originator_id) DO NOTHING",
                        (originator_id, subject_id))
        self._links[originator_id] = subject_id

    def subject_of(self, originator_id: str) -> str | None:
        writes: KeyWrites | None = self._local.writes
        if writes is not None and originator_id in writes.links:
            return writes.links[originator_id]
        if originator_id in self._links:
            return self._links[originator_id]
        rows = self.db.query("SELECT subject_id FROM kosh_subject_aggregates "
                             "WHERE originator_id = ?", (originator_id,))
        if rows:
            self._links[originator_id] = rows[0][0]
            return str(rows[0][0])
        return None

    def erase(self, subject_id: str) -> bool:
        """Deletes the key material; returns False when there was nothing to erase."""
        with self.db.transaction() as cur:
            changed = cur.execute(
                "UPDATE kosh_subject_keys SET aes_key = NULL, erased_at = ? "
                "WHERE subject_id = ? AND erased_at IS NULL",
                (time.time(), subject_id),
            )
        self._remember(subject_id, None)
        return changed == 1
