"""Rebuilds registers from a stream of events, into a database of their own.

Works over the Projection protocol alone, so every register, present and future, can
be replayed, read as of a past date, and compared with the live one. Writes are batched
(one transaction per `batch` events): a rebuild is a bulk load, not a stream of commits.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.utils import resolve_topic

from infra.sql import Cursor, Database
from projections.projector import BOOKKEEPING_DDL, Delivered, Projection
from projections.replay_decoding import decode_row, fast_mapper

_TABLE = re.compile(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?\"?(\w+)\"?", re.IGNORECASE)

Progress = Callable[[int, int], None]  # (events read so far, last sequence number)

# A run of consecutive sequence numbers spelled out by the database itself.
COUNTING = ("WITH RECURSIVE s(seq) AS (SELECT ? UNION ALL SELECT seq + 1 FROM s "
            "WHERE seq < ?) ")


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

    def rows(self, start: int = 1, stop: int | None = None) -> Iterator[list[Row]]:
        """Pages of (seq, originator id, version, topic, state) in store order. On SQLite,
        plain tuples straight from the table: a rebuild reads every row once, and the
        library's notification objects (and a UUID each) cost more than the reading."""
        table = getattr(self.recorder, "events_table_name", None)
        if not isinstance(self.recorder, SQLiteApplicationRecorder) or not table:
            for page in _pages(self.notifications(start, stop), self.page):
                yield [
                    (n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in page
                ]
            return
        statement = (
            "SELECT rowid, originator_id, originator_version, topic, state "  # noqa: S608
            f"FROM {table} WHERE rowid >= ? AND rowid <= ? ORDER BY rowid LIMIT ?"
        )
        last = stop if stop is not None else 2**62
        while start <= last:
            with self.recorder.datastore.transaction(commit=False) as c:
                raw = c.sqlite_cursor
                raw.row_factory = None
                raw.execute(statement, (start, last, self.page))
                page = raw.fetchall()
            if not page:
                return
            yield page
            start = page[-1][0] + 1

    def events(
        self, start: int = 1, stop: int | None = None, wanted: Callable[[str], bool] | None = None
    ) -> Iterator[Delivered]:
        """With `wanted` (a test of the stored topic), an event it refuses is yielded
        undecoded (event None): no register reads it, so decoding it is wasted."""
        for page in self.rows(start, stop):
            yield from decoded(self.mapper, page, wanted)


Row = tuple[int, Any, int, str, bytes]


def decoded(
    mapper: Any, rows: Iterable[Row], wanted: Callable[[str], bool] | None = None
) -> Iterator[Delivered]:
    if wanted is None:
        for seq, originator_id, version, topic, state in rows:
            yield Delivered(seq, decode_row(mapper, originator_id, version, topic, state))
        return
    known: dict[str, bool] = {}  # a dict lookup a row, not a call
    for seq, originator_id, version, topic, state in rows:
        hit = known.get(topic)
        if hit is None:
            hit = known[topic] = wanted(topic)
        if hit:
            yield Delivered(seq, decode_row(mapper, originator_id, version, topic, state))
        else:
            yield Delivered(seq, None)


def _pages(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    page: list[Any] = []
    for item in items:
        page.append(item)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page


def wanted_by(projections: Sequence[Projection]) -> Callable[[str], bool] | None:
    """Which stored topics any of `projections` applies, from the event classes each
    declares it `handles` (qualified-name prefixes); None when one does not say."""
    prefixes: list[str] = []
    for p in projections:
        handles = getattr(p, "handles", None)
        if handles is None:
            return None
        prefixes.extend(handles)
    known: dict[str, bool] = {}

    def wanted(topic: str) -> bool:
        hit = known.get(topic)
        if hit is None:
            hit = known[topic] = resolve_topic(topic).__qualname__.startswith(tuple(prefixes))
        return hit

    return wanted


@dataclass
class RebuildResult:
    applied: int = 0
    last_seq: int = 0
    # Events a projection could not apply (only when tolerated, in as-of reads): seq → error.
    skipped: dict[int, str] = field(default_factory=dict)
    # The sequence numbers read, as runs [first, last] of consecutive ones.
    runs: list[list[int]] = field(default_factory=list)

    def count(self, read: list[tuple[int, int]], events: int, last_seq: int) -> None:
        """`events` more read, in the runs `read` (as `_runs_of` gives them)."""
        runs = self.runs
        for first, last in read:
            if runs and runs[-1][0] <= first <= runs[-1][1] + 1:
                runs[-1][1] = max(runs[-1][1], last)
            else:
                runs.append([first, last])
        self.applied += events
        self.last_seq = max(self.last_seq, last_seq)


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
    if record_applied:
        create_applied_table(db)
    later = create_tables(db, projections)
    result = RebuildResult()
    plan = [_Plan(p, tolerate_errors) for p in projections]
    pending: list[Delivered] = []
    for delivered in events:
        pending.append(delivered)
        if len(pending) >= batch:
            _flush(db, plan, pending, result)
            pending = []
            if progress:
                progress(result.applied, result.last_seq)
    if pending:
        _flush(db, plan, pending, result)
    with db.transaction() as cur:
        for ddl in later:
            cur.execute(ddl)
    if record_applied:
        _record_applied(db, projections, result.runs)
    if progress:
        progress(result.applied, result.last_seq)
    return result


def create_applied_table(db: Database) -> None:
    if db.is_postgres:
        return
    with db.transaction() as cur:
        # The projector's own table (same columns, same key), kept in key order only:
        # one b-tree, not two, for the rows a rebuild writes beyond the floor.
        cur.execute(
            "CREATE TABLE IF NOT EXISTS projection_applied (projection TEXT NOT NULL, "
            "seq BIGINT NOT NULL, PRIMARY KEY (projection, seq)) WITHOUT ROWID"
        )


_INDEX = re.compile(r"\s*CREATE\s+INDEX\b", re.IGNORECASE)


def create_tables(db: Database, projections: Sequence[Projection]) -> list[str]:
    """Creates the registers' tables and the projector's; returns the statements of the
    plain (not unique) indexes, left for after the load: no statement a projection runs
    gives another answer without them, and SQLite builds one from sorted keys far faster
    than it inserts a rebuild's keys into it one by one in random order."""
    later = [d for p in projections for d in p.ddl if _INDEX.match(d)]
    now = [d for p in projections for d in p.ddl if not _INDEX.match(d)]
    with db.transaction() as cur:
        for ddl in [*BOOKKEEPING_DDL, *now]:
            cur.execute(ddl)
    return later


def _own_file(db: Database) -> bool:
    """A SQLite file another connection can open (not a memory database)."""
    name = str(db.sqlite_path or "")
    return not db.is_postgres and bool(name) and ":memory:" not in name and (
        "mode=memory" not in name)


class _Batch:
    """A batch's decoded events and the classes among them, so that each projection
    finds its share by class (a handful a batch) rather than event by event."""

    def __init__(self, delivered: Sequence[Delivered]) -> None:
        self.decoded = [d for d in delivered if d.event is not None]
        self.kinds = {type(d.event) for d in self.decoded}

    def events_for(self, plan: _Plan) -> list[Delivered]:
        mine = {k for k in self.kinds if plan.takes(k)}
        if len(mine) == len(self.kinds):
            return self.decoded
        if not mine:
            return []
        return [d for d in self.decoded if type(d.event) in mine]


class _Plan:
    """How a rebuild feeds one projection: only the events of the classes it `handles`,
    and through its `rebuilder()` (write-back caches, a batch at a time) when it has one.
    Tolerating errors needs each event applied on its own (a savepoint each)."""

    def __init__(self, projection: Projection, tolerate: bool) -> None:
        self.projection = projection
        self.tolerate = tolerate
        make = getattr(projection, "rebuilder", None)
        self.applier = make() if make is not None and not tolerate else None
        self._begun = False
        handles = getattr(projection, "handles", None)
        self.prefixes = tuple(handles) if handles is not None else None
        self._takes: dict[type, bool] = {}

    def takes(self, kind: type) -> bool:
        hit = self._takes.get(kind)
        if hit is None:
            hit = self._takes[kind] = self.prefixes is None or kind.__qualname__.startswith(
                self.prefixes)
        return hit

    def apply(self, cur: Cursor, batch: _Batch, result: RebuildResult) -> None:
        mine = batch.events_for(self)
        if not mine:
            return
        if self.applier is not None:
            if not self._begun:
                begin = getattr(self.applier, "begin", None)
                if begin is not None:
                    begin(cur)
                self._begun = True
            self.applier.prefetch(cur, [d.event for d in mine])
            apply_all = getattr(self.applier, "apply_all", None)
            if apply_all is not None:
                apply_all(cur, mine)
            else:
                for d in mine:
                    self.applier.apply(cur, d.seq, d.event)
            self.applier.flush(cur)
        elif self.tolerate:
            for d in mine:
                _apply_guarded(cur, self.projection, d, result)
        else:
            for d in mine:
                self.projection.apply(cur, d.seq, d.event)


def _record_applied(db: Database, projections: Sequence[Projection],
                    runs: Sequence[list[int]]) -> None:
    """The projector's bookkeeping for every replayed event (the `runs` of consecutive
    sequence numbers read): the run from 1 as each register's floor, one row however
    long (a row per event and register was most of what a rebuild wrote); any later run
    (numbers the store skipped, as PostgreSQL's sequence does on a rollback) spelled out
    by the database. A run that starts above 1 gets no floor: a lower number may still
    be committed and must then be applied. Then each register's status."""
    floor = runs[0][1] if runs and runs[0][0] == 1 else 0
    rest = [(lo, hi) for lo, hi in runs if lo > floor]
    with db.transaction() as cur:
        if rest and not db.is_postgres:
            # Spelled out once, not once per register (every register saw every event).
            cur.execute("CREATE TEMP TABLE kosh_replayed (seq INTEGER PRIMARY KEY)")
            cur.executemany(COUNTING + "INSERT OR IGNORE INTO kosh_replayed (seq) "
                            "SELECT seq FROM s", rest)
        for p in projections:
            if floor:
                cur.execute("INSERT INTO projection_floor (projection, seq) VALUES (?, ?) "
                            "ON CONFLICT (projection) DO UPDATE SET seq = CASE WHEN "
                            "excluded.seq > projection_floor.seq THEN excluded.seq "
                            "ELSE projection_floor.seq END", (p.name, floor))
            if rest and not db.is_postgres:
                cur.execute("INSERT INTO projection_applied (projection, seq) SELECT ?, seq "
                            "FROM kosh_replayed WHERE 1 = 1 ON CONFLICT DO NOTHING", (p.name,))
            elif rest:
                cur.executemany(COUNTING + "INSERT INTO projection_applied (projection, seq) "
                                "SELECT ?, seq FROM s WHERE 1 = 1 ON CONFLICT DO NOTHING",
                                [(lo, hi, p.name) for lo, hi in rest])
            cur.execute(
                "INSERT INTO projection_status (projection, applied_count, max_seq, updated_at) "
                "SELECT ?, f.seq + COUNT(a.seq), CASE WHEN MAX(a.seq) > f.seq THEN MAX(a.seq) "
                "ELSE f.seq END, ? FROM (SELECT COALESCE(MAX(seq), 0) AS seq FROM "
                "projection_floor WHERE projection = ?) f LEFT JOIN projection_applied a "
                "ON a.projection = ? AND a.seq > f.seq WHERE 1 = 1 GROUP BY f.seq "
                "ON CONFLICT (projection) DO UPDATE SET "
                "applied_count = excluded.applied_count, max_seq = excluded.max_seq, "
                "updated_at = excluded.updated_at",
                (p.name, time.time(), p.name, p.name),
            )
        if rest and not db.is_postgres:
            cur.execute("DROP TABLE kosh_replayed")


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


def _flush(db: Database, plan: Sequence[_Plan], batch: list[Delivered],
           result: RebuildResult) -> None:
    shared = _Batch(batch)
    with db.transaction() as cur:
        for step in plan:
            step.apply(cur, shared, result)
    result.count(_runs_of([d.seq for d in batch]), len(batch), batch[-1].seq)


def _runs_of(seqs: list[int]) -> list[tuple[int, int]]:
    """Runs [first, last] of consecutive numbers, in the order given."""
    first = seqs[0]
    if seqs == list(range(first, first + len(seqs))):  # the usual batch: one run
        return [(first, seqs[-1])]
    out: list[tuple[int, int]] = []
    lo = hi = first
    for seq in seqs[1:]:
        if seq == hi + 1:
            hi = seq
        else:
            out.append((lo, hi))
            lo = hi = seq
    out.append((lo, hi))
    return out


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
