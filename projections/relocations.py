"""The relocation register (§6): each case's state, places and the registrations its
arrival led to. Names and documents stay in the case history (personal data)."""

from __future__ import annotations

from typing import Any

import orjson

from infra.sql import Cursor, Database

NAME = "relocations"


class RelocationsProjection:
    name = NAME
    handles = ("RelocationCase.",)
    ddl = (
        """CREATE TABLE IF NOT EXISTS relocation_cases (
            case_id TEXT PRIMARY KEY,
            category TEXT NOT NULL,
            territory TEXT NOT NULL,
            period TEXT NOT NULL,
            quota_id TEXT NOT NULL,
            status TEXT NOT NULL,
            places BIGINT NOT NULL,
            applied_on TEXT NOT NULL,
            decided_on TEXT,
            arrived_on TEXT,
            arrival_district TEXT,
            reason TEXT,
            registrations TEXT NOT NULL,
            seq BIGINT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS relocations_by_status ON relocation_cases (status)",
    )

    def apply(self, cur: Cursor, seq: int, event: Any) -> None:
        if not type(event).__qualname__.startswith("RelocationCase."):
            return
        handler = getattr(self, "_on_" + type(event).__name__, None)
        if handler is not None:
            handler(cur, seq, event, str(event.originator_id), event.meta["effective_date"])

    def _on_Applied(self, cur: Cursor, seq: int, e: Any, cid: str, on: str) -> None:  # noqa: N802
        cur.execute(
            "INSERT INTO relocation_cases (case_id, category, territory, period, quota_id, "
            "status, places, applied_on, registrations, seq) "
            "VALUES (?, ?, ?, ?, ?, 'applied', ?, ?, '{}', ?)",
            (cid, e.category, e.territory, e.period, e.quota_id, 1 + len(e.family_members),
             on, seq),
        )

    def _status(self, cur: Cursor, seq: int, cid: str, status: str, **fields: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        cur.execute(
            f"UPDATE relocation_cases SET status = ?, seq = ?{', ' if sets else ''}{sets} "
            "WHERE case_id = ?",
            (status, seq, *fields.values(), cid),
        )

    def _on_Approved(self, cur: Cursor, seq: int, e: Any, cid: str, on: str) -> None:  # noqa: N802
        self._status(cur, seq, cid, "approved", decided_on=on)

    def _on_Refused(self, cur: Cursor, seq: int, e: Any, cid: str, on: str) -> None:  # noqa: N802
        self._status(cur, seq, cid, "refused", decided_on=on, reason=e.reason)

    def _on_Withdrawn(self, cur: Cursor, seq: int, e: Any, cid: str, on: str) -> None:  # noqa: N802
        self._status(cur, seq, cid, "withdrawn", decided_on=on, reason=e.reason)

    def _on_Arrived(self, cur: Cursor, seq: int, e: Any, cid: str, on: str) -> None:  # noqa: N802
        self._status(cur, seq, cid, "arrived", arrived_on=on,
                     arrival_district=e.address["district"])

    def _registration(self, cur: Cursor, seq: int, cid: str, member: str,
                      value: dict[str, Any]) -> None:
        cur.execute("SELECT registrations FROM relocation_cases WHERE case_id = ?", (cid,))
        row = cur.fetchone()
        if row is None:
            raise LookupError(f"registration seq {seq} for unknown relocation case {cid}")
        registrations = {**orjson.loads(row[0]), member: value}
        cur.execute("UPDATE relocation_cases SET registrations = ?, seq = ? WHERE case_id = ?",
                    (orjson.dumps(registrations).decode(), seq, cid))

    def _on_MemberRegistered(self, cur: Cursor, seq: int, e: Any, cid: str,  # noqa: N802
                             on: str) -> None:
        self._registration(cur, seq, cid, e.person, {
            "status": "registered", "registration_case_id": e.registration_case_id})

    def _on_MemberNotRegistered(self, cur: Cursor, seq: int, e: Any, cid: str,  # noqa: N802
                                on: str) -> None:
        self._registration(cur, seq, cid, e.person, {"status": "failed", "reason": e.reason})


_COLUMNS = ("case_id", "category", "territory", "period", "quota_id", "status", "places",
            "applied_on", "decided_on", "arrived_on", "arrival_district", "reason",
            "registrations")


def _row(values: tuple[Any, ...]) -> dict[str, Any]:
    row = dict(zip(_COLUMNS, values, strict=True))
    row["places"] = int(row["places"])
    row["registrations"] = orjson.loads(row["registrations"])
    return row


class RelocationRegister:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, case_id: str) -> dict[str, Any] | None:
        rows = self.db.query(
            f"SELECT {', '.join(_COLUMNS)} FROM relocation_cases WHERE case_id = ?", (case_id,)
        )
        return _row(rows[0]) if rows else None

    def count_by_status(self, quota_id: str | None = None) -> dict[str, int]:
        clause, params = ("WHERE quota_id = ? ", (quota_id,)) if quota_id else ("", ())
        rows = self.db.query(
            f"SELECT status, COUNT(*) FROM relocation_cases {clause}GROUP BY status", params
        )
        return {status: int(n) for status, n in rows}

    def search(self, status: str | None = None, limit: int = 100,
               offset: int = 0) -> list[dict[str, Any]]:
        clause, params = ("WHERE status = ? ", [status]) if status else ("", [])
        rows = self.db.query(
            f"SELECT {', '.join(_COLUMNS)} FROM relocation_cases {clause}"
            "ORDER BY applied_on, case_id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [_row(r) for r in rows]
