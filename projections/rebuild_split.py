"""A rebuild on two cores: the registers split into two groups, one forked process each.

Decoding and applying bind one Python thread, so one process cannot use the second core.
Each register reads and writes only its own tables, so groups of registers can be rebuilt
apart. The process that reads the events (the store or the topic) hands each group's
process the rows it wants through a pipe, a row with sealed personal fields opened once
here (both big registers read the same events); each child decodes and applies its rows
into a scratch file of its own; the reader writes the projector's bookkeeping (a floor
a register, for the run of numbers it read from 1) into the target. At the end the
children's tables are copied into the target's empty ones in SQLite (a transfer of
records), so the target holds what a single-process `replay.rebuild` writes. Three busy
processes on two cores: the kernel keeps both busy, where two unequal halves would leave
one idle. Forked, the children share the mapper, the key cache and the projections
without pickling any of them.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from infra.sql import Database
from projections.projector import Projection
from projections.rebuild_feed import (
    Applying,
    Forwarder,
    Topics,
    fresh_connections,
    received,
)
from projections.replay import (
    Progress,
    RebuildResult,
    Row,
    _own_file,
    _record_applied,
    _runs_of,
    bulk_load,
    create_applied_table,
    create_tables,
    decoded,
    rebuild,
    table_names,
    wanted_by,
)

# CPU per event a register handles, in µs, rebuild of that register alone from decoded
# events (bench store, 100k events, no bookkeeping): residents 0.74 s and monitoring
# 0.60 s for 50k events each. A register without a `rebuilder` runs a statement or two an
# event, but the registers that have none see few events (quotas, proposals, acts).
COST_US = {"residents": 15.0, "monitoring": 12.0}
_OTHER_US = 1.0


def groups_of(projections: Sequence[Projection]) -> list[list[Projection]]:
    """Two groups of about equal measured cost, the costlier registers spread first."""
    ranked = sorted(projections, key=lambda p: -COST_US.get(p.name, _OTHER_US))
    groups: list[list[Projection]] = [[], []]
    load = [0.0, 0.0]
    for p in ranked:
        side = 0 if load[0] <= load[1] else 1
        groups[side].append(p)
        load[side] += COST_US.get(p.name, _OTHER_US)
    order = {p.name: i for i, p in enumerate(projections)}  # the caller's order, kept
    return [sorted(g, key=lambda p: order[p.name]) for g in groups]


def can_split(db: Database, projections: Sequence[Projection]) -> bool:
    """A SQLite file the child's tables can be attached to, a fork (the child shares the
    caller's mapper and key store), and two registers at least."""
    return (len(projections) >= 2 and _own_file(db)
            and "fork" in multiprocessing.get_all_start_methods())


def rebuild_in_groups(
    db: Database,
    projections: Sequence[Projection],
    pages: Iterable[list[Row]],
    mapper: Any,
    *,
    batch: int = 5000,
    progress: Progress | None = None,
) -> RebuildResult:
    """`replay.rebuild` of the events in `pages` (rows in store order, as `StoreReader.rows`
    or the topic reader give them), with the bookkeeping, on two cores when it can."""
    if not can_split(db, projections):
        wanted = wanted_by(projections)
        events = (d for page in pages for d in decoded(mapper, page, wanted))
        return rebuild(db, projections, events, batch=batch, progress=progress)
    groups = groups_of(projections)
    parts = [Path(f"{db.sqlite_path}.part{i}") for i in range(len(groups))]
    created = _prepare(db, projections)
    children: list[_Child] = []
    try:
        for part, group in zip(parts, groups, strict=True):
            children.append(_Child(part, group, mapper, batch))
        result = _feed(db, children, pages, Topics([wanted_by(g) for g in groups]),
                       mapper, progress)
        for child in children:
            child.close()
        # The bookkeeping of every register, by name (key order: appended, not inserted),
        # written into the target while the children finish their last batches.
        _record_applied(db, sorted(projections, key=lambda p: p.name), result.runs)
        for child in children:
            child.finish()
        _merge(db, list(zip(parts, groups, strict=True)), created.later)
    except BaseException:
        for child in children:
            child.abandon()
        _discard(db, created.tables)
        raise
    finally:
        for part in parts:
            for suffix in ("", "-journal", "-wal", "-shm", ".writer-lock"):
                Path(f"{part}{suffix}").unlink(missing_ok=True)
    if progress:
        progress(result.applied, result.last_seq)
    return result


class _Created:
    def __init__(self, tables: list[str], later: list[str]) -> None:
        self.tables, self.later = tables, later


def _prepare(db: Database, projections: Sequence[Projection]) -> _Created:
    bulk_load(db)
    create_applied_table(db)
    later = create_tables(db, projections)
    tables = [t for p in projections for t in table_names(p)]
    return _Created([*tables, "projection_applied", "projection_floor", "projection_status"],
                    later)


def _feed(db: Database, children: Sequence[_Child], pages: Iterable[list[Row]],
          topics: Topics, mapper: Any, progress: Progress | None) -> RebuildResult:
    """Reads every page once and hands each child the rows its group wants, sealed
    fields opened; the runs of sequence numbers read are kept for the bookkeeping."""
    result = RebuildResult()
    for page in pages:
        if not page:
            continue
        for child, rows in zip(children, topics.split(page, mapper), strict=True):
            if rows:
                child.send(rows)
        result.count(_runs_of([row[0] for row in page]), len(page), page[-1][0])
        if progress:
            progress(result.applied, result.last_seq)
    return result


def _merge(db: Database, parts: Sequence[tuple[Path, Sequence[Projection]]],
           later: Sequence[str]) -> None:
    """Each child's tables into the target's empty ones, then the plain indexes over all."""
    conn = db.connection()
    for part, group in parts:
        conn.execute("ATTACH DATABASE ? AS kosh_part", (str(part),))
        try:
            with db.transaction() as cur:
                for table in [t for p in group for t in table_names(p)]:
                    # `SELECT *` from a table of the same shape into an empty one: SQLite
                    # copies the records as they are.
                    cur.execute(f"INSERT INTO main.{table} SELECT * FROM kosh_part.{table}")  # noqa: S608 - our DDL
        finally:
            conn.execute("DETACH DATABASE kosh_part")
    with db.transaction() as cur:
        for ddl in later:
            cur.execute(ddl)


def _discard(db: Database, tables: Sequence[str]) -> None:
    """What a failed rebuild created in the target goes, so no half-built register is left
    to be taken for a whole one."""
    try:
        conn = db.connection()
        if conn.in_transaction:
            conn.rollback()
        for table in tables:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    except Exception:  # noqa: BLE001 - the rebuild's own error is the one to report
        pass


class _Child:
    """A forked process rebuilding one group of registers into `part`."""

    def __init__(self, part: Path, projections: Sequence[Projection], mapper: Any,
                 batch: int) -> None:
        context = multiprocessing.get_context("fork")
        rows_in, self._rows_out = context.Pipe(duplex=False)
        self._reply_in, reply_out = context.Pipe(duplex=False)
        part.unlink(missing_ok=True)
        self.process = context.Process(
            target=_run_child, args=(rows_in, reply_out, part, projections, mapper, batch),
            daemon=True, name="kosh-rebuild-group")
        self.process.start()
        rows_in.close()
        reply_out.close()
        self._forwarder: Forwarder | None = None
        self._sent: BaseException | None = None

    def send(self, rows: list[Row]) -> None:
        # The thread starts with the first rows, after the source's own child (the topic
        # reader) is forked: a fork copies no running thread of ours.
        if self._forwarder is None:
            self._forwarder = Forwarder(self._rows_out)
        if self._forwarder.error is not None:
            self._failed(self._forwarder.error)
        self._forwarder.put(rows)

    def close(self) -> None:
        """No more rows: the child finishes its last batch."""
        if self._forwarder is None:
            self._forwarder = Forwarder(self._rows_out)
        self._sent = self._forwarder.close()

    def finish(self) -> None:
        if self._sent is not None:
            self._failed(self._sent)
        reply = self._reply()
        self.process.join()
        if reply[0] != "done":
            raise RuntimeError(f"a group of registers failed to rebuild: {reply[1]}")

    def _failed(self, error: BaseException) -> None:
        """Rows could not be sent: the child's own reason when it stopped (a closed pipe),
        else the reason they could not."""
        if not self.process.is_alive() or self._reply_in.poll(1.0):
            reply = self._reply()
            raise RuntimeError(f"a group of registers failed to rebuild: {reply[1]}") from error
        raise error

    def _reply(self) -> tuple[str, str]:
        try:
            return self._reply_in.recv()
        except EOFError:
            return ("failed", f"its process ended with code {self.process.exitcode}")

    def abandon(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        if self._forwarder is not None:
            self._forwarder.close()
        self._rows_out.close()
        self._reply_in.close()


def _run_child(rows_in: Any, reply_out: Any, part: Path, projections: Sequence[Projection],
               mapper: Any, batch: int) -> None:
    try:
        fresh_connections(mapper)
        db = Database(None, part)
        bulk_load(db)
        create_tables(db, projections)  # the plain indexes: built once, in the target
        applying = Applying(db, projections, batch)
        while (rows := received(rows_in)) is not None:
            applying.add(list(decoded(mapper, rows)))
        applying.flush()
        db.connection().close()
        reply_out.send(("done", ""))
    except BaseException as exc:  # noqa: BLE001 - the reader raises it
        part.unlink(missing_ok=True)
        try:
            reply_out.send(("failed", f"{exc!r}\n{traceback.format_exc()}"))
        except OSError:
            pass
        os._exit(1)
