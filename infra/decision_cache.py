"""Aggregates as this process last saved them, lent to the next decision about them.

Most decisions follow one the same process just made (a registration is approved right
after it was submitted), and reading an aggregate back costs a query, decoding and the
opening of its sealed personal fields. A decision instead borrows the aggregate saved
last: borrowing removes it from the cache, so no two decisions ever hold one object and
a decision that fails (and may have changed the object) simply never gives it back.

A borrowed aggregate may be stale — another process, or another application on the same
store, changed it since. Decisions that borrow save every aggregate they read, so a stale
one fails the save with a version conflict, and the decision is then made again on fresh
reads; a domain error met on borrowed state is likewise re-checked on fresh state before
the caller sees it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any
from uuid import UUID

# Bounded (a few MB): an approval that comes days after its submission reads afresh anyway.
MAX_AGGREGATES = 4096


class _ThreadState(threading.local):
    # Class-level defaults: a thread that never set them reads these, not an error.
    lending = False
    borrowed = 0


class DecisionCache:
    def __init__(self, max_aggregates: int = MAX_AGGREGATES) -> None:
        self.max_aggregates = max_aggregates
        # Oldest first. A plain dict emptied from the front leaves deleted slots there, which
        # every next(iter()) walked again: a tenth of a command's CPU once the cache was full.
        self._held: OrderedDict[UUID, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._local = _ThreadState()
        self.lent = 0

    @property
    def lending(self) -> bool:
        """Whether the current thread's reads may borrow (only inside a decision)."""
        return self._local.lending

    @lending.setter
    def lending(self, value: bool) -> None:
        self._local.lending = value
        self._local.borrowed = 0

    @property
    def borrowed(self) -> int:
        """How many aggregates the current thread's decision borrowed."""
        return self._local.borrowed

    def borrow(self, aggregate_id: UUID) -> Any | None:
        with self._lock:
            found = self._held.pop(aggregate_id, None)
        if found is not None:
            self.lent += 1
            self._local.borrowed = self.borrowed + 1
        return found

    def keep(self, aggregates: Iterable[Any]) -> None:
        """The aggregates as just saved (their pending events collected)."""
        held = self._held
        with self._lock:
            for aggregate in aggregates:
                held[aggregate.id] = aggregate
                held.move_to_end(aggregate.id)  # the order stays the order of last saving
            while len(held) > self.max_aggregates:
                held.popitem(last=False)

    def forget(self, aggregate_ids: Iterable[UUID]) -> None:
        with self._lock:
            for aggregate_id in aggregate_ids:
                self._held.pop(aggregate_id, None)

    def clear(self) -> None:
        with self._lock:
            self._held.clear()
