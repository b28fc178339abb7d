"""The publisher's position is saved off its path, newest value wins, never a stale one
after a newer one was set."""

from __future__ import annotations

import threading

from infra.positions import PositionStore
from infra.publisher_position import PositionWriter
from infra.sql import Database


def _store(tmp_path) -> PositionStore:  # type: ignore[no-untyped-def]
    return PositionStore(Database(None, tmp_path / "events.sqlite"))


def test_flush_saves_the_newest_position(tmp_path) -> None:  # type: ignore[no-untyped-def]
    positions = _store(tmp_path)
    writer = PositionWriter(positions, "publisher")
    for p in range(1, 200):
        writer.set(p)
    assert writer.flush(10)
    assert positions.get("publisher") == 199
    writer.close()


def test_a_reset_after_higher_positions_is_what_stays(tmp_path) -> None:  # type: ignore[no-untyped-def]
    positions = _store(tmp_path)
    writer = PositionWriter(positions, "publisher")
    writer.set(500)
    writer.set(0)
    assert writer.flush(10)
    assert positions.get("publisher") == 0
    writer.close()
    assert positions.get("publisher") == 0


def test_a_failed_save_is_retried(tmp_path) -> None:  # type: ignore[no-untyped-def]
    positions = _store(tmp_path)
    failures = threading.Semaphore(2)
    real_save = positions.save

    def flaky(name: str, position: int) -> None:
        if failures.acquire(blocking=False):
            raise OSError("database away")
        real_save(name, position)

    positions.save = flaky  # type: ignore[method-assign]
    writer = PositionWriter(positions, "publisher")
    writer.set(7)
    assert writer.flush(10)
    assert PositionStore(positions.db).get("publisher") == 7
    writer.close()


def test_close_saves_what_was_set(tmp_path) -> None:  # type: ignore[no-untyped-def]
    positions = _store(tmp_path)
    writer = PositionWriter(positions, "publisher")
    writer.set(42)
    writer.close()
    assert positions.get("publisher") == 42
