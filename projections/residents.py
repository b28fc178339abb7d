"""The residents register (§8, §9): who is registered where, queryable by district."""

from __future__ import annotations

from typing import Any

import orjson

from infra.sql import Cursor, Database

NAME = "residents"


class ResidentsProjection:
    name = NAME
    ddl = (
        """CREATE TABLE IF NOT EXISTS registration_cases (
            case_id TEXT PRIMARY KEY,
            person_key TEXT NOT NULL,
            status TEXT NOT NULL,
            application TEXT NOT NULL,
            submitted_seq BIGINT NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS residents (
            person_key TEXT PRIMARY KEY,
            iin TEXT,
            family_name TEXT NOT NULL,
            given_name TEXT NOT NULL,
            district TEXT NOT NULL,
            address_line TEXT NOT NULL,
            housing_type TEXT NOT NULL,
            registration_kind TEXT NOT NULL,
            valid_until TEXT,
            case_id TEXT NOT NULL,
            registered_on TEXT NOT NULL,
            seq BIGINT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS residents_by_district ON residents (district)",
    )

    def apply(self, cur: Cursor, seq: int, event: Any) -> None:
        handler = getattr(self, "_on_" + type(event).__name__, None)
        if handler is not None and type(event).__qualname__.startswith("RegistrationCase."):
            handler(cur, seq, event)

    def _on_Submitted(self, cur: Cursor, seq: int, e: Any) -> None:  # noqa: N802
        application = {
            "person": e.person,
            "address": e.address,
            "housing": e.housing,
            "registration_kind": e.registration_kind,
            "valid_until": e.valid_until,
        }
        cur.execute(
            "INSERT INTO registration_cases (case_id, person_key, status, application, "
            "submitted_seq) VALUES (?, ?, 'submitted', ?, ?)",
            (str(e.originator_id), e.person["iin"], orjson.dumps(application).decode(), seq),
        )

    def _on_Approved(self, cur: Cursor, seq: int, e: Any) -> None:  # noqa: N802
        case_id = str(e.originator_id)
        cur.execute("SELECT application FROM registration_cases WHERE case_id = ?", (case_id,))
        row = cur.fetchone()
        if row is None:
            raise LookupError(f"approval seq {seq} for unknown registration case {case_id}")
        app = orjson.loads(row[0])
        person, address = app["person"], app["address"]
        cur.execute("UPDATE registration_cases SET status = 'approved' WHERE case_id = ?",
                    (case_id,))
        cur.execute(
            "INSERT INTO residents (person_key, iin, family_name, given_name, district, "
            "address_line, housing_type, registration_kind, valid_until, case_id, "
            "registered_on, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (person_key) DO UPDATE SET iin = excluded.iin, "
            "family_name = excluded.family_name, given_name = excluded.given_name, "
            "district = excluded.district, address_line = excluded.address_line, "
            "housing_type = excluded.housing_type, "
            "registration_kind = excluded.registration_kind, "
            "valid_until = excluded.valid_until, case_id = excluded.case_id, "
            "registered_on = excluded.registered_on, seq = excluded.seq",
            (
                person["iin"], person["iin"], person["family_name"], person["given_name"],
                address["district"], address["line"], app["housing"]["type"],
                app["registration_kind"], app["valid_until"], case_id,
                e.meta["effective_date"], seq,
            ),
        )

    def _on_Refused(self, cur: Cursor, seq: int, e: Any) -> None:  # noqa: N802
        cur.execute("UPDATE registration_cases SET status = 'refused' WHERE case_id = ?",
                    (str(e.originator_id),))


_COLUMNS = (
    "person_key", "iin", "family_name", "given_name", "district", "address_line",
    "housing_type", "registration_kind", "valid_until", "case_id", "registered_on", "seq",
)


class ResidentsRegister:
    """Queries over the residents register."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def by_iin(self, iin: str) -> dict[str, Any] | None:
        rows = self.db.query(f"SELECT {', '.join(_COLUMNS)} FROM residents WHERE iin = ?", (iin,))
        return dict(zip(_COLUMNS, rows[0], strict=True)) if rows else None

    def by_district(self, district: str, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        rows = self.db.query(
            f"SELECT {', '.join(_COLUMNS)} FROM residents WHERE district = ? "
            "ORDER BY family_name, given_name, person_key LIMIT ? OFFSET ?",
            (district, limit, offset),
        )
        return [dict(zip(_COLUMNS, r, strict=True)) for r in rows]

    def count(self) -> int:
        return int(self.db.query("SELECT COUNT(*) FROM residents")[0][0])
