"""The quota ledger (§3, §6): limit, reserved and remaining places per quota."""

from __future__ import annotations

from typing import Any

from infra.sql import Cursor, Database

NAME = "quotas"


class QuotasProjection:
    name = NAME
    handles = ("Quota.",)
    ddl = (
        """CREATE TABLE IF NOT EXISTS quota_ledger (
            quota_id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            territory TEXT NOT NULL,
            period TEXT NOT NULL,
            quota_limit BIGINT NOT NULL,
            reserved BIGINT NOT NULL,
            established_on TEXT NOT NULL,
            seq BIGINT NOT NULL
        )""",
    )

    def apply(self, cur: Cursor, seq: int, event: Any) -> None:
        if not type(event).__qualname__.startswith("Quota."):
            return
        handler = getattr(self, "_on_" + type(event).__name__, None)
        if handler is not None:
            handler(cur, seq, event)

    def _on_Established(self, cur: Cursor, seq: int, e: Any) -> None:  # noqa: N802
        cur.execute(
            "INSERT INTO quota_ledger (quota_id, kind, territory, period, quota_limit, reserved, "
            "established_on, seq) VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
            (str(e.originator_id), e.kind, e.territory, e.period, e.limit,
             e.meta["effective_date"], seq),
        )

    def _on_Adjusted(self, cur: Cursor, seq: int, e: Any) -> None:  # noqa: N802
        cur.execute("UPDATE quota_ledger SET quota_limit = ?, seq = ? WHERE quota_id = ?",
                    (e.new_limit, seq, str(e.originator_id)))

    def _on_PlacesReserved(self, cur: Cursor, seq: int, e: Any) -> None:  # noqa: N802
        cur.execute("UPDATE quota_ledger SET reserved = reserved + ?, seq = ? WHERE quota_id = ?",
                    (e.count, seq, str(e.originator_id)))

    def _on_PlacesReleased(self, cur: Cursor, seq: int, e: Any) -> None:  # noqa: N802
        cur.execute("UPDATE quota_ledger SET reserved = reserved - ?, seq = ? WHERE quota_id = ?",
                    (e.count, seq, str(e.originator_id)))


_COLUMNS = ("quota_id", "kind", "territory", "period", "quota_limit", "reserved",
            "established_on")


def _row(values: tuple[Any, ...]) -> dict[str, Any]:
    row = dict(zip(_COLUMNS, values, strict=True))
    row["limit"] = int(row.pop("quota_limit"))
    row["reserved"] = int(row["reserved"])
    row["remaining"] = row["limit"] - row["reserved"]
    return row


class QuotaLedger:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, quota_id: str) -> dict[str, Any] | None:
        rows = self.db.query(
            f"SELECT {', '.join(_COLUMNS)} FROM quota_ledger WHERE quota_id = ?", (quota_id,)
        )
        return _row(rows[0]) if rows else None

    def search(self, kind: str | None = None, territory: str | None = None,
               period: str | None = None) -> list[dict[str, Any]]:
        where, params = [], []
        for column, value in (("kind", kind), ("territory", territory), ("period", period)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self.db.query(
            f"SELECT {', '.join(_COLUMNS)} FROM quota_ledger{clause} "
            "ORDER BY period, kind, territory",
            params,
        )
        return [_row(r) for r in rows]
