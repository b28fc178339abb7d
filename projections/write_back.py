"""A write-back cache of one register table, for rebuilds.

A rebuild applies events in store order to registers only it writes, so a batch's rows
can live in memory: each is read at most once (a bulk read for a whole batch of keys, or
one statement on a miss), changed by as many events as touch it, and written once per
batch with one `executemany`. The applier that owns a cache must `flush` it before any
other code touches the table, and `clear` it after.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from infra.sql import Cursor

# One parameter a key: far below SQLite's and PostgreSQL's limits on one statement.
_KEYS_PER_READ = 500


class RowCache:
    """Rows of `table` keyed by the values of its primary key `key`; a row is a list of
    `columns` in order (the key's columns among them). None: known to have no row."""

    def __init__(self, table: str, key: Sequence[str], columns: Sequence[str],
                 limit: int = 10_000) -> None:
        self.table = table
        self.columns = tuple(columns)
        self.key = tuple(key)
        self._key_at = tuple(self.columns.index(k) for k in self.key)
        self.limit = limit  # rows kept between batches: bounds a rebuild's memory
        self.rows: dict[Any, list[Any] | None] = {}
        self.dirty: dict[Any, None] = {}  # a dict: written in the order first changed
        # While the table is known to hold only what this cache wrote: the hashes of the
        # keys it wrote. A key not among them has no row, and is not asked for (a rebuild
        # of a fresh table asked for every new case: a tenth of a register's CPU).
        self.written: set[int] | None = None
        where = " AND ".join(f"{k} = ?" for k in self.key)
        listed = ", ".join(self.columns)
        self._select = f"SELECT {listed} FROM {table} WHERE {where}"  # noqa: S608 - our DDL
        self._delete = f"DELETE FROM {table} WHERE {where}"  # noqa: S608
        others = [c for c in self.columns if c not in self.key]
        update = ", ".join(f"{c} = excluded.{c}" for c in others)
        self._upsert = (
            f"INSERT INTO {table} ({listed}) VALUES ({', '.join('?' * len(self.columns))}) "  # noqa: S608
            f"ON CONFLICT ({', '.join(self.key)}) "
            + (f"DO UPDATE SET {update}" if others else "DO NOTHING")
        )

    def _key_of(self, row: Sequence[Any]) -> Any:
        if len(self._key_at) == 1:
            return row[self._key_at[0]]
        return tuple(row[i] for i in self._key_at)

    def begin_empty(self, cur: Cursor) -> None:
        """Starts knowing which keys have rows, when the table has none yet."""
        cur.execute(f"SELECT 1 FROM {self.table} LIMIT 1")  # noqa: S608 - our DDL
        self.written = set() if cur.fetchone() is None else None

    def get(self, cur: Cursor, key: Any) -> list[Any] | None:
        try:
            return self.rows[key]
        except KeyError:
            pass
        if self.written is not None and hash(key) not in self.written:
            self.rows[key] = None
            return None
        cur.execute(self._select, (key,) if len(self.key) == 1 else key)
        found = cur.fetchone()
        row = self.rows[key] = list(found) if found is not None else None
        return row

    def prefetch(self, cur: Cursor, keys: Iterable[Any]) -> None:
        """Reads the rows of many keys (of a one-column key) in a few statements."""
        assert len(self.key) == 1
        wanted = [k for k in dict.fromkeys(keys) if k not in self.rows]
        if self.written is not None:  # a key this cache never wrote has no row
            maybe = []
            for k in wanted:
                if hash(k) in self.written:
                    maybe.append(k)
                else:
                    self.rows[k] = None
            wanted = maybe
        listed = ", ".join(self.columns)
        for at in range(0, len(wanted), _KEYS_PER_READ):
            chunk = wanted[at : at + _KEYS_PER_READ]
            cur.execute(
                f"SELECT {listed} FROM {self.table} WHERE {self.key[0]} IN "  # noqa: S608
                f"({', '.join('?' * len(chunk))})",
                chunk,
            )
            for found in cur.fetchall():
                self.rows[self._key_of(found)] = list(found)
            for k in chunk:
                self.rows.setdefault(k, None)

    def put(self, key: Any, row: list[Any]) -> None:
        self.rows[key] = row
        self.dirty[key] = None
        if self.written is not None:
            self.written.add(hash(key))

    def delete(self, key: Any) -> None:
        self.rows[key] = None
        self.dirty[key] = None

    def flush(self, cur: Cursor) -> None:
        rows = self.rows
        gone = [k for k in self.dirty if rows[k] is None]
        kept = [row for k in self.dirty if (row := rows[k]) is not None]
        if gone:
            cur.executemany(self._delete, [(k,) if len(self.key) == 1 else k for k in gone])
        if kept:
            cur.executemany_rows(self._upsert, kept)
        self.dirty.clear()
        if len(rows) > self.limit:
            rows.clear()

    def clear(self) -> None:
        """Forgets every row, and which keys have one: called when other code is about to
        write the table."""
        assert not self.dirty, "flush before clearing"
        self.rows.clear()
        self.written = None


Handler = Callable[[Cursor, int, Any], bool]


class CachedApplier:
    """Applies events to a projection's registers through write-back caches. A handler
    returns False when it cannot be sure to do what the projection would (an event it
    does not know, a row it did not expect): the caches are then written and emptied and
    the projection's own `apply` handles the event on the database itself."""

    def __init__(self, projection: Any, caches: Sequence[RowCache],
                 handlers: dict[str, Handler]) -> None:
        self.projection = projection
        self.caches = list(caches)
        self.handlers = handlers

    def begin(self, cur: Cursor) -> None:
        """Before the first batch: each cache of a table still empty knows its keys."""
        for cache in self.caches:
            cache.begin_empty(cur)

    def prefetch(self, cur: Cursor, events: Sequence[Any]) -> None:
        """Reads ahead the rows a batch of events will touch (override)."""

    def apply(self, cur: Cursor, seq: int, event: Any) -> None:
        handler = self.handlers.get(type(event).__qualname__)
        if handler is None or not handler(cur, seq, event):
            self._fall_back(cur, seq, event)

    def apply_all(self, cur: Cursor, delivered: Iterable[Any]) -> None:
        """`apply` to each of a batch's (seq, event) deliveries, the handler of each class
        looked up once a batch rather than once an event."""
        by_class: dict[type, Handler | None] = {}
        for d in delivered:
            event = d.event
            kind = type(event)
            try:
                handler = by_class[kind]
            except KeyError:
                handler = by_class[kind] = self.handlers.get(kind.__qualname__)
            if handler is None or not handler(cur, d.seq, event):
                self._fall_back(cur, d.seq, event)

    def _fall_back(self, cur: Cursor, seq: int, event: Any) -> None:
        self.flush(cur)
        for cache in self.caches:
            cache.clear()
        self.projection.apply(cur, seq, event)

    def flush(self, cur: Cursor) -> None:
        for cache in self.caches:
            cache.flush(cur)


def ignore(cur: Cursor, seq: int, event: Any) -> bool:
    """A handler for an event the projection does nothing with."""
    return True
