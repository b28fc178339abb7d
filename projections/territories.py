"""Territory designations (§5, §6): every change with its effective date, so the
register answers "open for settling kandases / settlers on date D" for any D."""

from __future__ import annotations

import datetime as dt
from typing import Any

from domain.territory import SettlerCategory, Territory
from infra.sql import Cursor, Database

NAME = "territories"


class TerritoriesProjection:
    name = NAME
    handles = ("TerritoryDesignation.",)
    ddl = (
        """CREATE TABLE IF NOT EXISTS territory_designations (
            territory TEXT NOT NULL,
            category TEXT NOT NULL,
            is_open INTEGER NOT NULL,
            effective_from TEXT NOT NULL,
            proposal_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            PRIMARY KEY (territory, category, seq)
        )""",
    )

    def apply(self, cur: Cursor, seq: int, event: Any) -> None:
        name = type(event).__qualname__
        if name in ("TerritoryDesignation.Included", "TerritoryDesignation.Excluded"):
            cur.execute(
                "INSERT INTO territory_designations (territory, category, is_open, "
                "effective_from, proposal_id, seq) VALUES (?, ?, ?, ?, ?, ?)",
                (event.territory, event.category,
                 1 if name.endswith("Included") else 0, event.effective_from,
                 event.proposal_id, seq),
            )


class TerritoryRegister:
    def __init__(self, db: Database) -> None:
        self.db = db

    def as_of(self, on: dt.date, territory: str | None = None) -> list[dict[str, Any]]:
        """Each territory's open/closed state per category on `on` (closed when no
        accepted proposal ever included it)."""
        rows = self.db.query(
            "SELECT territory, category, is_open, effective_from, proposal_id "
            "FROM territory_designations WHERE effective_from <= ? "
            "ORDER BY effective_from, seq",
            (on.isoformat(),),
        )
        state: dict[tuple[str, str], dict[str, Any]] = {}
        for t, category, is_open, since, proposal_id in rows:
            state[(t, category)] = {"open": bool(is_open), "since": since,
                                    "proposal_id": proposal_id}
        wanted = [Territory(territory)] if territory else list(Territory)
        return [
            {"territory": t.value, "on": on.isoformat(), "categories": {
                c.value: state.get((t.value, c.value),
                                   {"open": False, "since": None, "proposal_id": None})
                for c in SettlerCategory}}
            for t in wanted
        ]

    def history(self, territory: str) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT category, is_open, effective_from, proposal_id FROM territory_designations "
            "WHERE territory = ? ORDER BY effective_from, seq",
            (territory,),
        )
        return [{"category": c, "open": bool(o), "effective_from": f, "proposal_id": p}
                for c, o, f, p in rows]
