"""`kosh replay`: rebuilds registers from the store (or from the events topic) into a
database of their own, then compares it with the live registers or swaps it in.

The live registers are never rebuilt in place: a rebuild goes to a separate file, and a
swap replaces the live rows in one transaction that also applies whatever the store
recorded meanwhile, so readers see the old register or the new one, never half of each.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from api.replay_topic import topic_rows
from infra.heap import without_collector
from infra.settings import Settings
from infra.sql import Database
from projections.as_of import Cutoff, events_as_of
from projections.projector import Delivered, Projection, Projector
from projections.rebuild_split import rebuild_in_groups
from projections.replay import (
    Rate,
    RebuildResult,
    StoreReader,
    decoded,
    differences,
    rebuild,
    table_names,
    wanted_by,
)

console = Console(stderr=True)


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} events/s" if speed else "… events/s", style="cyan")


def progress_bar() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    RateColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), console=console, transient=False)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("replay", help="rebuild registers from the store or the events topic")
    p.add_argument("projections", nargs="*", metavar="PROJECTION",
                   help="registers to rebuild (all by default)")
    p.add_argument("--as-of", type=dt.date.fromisoformat, metavar="DATE",
                   help="only events in effect by this date (YYYY-MM-DD)")
    p.add_argument("--recorded-before", type=dt.datetime.fromisoformat, metavar="TIME",
                   help="only events recorded by this time (ISO; UTC if no zone)")
    p.add_argument("--from-kafka", action="store_true",
                   help="read the events topic from its beginning instead of the store")
    p.add_argument("--into", type=Path, metavar="PATH",
                   help="build into this new SQLite file (kept); else a temporary one that "
                        "is compared with the live registers")
    p.add_argument("--swap", action="store_true",
                   help="after rebuilding, replace the live registers with the rebuild")
    p.add_argument("--split", action="store_true",
                   help="rebuild today's registers in three processes (a reader and two "
                        "groups of registers): faster on two cores or more, and about 1.5x "
                        "the memory of one process")
    p.add_argument("--batch", type=int, default=5000, help="events per transaction")
    p.set_defaults(func=main)


def main(args: argparse.Namespace, settings: Settings) -> int:
    from api.bootstrap import all_projections, bootstrap
    from infra.heap import freeze_startup_heap

    try:
        chosen = choose(all_projections(), args.projections)
        cutoff = None
        if args.as_of or args.recorded_before:
            cutoff = Cutoff(effective_on=args.as_of, recorded_at=args.recorded_before)
    except (LookupError, ValueError) as exc:
        console.print(f"[red]{exc}")
        return 2
    if args.swap and (cutoff is not None or args.into is not None):
        console.print("[red]--swap replaces the live registers with today's rebuild; "
                      "it cannot be combined with --as-of, --recorded-before or --into")
        return 2
    if args.into is not None and args.into.exists():
        console.print(f"[red]{args.into} exists; give a new file")
        return 2
    kosh = bootstrap(settings)
    reader = StoreReader(kosh.app.recorder, kosh.app.mapper, page=args.batch)
    target = args.into or Path(tempfile.mkdtemp(prefix="kosh-replay-")) / "registers.sqlite"
    db = Database(None, target)
    freeze_startup_heap()
    result, head = replay(settings, reader, chosen, db, cutoff=cutoff,
                          from_kafka=args.from_kafka, batch=args.batch, split=args.split)
    if args.into is not None:
        console.print(f"rebuilt {', '.join(p.name for p in chosen)} into {target}")
        return 0
    if cutoff is not None:
        console.print(f"rebuilt as of {cutoff.as_dict()} into {target}")
        return 0
    diffs = [d for p in chosen for d in differences(kosh.registers_db, db, p)]
    for line in diffs:
        console.print(f"[yellow]{line}")
    if args.swap:
        caught_up = swap(kosh.registers_db, db, chosen, reader, head)
        console.print(f"[green]live registers replaced ({caught_up} newer events applied)")
        return 0
    if not diffs:
        console.print("[green]the rebuild equals the live registers")
    return 1 if diffs else 0


def choose(projections: Sequence[Projection], names: Sequence[str]) -> list[Projection]:
    known = {p.name: p for p in projections}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise LookupError(f"no register named {', '.join(unknown)}; "
                          f"registers: {', '.join(known)}")
    return [known[n] for n in names] if names else list(projections)


@without_collector  # its forked processes of registers inherit it
def replay(settings: Settings, reader: StoreReader, projections: Sequence[Projection],
           db: Database, *, cutoff: Cutoff | None = None, from_kafka: bool = False,
           batch: int = 5000, show: bool = True, split: bool = False
           ) -> tuple[RebuildResult, int]:
    """Rebuilds `projections` into `db` from every event up to the store's head now; with
    `split` and no cut-off, in groups of registers on more cores (rebuild_split)."""
    head = reader.head()
    with progress_bar() if show else _Quiet() as bar:
        # An as-of cut judges every event (a later one of a cut case is cut too).
        wanted = wanted_by(projections) if cutoff is None else None
        if from_kafka:
            reading = bar.add_task("reading topic", total=head)
            pages = topic_rows(settings, reader, head, lambda n: bar.update(reading, completed=n),
                               wanted=wanted)
        else:
            pages = reader.rows(stop=head)
        task = bar.add_task("rebuilding " + ", ".join(p.name for p in projections), total=head)
        rate = Rate()
        if cutoff is None and split:
            result = rebuild_in_groups(db, projections, pages, reader.mapper, batch=batch,
                                       progress=lambda n, seq: bar.update(task, completed=seq))
        else:
            events: Iterable[Delivered] = (
                d for page in pages for d in decoded(reader.mapper, page, wanted))
            if cutoff is not None:
                events = events_as_of(events, cutoff)
            result = rebuild(db, projections, events, batch=batch,
                             record_applied=cutoff is None, tolerate_errors=cutoff is not None,
                             progress=lambda n, seq: bar.update(task, completed=seq))
        bar.update(task, completed=head)
    if show:
        console.print(f"{result.applied:,} events in {time.perf_counter() - rate.started:.1f} s "
                      f"({rate.per_second(result.applied):,.0f} events/s); store head {head}")
        for seq, error in sorted(result.skipped.items()):
            console.print(f"[yellow]seq {seq} not applicable as of the cut-off: {error}")
    return result, head


def swap(live: Database, rebuilt: Database, projections: Sequence[Projection],
         reader: StoreReader, rebuilt_head: int) -> int:
    """Replaces the live rows of `projections` with the rebuilt ones, then applies the
    events recorded since the rebuild, all in one transaction on the live database."""
    Projector(live, projections)  # the live tables exist even if never fed yet
    caught_up = 0
    with live.transaction() as cur:
        tables = [t for p in projections for t in table_names(p)]
        if live.is_postgres:
            cur.execute("LOCK TABLE projection_applied, projection_floor, projection_status, "
                        f"{', '.join(tables)} IN EXCLUSIVE MODE")
        for p in projections:
            for table in table_names(p):
                rows = rebuilt.query(f"SELECT * FROM {table}")  # noqa: S608 - from our DDL
                cur.execute(f"DELETE FROM {table}")  # noqa: S608
                if rows:
                    marks = ", ".join("?" * len(rows[0]))
                    cur.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)  # noqa: S608
            for bookkeeping in ("projection_applied", "projection_floor", "projection_status"):
                cur.execute(f"DELETE FROM {bookkeeping} WHERE projection = ?", (p.name,))
                rows = rebuilt.query(f"SELECT * FROM {bookkeeping} WHERE projection = ?",
                                     (p.name,))
                if rows:
                    marks = ", ".join("?" * len(rows[0]))
                    cur.executemany(f"INSERT INTO {bookkeeping} VALUES ({marks})", rows)
        for d in reader.events(start=rebuilt_head + 1):
            for p in projections:
                if Projector._claim(cur, p.name, d.seq):
                    p.apply(cur, d.seq, d.event)
                    Projector._bump_status(cur, p.name, [d])
            caught_up += 1
    return caught_up


class _Quiet:
    """A progress bar that shows nothing (for tests and library use)."""

    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: Any, **kwargs: Any) -> TaskID:
        return TaskID(0)

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None

