"""Applies events to projections, each at most once.

For every projection, the register update and the record that sequence number N was
applied commit in the same transaction; a redelivered or republished event finds its
sequence number already recorded and changes nothing. A projection's floor stands for
every number from 1 to it: a rebuild records the unbroken run it replayed from the
store's start as one row there, not a row per event.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from infra.sql import Cursor, Database

_DDL = [
    """CREATE TABLE IF NOT EXISTS projection_applied (
        projection TEXT NOT NULL,
        seq BIGINT NOT NULL,
        PRIMARY KEY (projection, seq)
    )""",
    """CREATE TABLE IF NOT EXISTS projection_floor (
        projection TEXT PRIMARY KEY,
        seq BIGINT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS projection_status (
        projection TEXT PRIMARY KEY,
        applied_count BIGINT NOT NULL,
        max_seq BIGINT NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    )""",
]


BOOKKEEPING_DDL = tuple(_DDL)

# Two parameters a row: far below SQLite's and PostgreSQL's limits on one statement.
_CLAIMS_PER_STATEMENT = 500


class Projection(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def ddl(self) -> Sequence[str]: ...

    def apply(self, cur: Cursor, seq: int, event: Any) -> None: ...


@dataclass(frozen=True)
class Delivered:
    """One event as a consumer received it: its store sequence number and the event."""

    seq: int
    event: Any


@dataclass(frozen=True)
class ProjectionStatus:
    projection: str
    applied_count: int
    max_seq: int


class Projector:
    def __init__(self, db: Database, projections: Iterable[Projection]) -> None:
        self.db = db
        self.projections = list(projections)
        with db.transaction() as cur:
            for ddl in [*_DDL, *(d for p in self.projections for d in p.ddl)]:
                cur.execute(ddl)

    def apply_batch(self, batch: Sequence[Delivered]) -> int:
        """Applies a batch in one transaction; returns how many (projection, event)
        pairs were new."""
        applied = 0
        with self.db.transaction() as cur:
            floors = self._floors(cur)  # one read a batch, not one a register
            for projection in self.projections:
                fresh = self._claim_batch(cur, projection.name, batch,
                                          floors.get(projection.name, 0))
                for d in fresh:
                    projection.apply(cur, d.seq, d.event)
                if fresh:
                    self._bump_status(cur, projection.name, fresh)
                applied += len(fresh)
        return applied

    @staticmethod
    def _claim_batch(cur: Cursor, name: str, batch: Sequence[Delivered], floor: int
                     ) -> list[Delivered]:
        """The events of `batch` above `floor` not applied before, in order, each once:
        claimed a few hundred per statement instead of one statement per event. The
        database says which rows it inserted, so concurrent claimers still get disjoint
        sets."""
        claimed: set[int] = set()
        seqs = [seq for seq in dict.fromkeys(d.seq for d in batch) if seq > floor]
        for at in range(0, len(seqs), _CLAIMS_PER_STATEMENT):
            chunk = seqs[at : at + _CLAIMS_PER_STATEMENT]
            cur.execute(
                "INSERT INTO projection_applied (projection, seq) VALUES "
                + ", ".join(["(?, ?)"] * len(chunk))
                + " ON CONFLICT DO NOTHING RETURNING seq",
                [v for seq in chunk for v in (name, seq)],
            )
            claimed.update(int(row[0]) for row in cur.fetchall())
        fresh = []
        for d in batch:
            if d.seq in claimed:
                claimed.discard(d.seq)  # a repeat within the batch is applied once
                fresh.append(d)
        return fresh

    @staticmethod
    def _floors(cur: Cursor) -> dict[str, int]:
        cur.execute("SELECT projection, seq FROM projection_floor")
        return {str(name): int(seq) for name, seq in cur.fetchall()}

    @staticmethod
    def _claim(cur: Cursor, name: str, seq: int) -> bool:
        return seq > Projector._floors(cur).get(name, 0) and (
            cur.execute(
                "INSERT INTO projection_applied (projection, seq) VALUES (?, ?) "
                "ON CONFLICT DO NOTHING",
                (name, seq),
            )
            == 1
        )

    @staticmethod
    def _bump_status(cur: Cursor, name: str, fresh: Sequence[Delivered]) -> None:
        cur.execute(
            "INSERT INTO projection_status (projection, applied_count, max_seq, updated_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (projection) DO UPDATE SET "
            "applied_count = projection_status.applied_count + excluded.applied_count, "
            "max_seq = CASE WHEN excluded.max_seq > projection_status.max_seq "
            "THEN excluded.max_seq ELSE projection_status.max_seq END, "
            "updated_at = excluded.updated_at",
            (name, len(fresh), max(d.seq for d in fresh), time.time()),
        )

    def status(self) -> list[ProjectionStatus]:
        rows = self.db.query(
            "SELECT projection, applied_count, max_seq FROM projection_status ORDER BY projection"
        )
        return [ProjectionStatus(r[0], int(r[1]), int(r[2])) for r in rows]


def applied_pairs(db: Database) -> list[tuple[str, int]]:
    """Every (projection, sequence number) recorded as applied, floors spelled out, in
    order: what two databases' bookkeeping must agree on."""
    floors = db.query("SELECT projection, seq FROM projection_floor")
    rows = db.query("SELECT projection, seq FROM projection_applied")
    pairs = {(str(r[0]), int(r[1])) for r in rows}
    pairs.update((str(name), n) for name, top in floors for n in range(1, int(top) + 1))
    return sorted(pairs)
