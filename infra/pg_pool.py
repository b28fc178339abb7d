"""The PostgreSQL connections of one process, one bounded pool per database and schema.

Every `Database` naming the same server and schema draws on one pool, so a process holds
at most `size` connections for Kosh's own tables however many registers, stores and
threads it runs (each `Database` had a pool of its own, and an intake process under load
held 19 server connections: five processes filled a server's 100 slots and it refused the
next with 'too many clients already'). With the event store library's own pool, bounded
by its settings, a process has a fixed budget: instances × budget must stay below the
server's max_connections (`budget_warning` says so at start-up).

A thread that finds every connection held waits up to `wait_s`, then gets
`PoolExhausted`, which the API answers with 503 and a consumer retries. A thread already
holding a connection of the pool (a transaction of one `Database` inside another's) is
given one more without waiting: waiting there could wait on itself.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from eventsourcing.persistence import OperationalError

DEFAULT_SIZE = 6
DEFAULT_WAIT_S = 10.0


class PoolExhausted(OperationalError):
    """No connection of the process's pool came free in time."""


class ConnectionPool:
    def __init__(self, size: int, wait_s: float) -> None:
        self.size, self.wait_s = size, wait_s
        self._cond = threading.Condition(threading.Lock())
        self._idle: list[Any] = []
        self.open = 0  # connections open: idle ones and those threads hold
        self._held = threading.local()
        self._pid = os.getpid()

    def __del__(self) -> None:
        # The last Database of this server and schema is gone: so are its idle
        # connections (in the process that opened them only: a forked child's copies
        # belong to its parent's sessions).
        if os.getpid() == self._pid:
            for conn in self._idle:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001, S110 - closing at collection, nothing to tell
                    pass

    def _holding(self) -> int:
        return int(getattr(self._held, "count", 0))

    def _hold(self, change: int) -> None:
        """Counts the connections this thread holds (a nested checkout does not wait)."""
        self._held.count = max(0, self._holding() + change)

    def checkout(self, connect: Callable[[], Any]) -> Any:
        nested = self._holding() > 0
        deadline = None
        with self._cond:
            while True:
                while self._idle:
                    conn = self._idle.pop()
                    if not conn.closed:
                        self._hold(+1)
                        return conn
                    self.open -= 1
                if self.open < self.size or nested:
                    break
                if deadline is None:
                    deadline = time.monotonic() + self.wait_s
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PoolExhausted(
                        f"all {self.size} PostgreSQL connections of this process stayed in "
                        f"use for {self.wait_s:g} s (database_pool_size)")
                self._cond.wait(left)
            self.open += 1
        try:
            conn = connect()
        except BaseException:
            self.discarded()
            raise
        self._hold(+1)
        return conn

    def checkin(self, conn: Any) -> None:
        """A connection handed back: kept for the next thread while the pool is within
        its bound (one opened past it for a nested transaction is closed)."""
        self._hold(-1)
        with self._cond:
            if not conn.closed and self.open <= self.size:
                self._idle.append(conn)
                self._cond.notify()
                return
        try:
            conn.close()
        finally:
            self._forget_one()

    def discarded(self, held: bool = False) -> None:
        """A connection that failed to open, or that its holder closed (broken)."""
        if held:
            self._hold(-1)
        self._forget_one()

    def _forget_one(self) -> None:
        with self._cond:
            self.open -= 1
            self._cond.notify()

    @property
    def idle(self) -> int:
        return len(self._idle)


# Held by the Databases that use them: a pool goes, with its idle connections, when the
# last of them does (a process that opens Databases for many schemas, as a test session
# does, kept every pool's idle connections until the server had no slot left).
_POOLS: weakref.WeakValueDictionary[tuple[str, str], ConnectionPool] = (
    weakref.WeakValueDictionary())
_LOCK = threading.Lock()
_config = {"size": DEFAULT_SIZE, "wait_s": DEFAULT_WAIT_S}
_generation = 0  # one more after each fork: a Database asks for its pool again


def configure(size: int, wait_s: float) -> None:
    """This process's bound and wait, for its pools now and later (from the settings)."""
    with _LOCK:
        _config.update(size=size, wait_s=wait_s)
        for pool in _POOLS.values():
            pool.size, pool.wait_s = size, wait_s


def generation() -> int:
    return _generation


def pool_for(url: str, schema: str) -> ConnectionPool:
    """The process's pool of this server and schema; the caller keeps it alive."""
    key = (url, schema)
    with _LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = ConnectionPool(int(_config["size"]), float(_config["wait_s"]))
    return pool


def _after_fork() -> None:
    # A connection must not be used across a fork: the child starts with no pool. The
    # inherited connections are kept, unused and unclosed, until the child exits (closing
    # one, or letting it be collected, would end the parent's session too).
    global _generation
    _INHERITED.extend(_POOLS.values())
    _POOLS.clear()
    _generation += 1


_INHERITED: list[ConnectionPool] = []


os.register_at_fork(after_in_child=_after_fork)


def server_slots(url: str) -> tuple[int, int]:
    """(connections the server allows to ordinary roles, connections open now)."""
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT current_setting('max_connections')::int "
            "- current_setting('superuser_reserved_connections')::int, "
            "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def budget_warning(url: str, budget: int) -> str | None:
    """Why this process may find the server full, if it may: its budget no longer fits
    in the slots the others leave."""
    allowed, used = server_slots(url)
    left = allowed - used
    if left >= budget:
        return None
    return (f"this process may open {budget} PostgreSQL connections, and the server has "
            f"{left} of its {allowed} left: more instances will be refused with 'too many "
            f"clients already'; lower database_pool_size / database_store_pool_size or "
            f"raise the server's max_connections")
