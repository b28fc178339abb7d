"""The leaves of the audit tree: the event store's rows, read straight from its table.

Never through the application's mapper: the leaf is what the store holds (sealed personal
fields stay sealed, an erased subject changes nothing), and a row the mapper could no longer
decode must still be hashed and compared.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from infra.settings import Settings
from infra.sql import Database
from projections.audit.leaf_hashes import canonical
from projections.audit.proofs import encode_leaf, leaf_hash

READ_BATCH = 2000


@dataclass(frozen=True)
class StoredRow:
    seq: int
    originator_id: str
    originator_version: int
    topic: str
    state: bytes

    def leaf(self) -> bytes:
        return encode_leaf(
            self.seq, self.originator_id, self.originator_version, self.topic, self.state
        )

    def leaf_hash(self) -> bytes:
        return leaf_hash(self.leaf())


def store_db(settings: Settings) -> Database:
    """The event store's database (as api.bootstrap.store_database, which projections may not
    import)."""
    return Database(
        settings.database_url, settings.data_dir / "events.sqlite", settings.database_schema
    )


def events_table(db: Database) -> tuple[str, str]:
    """(table, sequence column) as eventsourcing names them: ``stored_events`` with the
    notification id in the rowid on SQLite; ``<application name>_events`` with a
    ``notification_id`` column on PostgreSQL."""
    if not db.is_postgres:
        return "stored_events", "rowid"
    from infra.application import KoshApplication  # the name the running store uses

    return f"{KoshApplication.name.lower()}_events", "notification_id"


def select(db: Database, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """A read outside `Database.transaction()`, whose SQLite BEGIN IMMEDIATE would hold the
    store's write lock while we read."""
    conn = db.connection()
    try:
        cur = conn.cursor()
        try:
            cur.execute(sql.replace("?", "%s") if db.is_postgres else sql, tuple(params))
            return list(cur.fetchall())
        finally:
            cur.close()
    except Exception:
        db.reset()
        raise
    finally:
        if db.is_postgres and not conn.closed:
            conn.rollback()  # ends the read transaction so no snapshot or lock lingers


def no_table(exc: Exception) -> bool:
    """The store has not created its table yet: it has recorded nothing."""
    text = str(exc)
    return "no such table" in text or ("relation" in text and "does not exist" in text)


def read_rows(
    db: Database, after: int, limit: int = READ_BATCH, upto: int | None = None
) -> list[StoredRow]:
    """Rows with sequence number > ``after`` (and <= ``upto``), in store order."""
    table, seq = events_table(db)
    bound = "" if upto is None else f" AND {seq} <= ?"
    params: list[Any] = [after] if upto is None else [after, upto]
    try:
        rows = select(
            db,
            f"SELECT {seq}, originator_id, originator_version, topic, state "
            f"FROM {table} WHERE {seq} > ?{bound} ORDER BY {seq} LIMIT ?",
            [*params, limit],
        )
    except Exception as exc:
        if no_table(exc):
            return []
        raise
    # A row edited by hand may hold other SQLite types than the store wrote; it must still
    # encode (and then mismatch its recorded leaf) rather than stop the check.
    return [StoredRow(*canonical(r)) for r in rows]


def iter_rows(db: Database, after: int = 0, batch: int = READ_BATCH) -> Iterator[StoredRow]:
    while True:
        rows = read_rows(db, after, batch)
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].seq
