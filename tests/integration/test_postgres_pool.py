"""PostgreSQL connections are pooled and bounded per process: every `Database` of one
server and schema shares the pool, many threads share a few server connections, a thread
that finds them all held waits for one and, past the wait, fails with a store error
rather than open more; a transaction inside another's on the same thread never waits."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from api.errors import STORE_ERRORS
from infra import pg_pool
from infra.pg_pool import PoolExhausted
from infra.sql import Database
from tests.conftest import _drop_schema

pytestmark = pytest.mark.postgres


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"kosh_pool_{uuid.uuid4().hex[:10]}"
    yield name
    _drop_schema(name)


def small_pool(url: str, schema: str, size: int, wait_s: float) -> pg_pool.ConnectionPool:
    pool = pg_pool.pool_for(url, schema)
    pool.size, pool.wait_s = size, wait_s
    return pool


def hold_one(db: Database) -> tuple[threading.Event, threading.Event, threading.Thread]:
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db.transaction() as cur:
            cur.execute("SELECT 1")
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    return held, release, holder


def test_forty_threads_over_three_databases_share_the_process_bound(
    postgres_url: str, schema: str
) -> None:
    pool = small_pool(postgres_url, schema, 4, 10.0)
    dbs = [Database(postgres_url, schema=schema) for _ in range(3)]
    backends: set[int] = set()
    failures: list[BaseException] = []

    def work(db: Database) -> None:
        try:
            for _ in range(20):
                with db.transaction() as cur:
                    cur.execute("SELECT pg_backend_pid()")
                    backends.add(int(cur.fetchone()[0]))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(dbs[i % 3],)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert not failures
    assert 1 <= len(backends) <= 4
    assert dbs[0].pool is pool and dbs[2].pool is pool and pool.open <= 4


def test_a_thread_finding_every_connection_held_fails_as_the_store_unavailable(
    postgres_url: str, schema: str
) -> None:
    pool = small_pool(postgres_url, schema, 1, 0.3)
    db = Database(postgres_url, schema=schema)
    _, release, holder = hold_one(Database(postgres_url, schema=schema))
    started = time.monotonic()
    try:
        with pytest.raises(PoolExhausted, match="database_pool_size") as raised:
            db.query("SELECT 2")
        waited = time.monotonic() - started
    finally:
        release.set()
        holder.join()
    assert waited >= 0.25
    assert isinstance(raised.value, STORE_ERRORS)  # the API's 503, a consumer's retry
    assert pool.open == 1 and pool.idle == 1  # nothing opened past the bound
    assert db.query("SELECT 3") == [(3,)]  # and the held one serves the next


def test_a_released_connection_goes_to_the_waiting_thread(
    postgres_url: str, schema: str
) -> None:
    pool = small_pool(postgres_url, schema, 1, 10.0)
    db = Database(postgres_url, schema=schema)
    assert db.pool is pool
    pids: list[int] = []
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db.transaction() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pids.append(int(cur.fetchone()[0]))
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    threading.Timer(0.2, release.set).start()
    started = time.monotonic()
    assert db.query("SELECT pg_backend_pid()") == [(pids[0],)]
    assert time.monotonic() - started < 5
    holder.join()


def test_a_transaction_inside_another_databases_gets_its_own_without_waiting(
    postgres_url: str, schema: str
) -> None:
    pool = small_pool(postgres_url, schema, 1, 5.0)
    outer, inner = Database(postgres_url, schema=schema), Database(postgres_url, schema=schema)
    started = time.monotonic()
    with outer.transaction() as cur:
        cur.execute("SELECT pg_backend_pid()")
        mine = cur.fetchone()[0]
        assert inner.query("SELECT pg_backend_pid()")[0][0] != mine
    assert time.monotonic() - started < 2
    assert pool.open == 1  # the one past the bound was closed when handed back


def test_a_pool_and_its_idle_connections_go_with_the_last_database_using_it(
    postgres_url: str, schema: str
) -> None:
    """A process that opens Databases of many schemas (a test session does) must not keep
    every schema's idle connections until the server has no slot left."""
    import gc

    import psycopg

    db = Database(postgres_url, schema=schema)
    backend = db.query("SELECT pg_backend_pid()")[0][0]
    del db
    gc.collect()
    assert (postgres_url, schema) not in pg_pool._POOLS
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        deadline = time.monotonic() + 5
        while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                           (backend,)).fetchone()[0]:
            assert time.monotonic() < deadline, "the idle connection was left open"
            time.sleep(0.05)
