"""The register of §5 proposals: what the akimat proposed and what the authorised
body decided, with reasons."""

from __future__ import annotations

from typing import Any

import orjson

from infra.sql import Cursor, Database

NAME = "proposals"


class ProposalsProjection:
    name = NAME
    handles = ("Proposal.",)
    ddl = (
        """CREATE TABLE IF NOT EXISTS proposals (
            proposal_id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            target TEXT NOT NULL,
            rationale TEXT NOT NULL,
            status TEXT NOT NULL,
            reasons TEXT,
            acceptance_id TEXT,
            drafted_on TEXT NOT NULL,
            submitted_on TEXT,
            decided_on TEXT,
            seq BIGINT NOT NULL
        )""",
    )

    def apply(self, cur: Cursor, seq: int, event: Any) -> None:
        if not type(event).__qualname__.startswith("Proposal."):
            return
        pid, on, name = str(event.originator_id), event.meta["effective_date"], type(event).__name__
        if name == "Drafted":
            cur.execute(
                "INSERT INTO proposals (proposal_id, kind, target, rationale, status, "
                "drafted_on, seq) VALUES (?, ?, ?, ?, 'drafted', ?, ?)",
                (pid, event.kind, orjson.dumps(event.target).decode(), event.rationale, on, seq),
            )
        elif name == "Submitted":
            cur.execute("UPDATE proposals SET status = 'submitted', submitted_on = ?, seq = ? "
                        "WHERE proposal_id = ?", (on, seq, pid))
        elif name == "Accepted":
            cur.execute("UPDATE proposals SET status = 'accepted', decided_on = ?, reasons = ?, "
                        "acceptance_id = ?, seq = ? WHERE proposal_id = ?",
                        (on, event.reasons, event.acceptance_id, seq, pid))
        elif name == "Declined":
            cur.execute("UPDATE proposals SET status = 'declined', decided_on = ?, reasons = ?, "
                        "seq = ? WHERE proposal_id = ?", (on, event.reasons, seq, pid))


_COLUMNS = ("proposal_id", "kind", "target", "rationale", "status", "reasons", "acceptance_id",
            "drafted_on", "submitted_on", "decided_on")


def _row(values: tuple[Any, ...]) -> dict[str, Any]:
    row = dict(zip(_COLUMNS, values, strict=True))
    row["target"] = orjson.loads(row["target"])
    return row


class ProposalRegister:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, proposal_id: str) -> dict[str, Any] | None:
        rows = self.db.query(
            f"SELECT {', '.join(_COLUMNS)} FROM proposals WHERE proposal_id = ?", (proposal_id,)
        )
        return _row(rows[0]) if rows else None

    def search(self, status: str | None = None, limit: int = 100,
               offset: int = 0) -> list[dict[str, Any]]:
        clause, params = ("WHERE status = ? ", [status]) if status else ("", [])
        rows = self.db.query(
            f"SELECT {', '.join(_COLUMNS)} FROM proposals {clause}"
            "ORDER BY drafted_on, proposal_id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [_row(r) for r in rows]
