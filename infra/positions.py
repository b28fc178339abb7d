"""Durable positions (the publisher's last acknowledged sequence number), kept in
the event store's own database so they live and die with it."""

from __future__ import annotations

from infra.sql import Database

_DDL = """CREATE TABLE IF NOT EXISTS kosh_positions (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL
)"""


class PositionStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        with db.transaction() as cur:
            cur.execute(_DDL)

    def get(self, name: str) -> int:
        rows = self.db.query("SELECT position FROM kosh_positions WHERE name = ?", (name,))
        return int(rows[0][0]) if rows else 0

    def save(self, name: str, position: int) -> None:
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO kosh_positions (name, position) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                (name, position),
            )
