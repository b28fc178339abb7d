"""Registers as they stood on a past date, without touching the live system.

Auditors ask two questions: what did the register say *by effective date* D (every
decision that had taken effect by D), and what did it say *as recorded* at time T (every
event the store held at T, whatever its effective date). Either way the register is
rebuilt from the store's events into a private SQLite file, with the register's own
projection code, so a past register is derived exactly like the live one; the live
database is only ever read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.sql import Database
from projections.projector import Delivered, Projection
from projections.replay import RebuildResult, StoreReader, rebuild


@dataclass(frozen=True)
class Cutoff:
    """Exactly one of: an effective date (inclusive) or a recorded time (inclusive)."""

    effective_on: dt.date | None = None
    recorded_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        if (self.effective_on is None) == (self.recorded_at is None):
            raise ValueError("give either an effective date or a recorded time, not both")
        if self.recorded_at is not None and self.recorded_at.tzinfo is None:
            # The store records UTC; a time without a zone is read as UTC.
            object.__setattr__(self, "recorded_at", self.recorded_at.replace(tzinfo=dt.UTC))

    @property
    def key(self) -> str:
        if self.effective_on is not None:
            return f"effective:{self.effective_on.isoformat()}"
        assert self.recorded_at is not None
        return f"recorded:{self.recorded_at.isoformat()}"

    def as_dict(self) -> dict[str, str]:
        if self.effective_on is not None:
            return {"effective_on": self.effective_on.isoformat()}
        assert self.recorded_at is not None
        return {"recorded_at": self.recorded_at.isoformat()}

    def admits(self, event: Any) -> bool:
        if self.recorded_at is not None:
            return bool(event.timestamp <= self.recorded_at)
        assert self.effective_on is not None
        return effective_date_of(event) <= self.effective_on


def effective_date_of(event: Any) -> dt.date:
    meta = getattr(event, "meta", None) or {}
    raw = meta.get("effective_date") if isinstance(meta, dict) else None
    if raw:
        return dt.date.fromisoformat(str(raw))
    # Events without a decision date (none so far) take effect when recorded.
    return event.timestamp.date()


def events_as_of(events: Iterable[Delivered], cutoff: Cutoff) -> Iterator[Delivered]:
    """The events a register held at the cut-off, in store order.

    A case's later event cannot count without its earlier ones: once one event of an
    aggregate falls after the cut-off, so do all its later events (a decision backdated
    before the application it decides on is not applied to a case that did not yet exist).
    """
    cut: set[Any] = set()
    for d in events:
        origin = d.event.originator_id
        if origin in cut:
            continue
        if cutoff.admits(d.event):
            yield d
        else:
            cut.add(origin)


@dataclass
class AsOfView:
    """A register rebuilt as of a cut-off: query it with the register's own query class."""

    db: Database
    cutoff: Cutoff
    store_head: int
    result: RebuildResult


class AsOfRegisters:
    """Builds and caches past registers, keyed by (projections, cut-off, store head): the
    same question on an unchanged store is answered from the file built the first time."""

    def __init__(self, reader: StoreReader, projections: Callable[[], Sequence[Projection]],
                 cache_dir: Path, keep: int = 16) -> None:
        self.reader = reader
        self.projections = projections
        self.cache_dir = cache_dir
        self.keep = keep
        self._cache: OrderedDict[str, AsOfView] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}

    def names(self) -> list[str]:
        return [p.name for p in self.projections()]

    def open(self, names: Sequence[str], cutoff: Cutoff) -> AsOfView:
        chosen = self._chosen(names)
        head = self.reader.head()
        key = f"{','.join(sorted(p.name for p in chosen))}|{cutoff.key}|{head}"
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            building = self._building.setdefault(key, threading.Lock())
        with building:  # one build per key; concurrent askers wait for it
            with self._lock:
                if key in self._cache:
                    return self._cache[key]
            view = self._build(key, chosen, cutoff, head)
            with self._lock:
                self._cache[key] = view
                self._building.pop(key, None)
                self._evict()
            return view

    def _chosen(self, names: Sequence[str]) -> list[Projection]:
        known = {p.name: p for p in self.projections()}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise LookupError(f"no register named {', '.join(unknown)}; "
                              f"registers: {', '.join(sorted(known))}")
        return [known[n] for n in names] if names else list(known.values())

    def _build(self, key: str, chosen: list[Projection], cutoff: Cutoff,
               head: int) -> AsOfView:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:24]
        path = self.cache_dir / f"as-of-{digest}-{os.getpid()}.sqlite"
        _remove(path)
        db = Database(None, path)
        events = events_as_of(self.reader.events(stop=head), cutoff)
        result = rebuild(db, chosen, events, record_applied=False, tolerate_errors=True)
        return AsOfView(db=db, cutoff=cutoff, store_head=head, result=result)

    def _evict(self) -> None:
        while len(self._cache) > self.keep:
            _, view = self._cache.popitem(last=False)
            if view.db.sqlite_path is not None:
                _remove(view.db.sqlite_path)


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
