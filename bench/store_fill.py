"""Fills a store with many events fast, in the store's real encoding.

A few thousand real registrations go through the application (real commands, real
sealing of personal data); their stored rows are then copied, each copy with fresh
aggregate ids — in the row and wherever the event names one — and bulk inserted. The
copies share their people with the originals (a sealed field is bound to its data
subject), so registers get a row per case but not a new person per case.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from eventsourcing.persistence import StoredEvent

from bench.workload import run_pairs, submissions
from infra.application import KoshApplication
from infra.settings import Settings

_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
CHUNK = 20_000


@dataclass(frozen=True)
class _Row:
    originator_id: uuid.UUID
    version: int
    topic: str
    state: bytes
    refs: tuple[uuid.UUID, ...]  # aggregate ids the state names


def _copy_id(old: uuid.UUID, copy: int) -> uuid.UUID:
    return uuid.UUID(
        bytes=hashlib.blake2b(old.bytes + copy.to_bytes(4, "big"), digest_size=16).digest(),
        version=4,
    )


def _copies(
    rows: list[_Row], copy: int, cache: dict[uuid.UUID, uuid.UUID]
) -> Iterator[StoredEvent]:
    cache.clear()
    for row in rows:
        new = cache.get(row.originator_id) or cache.setdefault(
            row.originator_id, _copy_id(row.originator_id, copy)
        )
        state = row.state
        for ref in row.refs:
            to = cache.get(ref) or cache.setdefault(ref, _copy_id(ref, copy))
            state = state.replace(str(ref).encode(), str(to).encode()).replace(
                ref.hex.encode(), to.hex.encode()
            )
        yield StoredEvent(
            originator_id=new, originator_version=row.version, topic=row.topic, state=state
        )


def fill(settings: Settings, events: int, registrations: int = 2000) -> int:
    """Makes the store hold at least `events` events; returns how many it holds."""
    app = KoshApplication(settings)
    try:
        run_pairs(app, submissions(max(1, min(registrations, events // 4))))
        template = app.recorder.select_notifications(start=1, limit=10 * registrations + 100)
        aggregates = {uuid.UUID(str(n.originator_id)) for n in template}
        rows = []
        for n in template:
            named = {uuid.UUID(m.decode()) for m in _UUID.findall(n.state)}
            named |= (
                {a for a in aggregates if a.hex.encode() in n.state}
                if b'"uuid_hex"' in n.state
                else set()
            )
            rows.append(
                _Row(
                    uuid.UUID(str(n.originator_id)),
                    n.originator_version,
                    n.topic,
                    n.state,
                    tuple(named & aggregates),
                )
            )
        held = len(rows)
        copy = 0
        cache: dict[uuid.UUID, uuid.UUID] = {}
        chunk: list[StoredEvent] = []
        while held < events:
            copy += 1
            for stored in _copies(rows, copy, cache):
                chunk.append(stored)
                held += 1
                if len(chunk) >= CHUNK or held >= events:
                    app.recorder.insert_events(chunk)
                    chunk = []
                if held >= events:
                    break
        if chunk:
            app.recorder.insert_events(chunk)
        return held
    finally:
        app.close()
