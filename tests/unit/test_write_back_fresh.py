"""A write-back cache of a table that was empty when the rebuild began knows which keys
have rows (those it wrote) and asks the database for no other; once other code writes
the table (a projection's own statements), it asks again."""

from __future__ import annotations

from pathlib import Path

from infra.sql import Database
from projections.write_back import RowCache


def cache_on(tmp_path: Path, rows: list[tuple[str, int]]) -> tuple[Database, RowCache, list[str]]:
    db = Database(None, tmp_path / "r.sqlite")
    with db.transaction() as cur:
        cur.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
        for row in rows:
            cur.execute("INSERT INTO t (k, v) VALUES (?, ?)", row)
    asked: list[str] = []
    db.connection().set_trace_callback(
        lambda sql: asked.append(sql) if sql.startswith("SELECT k, v") else None)
    return db, RowCache("t", ("k",), ("k", "v"), limit=1), asked


def test_an_empty_tables_cache_asks_for_none_of_the_keys_it_never_wrote(tmp_path: Path) -> None:
    db, cache, asked = cache_on(tmp_path, [])
    with db.transaction() as cur:
        cache.begin_empty(cur)
        cache.prefetch(cur, ["a", "b"])
        assert cache.get(cur, "a") is None and cache.get(cur, "c") is None
        cache.put("a", ["a", 1])
        cache.flush(cur)  # past its limit: the rows it holds are dropped
        assert cache.get(cur, "a") == ["a", 1]  # read back: it wrote that one
    assert len(asked) == 1


def test_a_table_with_rows_or_written_by_others_is_asked(tmp_path: Path) -> None:
    db, cache, asked = cache_on(tmp_path, [("x", 7)])
    with db.transaction() as cur:
        cache.begin_empty(cur)
        assert cache.get(cur, "x") == ["x", 7]
    assert len(asked) == 1

    db, cache, asked = cache_on(tmp_path / "2", [])
    with db.transaction() as cur:
        cache.begin_empty(cur)
        cache.clear()  # the projection's own code is about to write the table
        cur.execute("INSERT INTO t (k, v) VALUES ('y', 2)")
        assert cache.get(cur, "y") == ["y", 2]
    assert len(asked) == 1
