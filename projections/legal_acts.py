"""The legal-act register: every act of the registry with its facts, and which acts —
and which edition of the Rules — are in force on a date. In force is computed at read
time from the stored facts, with the same rules commands are decided by."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from domain.errors import NotInForce
from domain.legal_acts import ActFacts, LegalActRegistry, fold_repeals
from infra.sql import Cursor, Database

NAME = "legal_acts"
_DATES = ("adopted_on", "registered_on", "published_on", "in_force_on_stated")


class LegalActsProjection:
    name = NAME
    handles = ("LegalAct.",)
    ddl = (
        """CREATE TABLE IF NOT EXISTS legal_acts (
            act_id TEXT PRIMARY KEY,
            aggregate_id TEXT NOT NULL,
            title TEXT NOT NULL,
            number TEXT NOT NULL,
            adopted_on TEXT NOT NULL,
            registration_number TEXT,
            registered_on TEXT,
            published_on TEXT,
            in_force_on_stated TEXT,
            edition_of_rules INTEGER NOT NULL,
            clauses TEXT NOT NULL,
            repeals TEXT NOT NULL,
            repealed_by TEXT,
            seq BIGINT NOT NULL
        )""",
    )

    def apply(self, cur: Cursor, seq: int, event: Any) -> None:
        if type(event).__qualname__.startswith("LegalAct."):
            handler = getattr(self, "_on_" + type(event).__name__, None)
            if handler is not None:
                handler(cur, seq, event)

    def _on_Registered(self, cur: Cursor, seq: int, e: Any) -> None:  # noqa: N802
        cur.execute(
            "INSERT INTO legal_acts (act_id, aggregate_id, title, number, adopted_on, "
            "registration_number, registered_on, published_on, in_force_on_stated, "
            "edition_of_rules, clauses, repeals, repealed_by, seq) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?) ON CONFLICT (act_id) DO NOTHING",
            (
                e.act_id,
                str(e.originator_id),
                e.title,
                e.number,
                e.adopted_on,
                e.registration_number,
                e.registered_on,
                e.published_on,
                e.in_force_on_stated,
                int(e.edition_of_rules),
                orjson.dumps(e.clauses).decode(),
                orjson.dumps(e.repeals).decode(),
                seq,
            ),
        )

    def _update(self, cur: Cursor, seq: int, e: Any, **values: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in values)
        cur.execute(
            f"UPDATE legal_acts SET {sets}, seq = ? WHERE aggregate_id = ?",
            (*values.values(), seq, str(e.originator_id)),
        )

    def _on_PublicationEntered(self, cur: Cursor, seq: int, e: Any) -> None:  # noqa: N802
        self._update(cur, seq, e, published_on=e.published_on)

    def _on_StateRegistrationEntered(self, cur: Cursor, seq: int, e: Any) -> None:  # noqa: N802
        self._update(
            cur, seq, e, registration_number=e.registration_number, registered_on=e.registered_on
        )

    def _on_Repealed(self, cur: Cursor, seq: int, e: Any) -> None:  # noqa: N802
        self._update(cur, seq, e, repealed_by=e.repealed_by)


_COLUMNS = (
    "act_id",
    "aggregate_id",
    "title",
    "number",
    "adopted_on",
    "registration_number",
    "registered_on",
    "published_on",
    "in_force_on_stated",
    "edition_of_rules",
    "clauses",
    "repeals",
    "repealed_by",
)


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


class LegalActsRegister:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _rows(self) -> list[dict[str, Any]]:
        rows = self.db.query(
            f"SELECT {', '.join(_COLUMNS)} FROM legal_acts ORDER BY adopted_on, act_id"
        )
        out = []
        for values in rows:
            row = dict(zip(_COLUMNS, values, strict=True))
            row["edition_of_rules"] = bool(row["edition_of_rules"])
            row["clauses"] = orjson.loads(row["clauses"])
            row["repeals"] = orjson.loads(row["repeals"])
            out.append(row)
        return out

    @staticmethod
    def _registry(rows: list[dict[str, Any]]) -> LegalActRegistry:
        facts = {
            r["act_id"]: ActFacts(
                act_id=r["act_id"],
                title=r["title"],
                number=r["number"],
                adopted_on=dt.date.fromisoformat(r["adopted_on"]),
                registration_number=r["registration_number"],
                registered_on=_date(r["registered_on"]),
                published_on=_date(r["published_on"]),
                in_force_on_stated=_date(r["in_force_on_stated"]),
                edition_of_rules=r["edition_of_rules"],
                clauses=frozenset(r["clauses"]),
                repeals=tuple(r["repeals"]),
            )
            for r in rows
        }
        return LegalActRegistry(
            fold_repeals(
                facts.values(), {r["act_id"]: r["repealed_by"] for r in rows if r["repealed_by"]}
            )
        )

    def as_of(self, on: dt.date) -> dict[str, Any]:
        """Every act, whether it is in force on `on`, and the edition of the Rules then."""
        rows = self._rows()
        registry = self._registry(rows)
        acts = []
        for row in rows:
            facts = registry.get(row["act_id"])
            repeal = registry.repealed_by(row["act_id"], on)
            acts.append(
                {
                    **{k: v for k, v in row.items() if k != "aggregate_id"},
                    "id": row["aggregate_id"],
                    "in_force_from": facts.in_force_from.isoformat()
                    if facts.in_force_from
                    else None,
                    "in_force": registry.is_in_force(row["act_id"], on),
                    "repealed_from": repeal.in_force_from.isoformat()
                    if repeal and repeal.in_force_from
                    else None,
                }
            )
        try:
            edition = registry.rules_in_force(on)
            rules: dict[str, Any] = {
                "act_id": edition.act_id,
                "title": edition.title,
                "clauses": sorted(edition.clauses, key=lambda c: int(c.lstrip("§"))),
            }
        except NotInForce as refusal:
            rules = {"act_id": None, "reason": refusal.message}
        return {"as_of": on.isoformat(), "rules_in_force": rules, "acts": acts}

    def act(self, act_id: str, on: dt.date) -> dict[str, Any] | None:
        found = [a for a in self.as_of(on)["acts"] if a["act_id"] == act_id]
        return found[0] if found else None
