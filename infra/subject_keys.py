"""A key per data subject (AES-256), in a table of its own. Erasing a subject deletes its
key: the events stay byte-for-byte (the audit trail still verifies), their personal
fields become unreadable."""

from __future__ import annotations

import os
import threading
import time

from domain.errors import InvalidTransition
from infra.sql import Database

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


class SubjectKeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        ddl = _DDL if db.is_postgres else _DDL.replace("BYTEA", "BLOB")
        with db.transaction() as cur:
            cur.execute(ddl)
            cur.execute(_LINKS_DDL)
        self._links: dict[str, str] = {}
        self._cache: dict[str, tuple[bytes | None, float]] = {}
        self._lock = threading.Lock()

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
            raise SubjectErased(f"data subject {subject_id} was erased; nothing new is recorded")
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
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO kosh_subject_aggregates (originator_id, subject_id) "
                        "VALUES (?, ?) ON CONFLICT (originator_id) DO NOTHING",
                        (originator_id, subject_id))
        self._links[originator_id] = subject_id

    def subject_of(self, originator_id: str) -> str | None:
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
