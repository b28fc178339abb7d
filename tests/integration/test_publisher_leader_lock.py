"""Issue 9: the publisher lock itself — one holder at a time, and a holder whose database
connection dies stops working while a standby takes over."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import psycopg
import pytest

from infra.leader import FileLock, PostgresAdvisoryLock, run_as_leader
from tests.support.system import wait_until


class Worker:
    """Records which candidate works, and whether two ever worked at once."""

    def __init__(self) -> None:
        self.working: set[str] = set()
        self.overlap = False
        self.guard = threading.Lock()

    def as_(self, name: str):  # type: ignore[no-untyped-def]
        def work(lead_stop: threading.Event) -> None:
            with self.guard:
                self.overlap |= bool(self.working)
                self.working.add(name)
            lead_stop.wait()
            with self.guard:
                self.working.discard(name)
        return work


def candidates(locks: dict[str, object], worker: Worker) -> tuple[dict[str, threading.Event],
                                                                   list[threading.Thread]]:
    stops = {name: threading.Event() for name in locks}
    threads = [threading.Thread(target=run_as_leader,
                                args=(lock, worker.as_(name), stops[name], 0.1), daemon=True)
               for name, lock in locks.items()]
    for t in threads:
        t.start()
    return stops, threads


def test_file_lock_lets_one_work_and_hands_over_when_it_stops(tmp_path: Path) -> None:
    path = tmp_path / "publisher.lock"
    worker = Worker()
    stops, threads = candidates({"a": FileLock(path), "b": FileLock(path)}, worker)
    try:
        first = wait_until(lambda: next(iter(worker.working), None), what="a leader")
        stops[first].set()
        second = wait_until(lambda: next(iter(worker.working - {first}), None),
                            what="the standby to take over")
        assert second != first and not worker.overlap
    finally:
        for s in stops.values():
            s.set()
        for t in threads:
            t.join(5)


@pytest.mark.postgres
def test_advisory_lock_holder_whose_connection_dies_stops_and_standby_takes_over(
    postgres_url: str,
) -> None:
    schema = f"lock_{uuid.uuid4().hex[:8]}"
    locks = {name: PostgresAdvisoryLock(postgres_url, schema, "publisher") for name in "ab"}
    worker = Worker()
    stops, threads = candidates(locks, worker)
    try:
        first = wait_until(lambda: next(iter(worker.working), None), what="a leader")
        pid = locks[first]._conn.info.backend_pid  # noqa: SLF001 - the connection to cut
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        # The server frees the lock at once; the cut-off leader notices at its next check.
        # (Any events both sent in that instant are repeats, dropped by sequence number.)
        wait_until(lambda: worker.working == {"b" if first == "a" else "a"}, timeout=10,
                   what="the old leader to stop and the standby to lead")
    finally:
        for s in stops.values():
            s.set()
        for t in threads:
            t.join(5)
