"""PostgreSQL connections are pooled and bounded: many threads share a few server
connections, and a thread that finds them all held still gets one in the end."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from infra.sql import Database
from tests.conftest import _drop_schema

pytestmark = pytest.mark.postgres


@pytest.fixture
def db(postgres_url: str) -> Iterator[Database]:
    schema = f"kosh_pool_{uuid.uuid4().hex[:10]}"
    yield Database(postgres_url, schema=schema)
    _drop_schema(schema)


def test_forty_threads_share_at_most_max_open_server_connections(db: Database) -> None:
    backends: set[int] = set()
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                with db.transaction() as cur:
                    cur.execute("SELECT pg_backend_pid()")
                    backends.add(int(cur.fetchone()[0]))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert not failures
    assert 1 <= len(backends) <= Database.MAX_OPEN


def test_a_thread_finding_every_connection_held_waits_then_gets_one_more(
    db: Database,
) -> None:
    db.MAX_OPEN, db.MAX_WAIT_S = 1, 0.3
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db.transaction() as cur:
            cur.execute("SELECT 1")
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    started = time.monotonic()
    try:
        assert db.query("SELECT 2") == [(2,)]
        waited = time.monotonic() - started
    finally:
        release.set()
        holder.join()
    assert waited >= 0.25
    # Both connections were handed back; only the bound's worth is kept open.
    assert db._open == 1 and len(db._idle) == 1


def test_a_released_connection_goes_to_the_waiting_thread(db: Database) -> None:
    db.MAX_OPEN, db.MAX_WAIT_S = 1, 10.0
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db.transaction() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pids.append(int(cur.fetchone()[0]))
            held.set()
            release.wait(10)

    pids: list[int] = []
    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    threading.Timer(0.2, release.set).start()
    started = time.monotonic()
    assert db.query("SELECT pg_backend_pid()") == [(pids[0],)]
    assert time.monotonic() - started < 5
    holder.join()
