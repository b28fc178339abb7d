"""One active publisher across all instances: a lock whose holder's death releases it.

On PostgreSQL a session-level advisory lock on a dedicated connection: if the process
dies or its connection drops, the server releases the lock, and a standby that polls
takes over within about a poll interval. On SQLite (one machine) an flock on
data_dir/publisher.lock has the same semantics. The new leader reads the publisher's
position from the store and continues from there; since one producer publishes in store
order, no aggregate's events go out of order and none is skipped on take-over.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import structlog

from infra.settings import Settings

log = structlog.get_logger(__name__)


class LeaderLock(Protocol):
    description: str

    def try_acquire(self) -> bool: ...

    def still_held(self) -> bool: ...

    def release(self) -> None: ...


def advisory_key(schema: str, name: str) -> int:
    """A signed 64-bit key per (schema, role): deployments in other schemas don't contend."""
    digest = hashlib.blake2b(f"kosh:{schema}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresAdvisoryLock:
    def __init__(self, url: str, schema: str, name: str) -> None:
        self.url = url
        self.key = advisory_key(schema, name)
        self.description = f"pg_advisory_lock({self.key}) for {schema}.{name}"
        self._conn: Any = None

    def try_acquire(self) -> bool:
        import psycopg

        self._drop()
        try:
            # After a network cut the leader's lock check must fail in seconds, not hang
            # for the TCP retransmission timeout (minutes): keepalives and a user timeout.
            self._conn = psycopg.connect(
                self.url, autocommit=True, connect_timeout=5, tcp_user_timeout=10_000,
                keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=3,
            )
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        except psycopg.Error as exc:
            log.warning("leader.lock_unavailable", lock=self.description, error=repr(exc))
            self._drop()
            return False
        if row and row[0]:
            return True
        self._drop()
        return False

    def still_held(self) -> bool:
        """Asks the server, so a dropped connection is noticed, not assumed."""
        if self._conn is None:
            return False
        try:
            row = self._conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND pid = pg_backend_pid() AND objsubid = 1"
                " AND classid::text::bigint = %s AND objid::text::bigint = %s",
                ((self.key >> 32) & 0xFFFFFFFF, self.key & 0xFFFFFFFF),
            ).fetchone()
        except Exception:  # noqa: BLE001 - any failure means the lock may be gone
            return False
        return bool(row and row[0])

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


class FileLock:
    """flock is released by the kernel when the holding process dies, even on kill -9."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"flock({path})"
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def still_held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def leader_lock(settings: Settings, name: str = "publisher") -> LeaderLock:
    if settings.database_url:
        return PostgresAdvisoryLock(settings.database_url, settings.database_schema, name)
    return FileLock(Path(settings.data_dir) / f"{name}.lock")


def run_as_leader(
    lock: LeaderLock,
    work: Callable[[threading.Event], None],
    stop: threading.Event,
    poll_s: float,
    role: str = "publisher",
) -> None:
    """Waits for the lock, runs `work(lead_stop)` while holding it, and asks the work to
    stop (lead_stop) as soon as the lock is lost; then waits for the lock again."""
    waiting_logged = False
    while not stop.is_set():
        if not lock.try_acquire():
            if not waiting_logged:
                log.info(f"{role}.standby", lock=lock.description, poll_s=poll_s)
                waiting_logged = True
            stop.wait(poll_s)
            continue
        waiting_logged = False
        log.info(f"{role}.leader_acquired", lock=lock.description, pid=os.getpid())
        lead_stop = threading.Event()
        worker = threading.Thread(target=work, args=(lead_stop,), name=role, daemon=True)
        worker.start()
        try:
            while worker.is_alive() and not stop.is_set():
                worker.join(poll_s)
                if worker.is_alive() and not lock.still_held():
                    log.warning(f"{role}.leader_lost", lock=lock.description)
                    break
        finally:
            lead_stop.set()
            worker.join(30)
            lock.release()
        if not stop.is_set():
            # The work ended on its own (it failed) or the lock was lost: let a standby in,
            # and don't spin if the failure repeats.
            log.info(f"{role}.leader_released", lock=lock.description)
            stop.wait(poll_s)
