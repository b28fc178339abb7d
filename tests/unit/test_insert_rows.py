"""A batch's rows go into SQLite as multi-row INSERTs that insert exactly those rows."""

from __future__ import annotations

import sqlite3

import pytest

from infra import sql
from infra.sql import insert_rows, many_rows


def test_one_rows_statement_becomes_one_for_many_keeping_its_conflict_clause() -> None:
    assert many_rows("INSERT INTO t (a, b) VALUES (?, ?) ON CONFLICT (a) DO NOTHING", 3) == (
        "INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?) ON CONFLICT (a) DO NOTHING"
    )


def test_rows_are_inserted_in_order_in_chunks_and_skipped_ones_are_not_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sql, "ROWS_PER_INSERT", 7)
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE t (a INTEGER UNIQUE, b TEXT)")
    conn.execute("INSERT INTO t VALUES (3, 'before')")
    rows = [(n, f"row {n}") for n in range(20)]
    stored = insert_rows(conn.cursor(), "INSERT INTO t VALUES (?, ?) ON CONFLICT DO NOTHING",
                         rows)
    assert stored == 19
    got = conn.execute("SELECT a, b FROM t ORDER BY rowid").fetchall()
    assert got == [(3, "before")] + [r for r in rows if r[0] != 3]
