"""Group commit: the stored events of concurrent commands share one store transaction.

A durable commit (an fsync on SQLite, a round trip and a WAL flush on PostgreSQL) costs
more than everything else a command does, so commands that arrive while one is being
committed wait for it to finish and are then committed together by one of them. Nobody
waits for a timer: an idle store commits a lone command at once, and batches grow only
as fast as commands queue up behind a commit.

What sealing the events' personal data needs stored (a new data subject's key, an
aggregate's link to its subject) goes into the same transaction as the events: one
commit for all of it, and a key is never committed without the events that use it, nor
events without their key. On SQLite the writer also encodes the batch's events (on
PostgreSQL each command encodes its own, while others hold the lock).

Each command stays atomic and keeps its own optimistic concurrency. A batch first goes
in as one statement per table; if anything in it conflicts, that transaction is rolled
back and each command's events go in under a savepoint of their own, so a version
conflict (another command changed the aggregate first) fails that command alone and the
rest of the batch commits. Any other failure of a batch sends each of its commands
through the library's own insert, one by one, so each caller gets exactly the error (or
success) it would have had alone.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent

from infra.sql import insert_rows, sqlite_writer_lock
from infra.sqlite_writer import SQLiteBatchWriter, batch_writer
from infra.subject_keys import KeyRace, KeyWrites, SubjectKeyStore

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
    writes: KeyWrites | None = None
    # Released exactly once, by the writer that wakes this command: a bare lock costs a
    # fraction of an Event's condition variable, which with many threads was a sixth of
    # the write path's CPU.
    wake: threading.Lock = field(default_factory=_held_lock)
    lead: bool = False
    result: Result | None = None


class CommandBatcher:
    """Serialises the store's writers of one process into batches (leader/follower)."""

    def __init__(
        self, recorder: Any, max_batch: int = MAX_BATCH, keys: SubjectKeyStore | None = None
    ) -> None:
        self.recorder = recorder
        self.max_batch = max_batch
        postgres = _is_postgres(recorder)
        self.keys = keys
        self._own = None if postgres else batch_writer(recorder)
        self._write_batch: Callable[[list[_Pending]], list[Result]] = (
            _postgres_writer(recorder, keys)
            if postgres
            else _sqlite_writer(recorder, self.keys, self._own)
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
        # Seconds spent waiting for, and holding, the store's writer lock: with several
        # writer processes on one file, the held share of wall time is how near the
        # store's one writer is to being the limit.
        self.lock_wait_s = 0.0
        self.lock_held_s = 0.0

    def close(self) -> None:
        if self._own is not None:
            self._own.close()

    def insert(self, events: Sequence[Any], encode: Encode) -> tuple[list[StoredEvent], list[int]]:
        """Records one command's domain events atomically; returns them as stored and
        their notification ids. Raises IntegrityError (a RecordConflictError) on a
        version conflict, or whatever encoding them raised."""
        mine = _Pending(events, encode)
        if not self.encode_in_writer:
            _seal(mine, self.keys)
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
                    _seal(pending, self.keys)
                except Exception as exc:  # noqa: BLE001 - that command's own error
                    results[i] = exc
        todo = [i for i, r in enumerate(results) if r is None]
        asked = time.perf_counter()
        with self._between_processes:
            got = time.perf_counter()
            if len(todo) == 1 and self.keys is None:  # alone: exactly the library's own path
                results[todo[0]] = _insert_alone(self.recorder, batch[todo[0]].stored)
            elif todo:
                try:
                    written = self._write_batch([batch[i] for i in todo])
                except Exception:  # noqa: BLE001 - retried one by one, each its own error
                    written = [self._write_alone(batch[i]) for i in todo]
                for i, result in zip(todo, written, strict=True):
                    results[i] = result
            done = time.perf_counter()
        self.lock_wait_s += got - asked
        self.lock_held_s += done - got
        if self.keys is not None:
            for pending, outcome in zip(batch, results, strict=True):
                if pending.writes and not isinstance(outcome, BaseException):
                    self.keys.committed(pending.writes)
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    def _write_alone(self, pending: _Pending) -> Result:
        if self.keys is None:
            return _insert_alone(self.recorder, pending.stored)
        try:
            return self._write_batch([pending])[0]
        except Exception as exc:  # noqa: BLE001 - handed to the command's own caller
            return exc


def _seal(pending: _Pending, keys: SubjectKeyStore | None) -> None:
    """Encodes a command's events; with a key store, what sealing them needs stored (new
    keys, links) is collected into `pending.writes`, for the events' own transaction."""
    if keys is None:
        pending.stored = [pending.encode(e) for e in pending.events]
        return
    with keys.deferring() as writes:
        pending.stored = [pending.encode(e) for e in pending.events]
    pending.writes = writes


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


def _sqlite_writer(
    recorder: Any, keys: SubjectKeyStore | None, own: SQLiteBatchWriter | None
) -> Callable[[list[_Pending]], list[Result]]:
    import sqlite3

    from infra.subject_keys import SubjectErased

    def insert(cur: Any, pending: _Pending) -> Result:
        for resealed in (False, True):
            cur.execute("SAVEPOINT kosh_command")
            try:
                if keys is not None and pending.writes:
                    keys.store_with_events(cur, pending.writes)
                ids = recorder._insert_events(cur, pending.stored)
            except sqlite3.IntegrityError as exc:
                cur.execute("ROLLBACK TO SAVEPOINT kosh_command")
                return IntegrityError(exc)
            except SubjectErased as exc:
                cur.execute("ROLLBACK TO SAVEPOINT kosh_command")
                return exc
            except KeyRace:
                # Another process made this subject's key first: seal again with it.
                cur.execute("ROLLBACK TO SAVEPOINT kosh_command")
                if resealed:
                    raise
                _seal(pending, keys)
                continue
            finally:
                cur.execute("RELEASE SAVEPOINT kosh_command")
            return list(ids)
        raise AssertionError("unreachable")

    table = recorder.events_table_name
    last_id = f"SELECT max(rowid) FROM {table}"  # noqa: S608 - the library's table name

    def all_at_once(cur: Any, batch: list[_Pending]) -> list[Result]:
        """The batch's keys, links and events in one statement each, when none of them
        conflicts (almost always); raises _Conflict otherwise, and the transaction is
        rolled back for the command-by-command path to sort out."""
        writes = [p.writes for p in batch if p.writes]
        if writes and (keys is None or not keys.store_batch_with_events(cur, writes)):
            raise _Conflict
        rows = [
            (s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id,
             s.originator_version, s.topic, s.state)
            for pending in batch for s in pending.stored
        ]
        before = cur.execute(last_id).fetchone()[0] or 0
        try:
            insert_rows(cur, recorder.insert_events_statement, rows)
        except sqlite3.IntegrityError:
            raise _Conflict from None
        after = cur.execute(last_id).fetchone()[0]
        if after != before + len(rows):  # notification ids not the next ones in a row
            raise _Conflict
        results: list[Result] = []
        at = before + 1
        for pending in batch:
            results.append(list(range(at, at + len(pending.stored))))
            at += len(pending.stored)
        return results

    def write(batch: list[_Pending]) -> list[Result]:
        if own is not None:
            try:
                return own.transaction(lambda cur: all_at_once(cur, batch))
            except _Conflict:
                pass
            return own.transaction(lambda cur: [insert(cur, pending) for pending in batch])
        with recorder.datastore.transaction(commit=True) as cur:
            return [insert(cur, pending) for pending in batch]

    return write


class _Conflict(Exception):
    """Something in the batch conflicts: written again command by command."""


def _postgres_writer(
    recorder: Any, keys: SubjectKeyStore | None
) -> Callable[[list[_Pending]], list[Result]]:
    import psycopg

    from infra.subject_keys import SubjectErased

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

    def insert_one(conn: Any, cur: Any, pending: _Pending) -> Result:
        """One command's keys, links and events under a savepoint of their own."""
        for resealed in (False, True):
            try:
                with conn.transaction():  # a savepoint, rolled back if this raises
                    if keys is not None and pending.writes:
                        keys.store_with_events(cur, pending.writes)
                    return insert(cur, pending.stored)
            except psycopg.errors.UniqueViolation as exc:
                return IntegrityError(str(exc))
            except SubjectErased as exc:
                return exc
            except KeyRace:
                # Another process stored this subject's key first: seal again with it.
                if resealed:
                    raise
                _seal(pending, keys)
        raise AssertionError("unreachable")

    def write(pendings: list[_Pending]) -> list[Result]:
        """As on SQLite: the batch's keys, links and events in one transaction, so a key
        is committed with the events sealed with it and no command pays a commit of its
        own for them; anything conflicting sends the batch command by command."""
        batch = [p.stored for p in pendings]
        writes = [p.writes for p in pendings if p.writes]
        with recorder.datastore.get_connection() as conn:
            try:
                # Conflicts are rare: first the whole batch as one statement a table. The
                # events table's lock comes first, so batches of processes take turns.
                with conn.transaction(), conn.cursor() as cur:
                    _lock_for_insert(recorder, cur)
                    if writes and (keys is None or not keys.store_batch_with_events(cur, writes)):
                        raise _Conflict
                    ids = insert(cur, [s for stored in batch for s in stored])
                return _split(ids, batch)
            except (psycopg.errors.UniqueViolation, _Conflict):
                pass
            with conn.transaction(), conn.cursor() as cur:
                _lock_for_insert(recorder, cur)
                return [insert_one(conn, cur, pending) for pending in pendings]

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
