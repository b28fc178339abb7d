"""Group commit: concurrent commands share a store transaction, yet each keeps its own
atomicity, its own notification ids and its own version conflict."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import RecordConflictError

from infra.application import KoshApplication
from infra.batching import CommandBatcher
from infra.settings import Settings


class Tally(Aggregate):
    @event("Opened")
    def __init__(self, label: str) -> None:
        self.label = label
        self.count = 0

    @event("Counted")
    def count_one(self) -> None:
        self.count += 1


class HeldBatcher(CommandBatcher):
    """Holds its first transaction until released, so the next commands queue up and are
    written together in the second one."""

    def __init__(self, recorder: Any) -> None:
        super().__init__(recorder)
        self.release = threading.Event()
        self.holding = threading.Event()
        self.sizes: list[int] = []

    def _write(self, batch: list[Any]) -> list[Any]:
        if not self.sizes:
            self.holding.set()
            self.release.wait(10)
        self.sizes.append(len(batch))
        return super()._write(batch)


def queued(batcher: HeldBatcher, count: int) -> bool:
    with batcher._lock:
        return len(batcher._queue) >= count


def test_a_version_conflict_fails_only_its_own_command_in_a_shared_transaction(
    store_settings: Settings,
) -> None:
    app = KoshApplication(store_settings)
    try:
        _conflict_in_a_shared_transaction(app)
    finally:
        app.close()


def _conflict_in_a_shared_transaction(app: KoshApplication) -> None:
    shared = Tally("shared")
    app.save(shared)
    app.batcher = batcher = HeldBatcher(app.recorder)
    first, second = app.repository.get(shared.id), app.repository.get(shared.id)
    first.count_one()
    second.count_one()  # the same version as `first`: only one of them may stand
    others = [Tally(f"other {i}") for i in range(3)]

    with ThreadPoolExecutor(6) as pool:
        blocker = pool.submit(app.save, Tally("blocker"))
        assert batcher.holding.wait(10)
        saves = [pool.submit(app.save, agg) for agg in [first, *others]]
        assert _wait(lambda: queued(batcher, 4))
        late = pool.submit(app.save, second)
        assert _wait(lambda: queued(batcher, 5))
        batcher.release.set()
        blocker.result(10)
        recordings = [s.result(10) for s in saves]
        with pytest.raises(RecordConflictError):
            late.result(10)

    assert batcher.sizes == [1, 5]  # the five commands shared one transaction
    stored = {n.id: n for n in app.recorder.select_notifications(start=1, limit=100)}
    for aggregate, recording in zip([first, *others], recordings, strict=True):
        (rec,) = recording
        assert stored[rec.notification.id].originator_id == aggregate.id
    assert app.repository.get(shared.id).count == 1
    assert app.repository.get(others[2].id).label == "other 2"


def test_concurrent_commands_each_get_their_own_events_back(store_settings: Settings) -> None:
    app = KoshApplication(store_settings)
    try:
        _each_gets_its_own(app)
    finally:
        app.close()


def _each_gets_its_own(app: KoshApplication) -> None:
    tallies = [Tally(f"t{i}") for i in range(40)]
    for t in tallies:
        t.count_one()

    with ThreadPoolExecutor(16) as pool:
        recordings = list(pool.map(app.save, tallies))

    ids = [r.notification.id for rs in recordings for r in rs]
    assert len(ids) == len(set(ids)) == 80
    stored = {n.id: n for n in app.recorder.select_notifications(start=1, limit=200)}
    for tally, recs in zip(tallies, recordings, strict=True):
        assert [stored[r.notification.id].originator_id for r in recs] == [tally.id] * 2
        assert [stored[r.notification.id].originator_version for r in recs] == [1, 2]


def _wait(predicate: Any, timeout: float = 10.0) -> bool:
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return True
        done.wait(0.01)
    return False
