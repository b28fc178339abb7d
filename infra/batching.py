"""Group commit: the stored events of concurrent commands share one store transaction.

A durable commit (an fsync on SQLite, a round trip and a WAL flush on PostgreSQL) costs
more than everything else a command does, so commands that arrive while one is being
committed wait for it to finish and are then committed together by one of them. Nobody
waits for a timer: an idle store commits a lone command at once, and batches grow only
as fast as commands queue up behind a commit.

On SQLite the writer also encodes the batch's events: sealing personal data may create
a data subject's key in the same database file, and one writer per process doing all of
it in turn is far cheaper than threads queueing on SQLite's file lock, whose busy
handler sleeps a millisecond or more per collision.

Each command stays atomic and keeps its own optimistic concurrency: its events go in
under a savepoint of their own, so a version conflict (another command changed the
aggregate first) fails that command alone and the rest of the batch commits. Any other
failure of a batch sends each of its commands through the library's own insert, one by
one, so each caller gets exactly the error (or success) it would have had alone.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import IntegrityError, StoredEvent

from infra.sql import sqlite_writer_lock

# Bounds the time one writer spends on others' behalf and the size of one transaction.
MAX_BATCH = 256

Result = list[int] | BaseException


Encode = Callable[[Any], StoredEvent]


def _held_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(eq=False)
class _Pending:
    events: Sequence[Any]
    encode: Encode
    stored: Sequence[StoredEvent] = ()
    # Released exactly once, by the writer that wakes this command: a bare lock costs a
    # fraction of an Event's condition variable, which with many threads was a sixth of
    # the write path's CPU.
    wake: threading.Lock = field(default_factory=_held_lock)
    lead: bool = False
    result: Result | None = None


class CommandBatcher:
    """Serialises the store's writers of one process into batches (leader/follower)."""

    def __init__(self, recorder: Any, max_batch: int = MAX_BATCH) -> None:
        self.recorder = recorder
        self.max_batch = max_batch
        postgres = _is_postgres(recorder)
        self._write_batch: Callable[[list[Sequence[StoredEvent]]], list[Result]] = (
            _postgres_writer(recorder) if postgres else _sqlite_writer(recorder)
        )
        self.encode_in_writer = not postgres
        self._between_processes = (
            contextlib.nullcontext() if postgres else _writer_file_lock(recorder)
        )
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._writing = False
        self.batches = 0
        self.commands = 0

    def insert(self, events: Sequence[Any], encode: Encode) -> tuple[list[StoredEvent], list[int]]:
        """Records one command's domain events atomically; returns them as stored and
        their notification ids. Raises IntegrityError (a RecordConflictError) on a
        version conflict, or whatever encoding them raised."""
        mine = _Pending(events, encode)
        if not self.encode_in_writer:
            mine.stored = [encode(e) for e in events]
        if not events:
            return [], []
        with self._lock:
            self._queue.append(mine)
            mine.lead = not self._writing
            self._writing = True
        if not mine.lead:
            mine.wake.acquire()
        if mine.lead:  # first in line, or handed the lead by the previous writer
            self._lead()
        assert mine.result is not None
        if isinstance(mine.result, BaseException):
            raise mine.result
        return list(mine.stored), mine.result

    def _lead(self) -> None:
        with self._lock:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
        try:
            results = self._write(batch)
        except BaseException as exc:  # noqa: BLE001 - every waiter must be released
            results = [exc] * len(batch)
        for pending, result in zip(batch, results, strict=True):
            pending.result = result
        with self._lock:
            self.batches += 1
            self.commands += len(batch)
            successor = self._queue[0] if self._queue else None
            if successor is not None:
                successor.lead = True
            else:
                self._writing = False
        # batch[0] is this writer itself: it was never asleep, so it is not woken.
        for pending in batch[1:]:
            pending.wake.release()
        if successor is not None:
            successor.wake.release()

    def _write(self, batch: list[_Pending]) -> list[Result]:
        results: list[Result | None] = [None] * len(batch)
        if self.encode_in_writer:
            for i, pending in enumerate(batch):
                try:
                    pending.stored = [pending.encode(e) for e in pending.events]
                except Exception as exc:  # noqa: BLE001 - that command's own error
                    results[i] = exc
        todo = [i for i, r in enumerate(results) if r is None]
        with self._between_processes:
            if len(todo) == 1:  # alone: exactly the library's own path
                results[todo[0]] = _insert_alone(self.recorder, batch[todo[0]].stored)
            elif todo:
                try:
                    written = self._write_batch([batch[i].stored for i in todo])
                except Exception:  # noqa: BLE001 - retried one by one, each its own error
                    written = [_insert_alone(self.recorder, batch[i].stored) for i in todo]
                for i, result in zip(todo, written, strict=True):
                    results[i] = result
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]


def _insert_alone(recorder: Any, stored: Sequence[StoredEvent]) -> Result:
    try:
        return list(recorder.insert_events(stored) or [])
    except Exception as exc:  # noqa: BLE001 - handed to the command's own caller
        return exc


def _writer_file_lock(recorder: Any) -> Any:
    pool = getattr(getattr(recorder, "datastore", None), "pool", None)
    return sqlite_writer_lock(getattr(pool, "db_name", None))


def _is_postgres(recorder: Any) -> bool:
    return type(recorder).__module__.startswith("eventsourcing.postgres")


def _sqlite_writer(recorder: Any) -> Callable[[list[Sequence[StoredEvent]]], list[Result]]:
    import sqlite3

    def write(batch: list[Sequence[StoredEvent]]) -> list[Result]:
        results: list[Result] = []
        with recorder.datastore.transaction(commit=True) as cur:
            for stored in batch:
                cur.execute("SAVEPOINT kosh_command")
                try:
                    ids = recorder._insert_events(cur, stored)
                except sqlite3.IntegrityError as exc:
                    cur.execute("ROLLBACK TO SAVEPOINT kosh_command")
                    results.append(IntegrityError(exc))
                else:
                    results.append(list(ids))
                cur.execute("RELEASE SAVEPOINT kosh_command")
        return results

    return write


def _postgres_writer(recorder: Any) -> Callable[[list[Sequence[StoredEvent]]], list[Result]]:
    import psycopg

    def rows(stored: Sequence[StoredEvent]) -> list[Any]:
        return [
            recorder.construct_pg_stored_event(
                s.originator_id, s.originator_version, s.topic, s.state
            )
            for s in stored
        ]

    def insert(cur: Any, stored: Sequence[StoredEvent]) -> list[int]:
        cur.execute(recorder.insert_events_statement, (rows(stored),))
        return [r["notification_id"] for r in cur.fetchall()]

    def write(batch: list[Sequence[StoredEvent]]) -> list[Result]:
        with recorder.datastore.get_connection() as conn:
            try:
                # Conflicts are rare: first the whole batch as one statement.
                with conn.transaction(), conn.cursor() as cur:
                    _lock_for_insert(recorder, cur)
                    ids = insert(cur, [s for stored in batch for s in stored])
                return _split(ids, batch)
            except psycopg.errors.UniqueViolation:
                pass
            results: list[Result] = []
            with conn.transaction(), conn.cursor() as cur:
                _lock_for_insert(recorder, cur)
                for stored in batch:
                    try:
                        with conn.transaction():  # a savepoint
                            results.append(insert(cur, stored))
                    except psycopg.errors.UniqueViolation as exc:
                        results.append(IntegrityError(str(exc)))
            return results

    return write


def _lock_for_insert(recorder: Any, cur: Any) -> None:
    # The library's own ordering guarantee: notification ids are issued in commit order.
    recorder._lock_table(cur)
    recorder._notify_channel(cur)


def _split(ids: list[int], batch: list[Sequence[StoredEvent]]) -> list[Result]:
    out: list[Result] = []
    at = 0
    for stored in batch:
        out.append(ids[at : at + len(stored)])
        at += len(stored)
    return out
