"""The residents register (§8, §9): who is registered where, permanently or until an end
date, queryable by district, by IIN and — for foreigners and stateless persons without
one — by document. One row per approved registration; an ended one keeps its row with
the reason, and a correction overwrites the field here while the history keeps both.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from infra.sql import Cursor, Database
from projections.erasure import ERASURE_EVENT, erase_registrations

NAME = "residents"
_PERSON_FIELDS = ("family_name", "given_name", "patronymic", "birth_date")


def person_key(person: dict[str, Any]) -> str:
    """The IIN, else document type and number (as the monitoring register keys persons)."""
    if person.get("iin"):
        return str(person["iin"])
    return f"{person.get('document_type')}:{person.get('document_number')}"


def application_json(e: Any) -> str:
    """What registration_cases keeps of a submitted registration."""
    return orjson.dumps({
        "person": e.person,
        "address": e.address,
        "housing": e.housing,
        "registration_kind": e.registration_kind,
        "valid_until": e.valid_until,
    }).decode()


def resident_row(case_id: str, app: dict[str, Any], registered_on: str, seq: int) -> list[Any]:
    """The residents row (in _COLUMNS order) of an approved registration."""
    person, address = app["person"], app["address"]
    return [
        person_key(person),
        case_id,
        person.get("kind", "citizen"),
        person.get("iin"),
        person.get("document_type"),
        person.get("document_number"),
        person["family_name"],
        person["given_name"],
        person.get("patronymic"),
        person.get("birth_date"),
        address["district"],
        address["line"],
        app["housing"]["type"],
        app["registration_kind"],
        app["valid_until"],
        "active",
        None,  # end_reason
        None,  # ended_on
        registered_on,
        orjson.dumps(app.get("corrected", [])).decode(),
        seq,
    ]


class ResidentsProjection:
    name = NAME
    handles = ("RegistrationCase.", ERASURE_EVENT)
    ddl = (
        """CREATE TABLE IF NOT EXISTS registration_cases (
            case_id TEXT PRIMARY KEY,
            person_key TEXT NOT NULL,
            status TEXT NOT NULL,
            application TEXT NOT NULL,
            submitted_seq BIGINT NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS residents (
            person_key TEXT NOT NULL,
            case_id TEXT PRIMARY KEY,
            person_kind TEXT NOT NULL,
            iin TEXT,
            document_type TEXT,
            document_number TEXT,
            family_name TEXT NOT NULL,
            given_name TEXT NOT NULL,
            patronymic TEXT,
            birth_date TEXT,
            district TEXT NOT NULL,
            address_line TEXT NOT NULL,
            housing_type TEXT NOT NULL,
            registration_kind TEXT NOT NULL,
            valid_until TEXT,
            status TEXT NOT NULL,
            end_reason TEXT,
            ended_on TEXT,
            registered_on TEXT NOT NULL,
            corrected_fields TEXT NOT NULL,
            seq BIGINT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS residents_by_district ON residents (district, status)",
        "CREATE INDEX IF NOT EXISTS residents_by_person ON residents (person_key)",
        "CREATE INDEX IF NOT EXISTS residents_by_iin ON residents (iin)",
        "CREATE INDEX IF NOT EXISTS residents_by_document "
        "ON residents (document_type, document_number)",
    )

    def rebuilder(self) -> Any:
        """Applies a rebuild's batches through write-back caches (same rows)."""
        from projections.residents_rebuild import ResidentsRebuild

        return ResidentsRebuild(self)

    def apply(self, cur: Cursor, seq: int, event: Any) -> None:
        if type(event).__qualname__ == ERASURE_EVENT:
            erase_registrations(cur, event.subject_id, person_key)
            return
        handler = getattr(self, "_on_" + type(event).__name__, None)
        if handler is not None and type(event).__qualname__.startswith("RegistrationCase."):
            handler(cur, seq, event)

    def _on_Submitted(self, cur: Cursor, seq: int, e: Any) -> None:  # noqa: N802
        cur.execute(
            "INSERT INTO registration_cases (case_id, person_key, status, application, "
            "submitted_seq) VALUES (?, ?, 'submitted', ?, ?)",
            (str(e.originator_id), person_key(e.person), application_json(e), seq),
        )

    def _application(self, cur: Cursor, case_id: str, seq: int) -> dict[str, Any]:
        cur.execute("SELECT application FROM registration_cases WHERE case_id = ?", (case_id,))
        row = cur.fetchone()
        if row is None:
            raise LookupError(f"event seq {seq} for unknown registration case {case_id}")
        return orjson.loads(row[0])

    def _on_Approved(self, cur: Cursor, seq: int, e: Any) -> None:  # noqa: N802
        case_id = str(e.originator_id)
        # One statement both decides and reads the application (a rebuild runs it per case).
        cur.execute(
            "UPDATE registration_cases SET status = 'approved' WHERE case_id = ? "
            "RETURNING application",
            (case_id,),
        )
        row = cur.fetchone()
        if row is None:
            raise LookupError(f"event seq {seq} for unknown registration case {case_id}")
        cur.execute(
            f"INSERT INTO residents ({', '.join(_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(_COLUMNS))})",
            resident_row(case_id, orjson.loads(row[0]), e.meta["effective_date"], seq),
        )

    def _on_Refused(self, cur: Cursor, seq: int, e: Any) -> None:  # noqa: N802
        cur.execute(
            "UPDATE registration_cases SET status = 'refused' WHERE case_id = ?",
            (str(e.originator_id),),
        )

    def _on_Extended(self, cur: Cursor, seq: int, e: Any) -> None:  # noqa: N802
        cur.execute(
            "UPDATE residents SET valid_until = ?, seq = ? WHERE case_id = ?",
            (e.valid_until, seq, str(e.originator_id)),
        )

    def _ended(self, cur: Cursor, seq: int, e: Any) -> None:
        case_id = str(e.originator_id)
        cur.execute("UPDATE registration_cases SET status = 'ended' WHERE case_id = ?", (case_id,))
        cur.execute(
            "UPDATE residents SET status = 'ended', end_reason = ?, ended_on = ?, seq = ? "
            "WHERE case_id = ?",
            (e.reason, e.meta["effective_date"], seq, case_id),
        )

    _on_Deregistered = _ended
    _on_Ended = _ended

    def _on_Corrected(self, cur: Cursor, seq: int, e: Any) -> None:  # noqa: N802
        case_id = str(e.originator_id)
        app = self._application(cur, case_id, seq)
        corrected = sorted({*app.get("corrected", []), *e.fields})
        app = {**app, "person": {**app["person"], **e.person}, "corrected": corrected}
        cur.execute(
            "UPDATE registration_cases SET application = ? WHERE case_id = ?",
            (orjson.dumps(app).decode(), case_id),
        )
        changes = {k: v for k, v in e.person.items() if k in _PERSON_FIELDS}
        sets = ", ".join(f"{k} = ?" for k in changes)
        cur.execute(
            f"UPDATE residents SET {sets + ', ' if sets else ''}corrected_fields = ?, seq = ? "
            "WHERE case_id = ?",
            (*changes.values(), orjson.dumps(corrected).decode(), seq, case_id),
        )


_COLUMNS = (
    "person_key",
    "case_id",
    "person_kind",
    "iin",
    "document_type",
    "document_number",
    "family_name",
    "given_name",
    "patronymic",
    "birth_date",
    "district",
    "address_line",
    "housing_type",
    "registration_kind",
    "valid_until",
    "status",
    "end_reason",
    "ended_on",
    "registered_on",
    "corrected_fields",
    "seq",
)
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM residents"
# Active first, the permanent registration before temporary ones, newest first.
_ORDER = (
    " ORDER BY CASE status WHEN 'active' THEN 0 ELSE 1 END, "
    "CASE registration_kind WHEN 'permanent' THEN 0 ELSE 1 END, seq DESC"
)


class ResidentsRegister:
    """Queries over the residents register. `today` decides whether a temporary
    registration has run out (its status then reads `expired`)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def _row(values: tuple[Any, ...], today: dt.date) -> dict[str, Any]:
        row = dict(zip(_COLUMNS, values, strict=True))
        row["corrected_fields"] = orjson.loads(row["corrected_fields"])
        if (
            row["status"] == "active"
            and row["valid_until"]
            and row["valid_until"] < today.isoformat()
        ):
            row["status"] = "expired"
        return row

    def _rows(
        self, sql: str, params: tuple[Any, ...], today: dt.date | None
    ) -> list[dict[str, Any]]:
        day = today or dt.date.today()
        return [self._row(r, day) for r in self.db.query(sql, params)]

    def by_iin(self, iin: str, today: dt.date | None = None) -> dict[str, Any] | None:
        """The person's current registration: the permanent one, else the newest
        temporary one still running."""
        rows = [r for r in self.registrations_of_iin(iin, today) if r["status"] == "active"]
        return rows[0] if rows else None

    def registrations_of_iin(self, iin: str, today: dt.date | None = None) -> list[dict[str, Any]]:
        return self._rows(_SELECT + " WHERE iin = ?" + _ORDER, (iin,), today)

    def by_document(
        self, document_type: str, document_number: str, today: dt.date | None = None
    ) -> list[dict[str, Any]]:
        return self._rows(
            _SELECT + " WHERE document_type = ? AND document_number = ?" + _ORDER,
            (document_type, document_number),
            today,
        )

    def by_district(
        self,
        district: str,
        limit: int = 100,
        offset: int = 0,
        status: str = "active",
        today: dt.date | None = None,
    ) -> list[dict[str, Any]]:
        """`status` active (registered now), ended, expired or all."""
        day = (today or dt.date.today()).isoformat()
        where, params = {
            "active": (
                " AND status = 'active' AND (valid_until IS NULL OR valid_until >= ?)",
                (day,),
            ),
            "expired": (" AND status = 'active' AND valid_until < ?", (day,)),
            "ended": (" AND status = 'ended'", ()),
            "all": ("", ()),
        }[status]
        return self._rows(
            _SELECT
            + " WHERE district = ?"
            + where
            + " ORDER BY family_name, given_name, case_id LIMIT ? OFFSET ?",
            (district, *params, limit, offset),
            today,
        )

    def count(self) -> int:
        """Registrations in force (ended ones excluded)."""
        return int(self.db.query("SELECT COUNT(*) FROM residents WHERE status = 'active'")[0][0])
