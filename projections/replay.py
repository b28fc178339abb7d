"""Rebuilds registers from a stream of events, into a database of their own.

Works over the Projection protocol alone, so every register, present and future, can
be replayed, read as of a past date, and compared with the live one. Writes are batched
(one transaction per `batch` events): a rebuild is a bulk load, not a stream of commits.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder, Mapper

from infra.personal_data import SEALED, SealingMapper
from infra.sql import Cursor, Database
from projections.projector import Delivered, Projection, Projector

_TABLE = re.compile(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?\"?(\w+)\"?", re.IGNORECASE)

Progress = Callable[[int, int], None]  # (events read so far, last sequence number)


class _FastDecoding:
    """The store's JSON transcoder, decoding with orjson. Kosh events hold plain JSON but
    for the library's own typed values (the timestamp), which sit at the top level; any
    other typed value sends the state through the library's decoder unchanged."""

    def __init__(self, transcoder: JSONTranscoder) -> None:
        self.inner = transcoder

    def encode(self, obj: Any) -> bytes:
        return self.inner.encode(obj)

    def decode(self, data: bytes) -> Any:
        state = orjson.loads(data)
        typed = data.count(b'"_type_":')
        if not typed or not isinstance(state, dict):
            return state if not typed else self.inner.decode(data)
        for key, value in state.items():
            if isinstance(value, dict) and len(value) == 2 and "_type_" in value:
                transcoding = self.inner.names.get(value["_type_"])
                if transcoding is None or "_data_" not in value:
                    return self.inner.decode(data)
                state[key] = transcoding.decode(value["_data_"])
                typed -= 1
        return state if typed == 0 else self.inner.decode(data)


def fast_mapper(mapper: Any) -> Any:
    """The same mapper with a faster JSON decoder, when its transcoder is the library's
    plain one and the bytes are neither enciphered nor compressed. A mapper that does
    more with the decoded state (sealing) keeps doing it: it decodes through
    `self.transcoder` like the library's."""
    plain = (
        isinstance(mapper, Mapper)
        and type(mapper.transcoder) is JSONTranscoder
        and not mapper.cipher
        and not mapper.compressor
    )
    if not plain:
        return mapper
    fast = copy.copy(mapper)
    fast.transcoder = _FastDecoding(mapper.transcoder)
    if type(mapper) is SealingMapper:
        return _SkipsUnsealing(fast)
    return fast


class _SkipsUnsealing:
    """Most events hold no sealed field (decisions, counters): for them, opening sealed
    fields is a walk over every value that finds nothing. Bytes without the seal marker
    go straight to the library's decoding; the rest are unsealed as the store does."""

    _MARK = orjson.dumps(SEALED)

    def __init__(self, sealing: Any) -> None:
        self.sealing = sealing
        self.transcoder = sealing.transcoder

    def to_domain_event(self, stored: Any) -> Any:
        if self._MARK in stored.state:
            return self.sealing.to_domain_event(stored)
        return Mapper.to_domain_event(self.sealing, stored)

    def to_stored_event(self, domain_event: Any) -> Any:
        return self.sealing.to_stored_event(domain_event)


class StoreReader:
    """Reads the store's notification log (the system of record), page by page."""

    def __init__(self, recorder: Any, mapper: Any, page: int = 5000) -> None:
        self.recorder = recorder
        self.mapper = fast_mapper(mapper)
        self.page = page

    def head(self) -> int:
        return int(self.recorder.max_notification_id() or 0)

    def notifications(self, start: int = 1, stop: int | None = None) -> Iterator[Any]:
        while True:
            batch = self.recorder.select_notifications(start=start, limit=self.page, stop=stop)
            if not batch:
                return
            yield from batch
            start = batch[-1].id + 1
            if stop is not None and start > stop:
                return

    def events(self, start: int = 1, stop: int | None = None) -> Iterator[Delivered]:
        for n in self.notifications(start, stop):
            yield Delivered(n.id, self.mapper.to_domain_event(n))


@dataclass
class RebuildResult:
    applied: int = 0
    last_seq: int = 0
    # Events a projection could not apply (only when tolerated, in as-of reads): seq → error.
    skipped: dict[int, str] = field(default_factory=dict)


def table_names(projection: Projection) -> list[str]:
    return [m.group(1) for d in projection.ddl if (m := _TABLE.search(d))]


def rebuild(
    db: Database,
    projections: Sequence[Projection],
    events: Iterable[Delivered],
    *,
    batch: int = 5000,
    record_applied: bool = True,
    tolerate_errors: bool = False,
    progress: Progress | None = None,
) -> RebuildResult:
    """Applies `events` (in the order given) to empty registers in `db`.

    With `record_applied`, the projector's bookkeeping is written too, so the result can
    take over from the live database and the consumers go on from where it stops.
    With `tolerate_errors`, an event a projection refuses is skipped and reported
    instead of failing the whole rebuild (an as-of cut can leave a decision without the
    event of another case it relied on)."""
    bulk_load(db)
    Projector(db, projections)  # creates the tables
    if record_applied:
        with db.transaction() as cur:
            cur.execute("CREATE TEMPORARY TABLE IF NOT EXISTS replay_seqs (seq BIGINT PRIMARY KEY)")
            cur.execute("DELETE FROM replay_seqs")
    result = RebuildResult()
    pending: list[Delivered] = []
    for delivered in events:
        pending.append(delivered)
        if len(pending) >= batch:
            _flush(db, projections, pending, result, record_applied, tolerate_errors)
            pending = []
            if progress:
                progress(result.applied, result.last_seq)
    if pending:
        _flush(db, projections, pending, result, record_applied, tolerate_errors)
    if record_applied:
        _record_applied(db, projections)
    if progress:
        progress(result.applied, result.last_seq)
    return result


def _record_applied(db: Database, projections: Sequence[Projection]) -> None:
    """The projector's bookkeeping for every replayed event, written by the database in
    one statement per projection rather than row by row from Python."""
    with db.transaction() as cur:
        for p in projections:
            cur.execute(
                "INSERT INTO projection_applied (projection, seq) "
                "SELECT ?, seq FROM replay_seqs WHERE 1 = 1 ON CONFLICT DO NOTHING",
                (p.name,),
            )
            cur.execute(
                "INSERT INTO projection_status (projection, applied_count, max_seq, updated_at) "
                "SELECT ?, COUNT(*), COALESCE(MAX(seq), 0), ? FROM projection_applied "
                "WHERE projection = ? ON CONFLICT (projection) DO UPDATE SET "
                "applied_count = excluded.applied_count, max_seq = excluded.max_seq, "
                "updated_at = excluded.updated_at",
                (p.name, time.time(), p.name),
            )
        cur.execute("DROP TABLE replay_seqs")


def bulk_load(db: Database) -> None:
    """A rebuild file is worthless until complete, so it skips the fsyncs and the WAL
    that protect a live register from a crash mid-way."""
    if db.is_postgres:
        return
    conn = db.connection()
    conn.execute("PRAGMA journal_mode=MEMORY")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-65536")
    conn.execute("PRAGMA temp_store=MEMORY")


def _flush(
    db: Database,
    projections: Sequence[Projection],
    batch: list[Delivered],
    result: RebuildResult,
    record_applied: bool,
    tolerate: bool,
) -> None:
    with db.transaction() as cur:
        if record_applied:
            cur.executemany(
                "INSERT INTO replay_seqs (seq) VALUES (?) ON CONFLICT DO NOTHING",
                [(d.seq,) for d in batch],
            )
        for projection in projections:
            for d in batch:
                if tolerate:
                    _apply_guarded(cur, projection, d, result)
                else:
                    projection.apply(cur, d.seq, d.event)
    result.applied += len(batch)
    result.last_seq = max(result.last_seq, batch[-1].seq)


def _apply_guarded(
    cur: Cursor, projection: Projection, d: Delivered, result: RebuildResult
) -> None:
    cur.execute("SAVEPOINT kosh_event")
    try:
        projection.apply(cur, d.seq, d.event)
    except Exception as exc:  # noqa: BLE001 - reported to the reader, never hidden
        cur.execute("ROLLBACK TO SAVEPOINT kosh_event")
        result.skipped[d.seq] = f"{projection.name}: {type(exc).__name__}: {exc}"
    cur.execute("RELEASE SAVEPOINT kosh_event")


def columns_of(db: Database, table: str) -> list[str]:
    with db.transaction() as cur:
        cur.execute(f"SELECT * FROM {table} WHERE 1 = 0")  # noqa: S608 - name from our DDL
        return [c[0] for c in cur._raw.description]


def dump(db: Database, projection: Projection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of a projection, sorted: what 'equal registers' means."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table in table_names(projection):
        rows = db.query(f"SELECT * FROM {table}")  # noqa: S608 - name from our DDL
        out[table] = sorted((tuple(r) for r in rows), key=repr)
    return out


def differences(live: Database, rebuilt: Database, projection: Projection) -> list[str]:
    """Human-readable differences between a live register and its rebuild."""
    out = []
    a, b = dump(live, projection), dump(rebuilt, projection)
    for table in a:
        only_live = set(a[table]) - set(b[table])
        only_rebuilt = set(b[table]) - set(a[table])
        if only_live or only_rebuilt:
            out.append(
                f"{projection.name}.{table}: {len(only_live)} rows only in the live "
                f"register, {len(only_rebuilt)} only in the rebuild"
            )
    return out


class Rate:
    """Events per second over the whole run (for logs and the progress bar)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def per_second(self, count: int) -> float:
        return count / max(time.perf_counter() - self.started, 1e-9)
