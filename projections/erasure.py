"""Registers after a data subject's erasure read as a rebuild from the store would: the
subject's personal fields blanked exactly as their sealed events now decode.

Registers hold no subject ids, so rows are matched by recomputing each row's subject —
a scan, acceptable for a rare, legally required act."""

from __future__ import annotations

from typing import Any

import orjson

from domain.erasure import ERASED, erased_copy, subject_id_of, subject_of
from infra.sql import Cursor

ERASURE_EVENT = "Erasure.Recorded"


def _key_subject(person_key: str) -> str | None:
    """The subject of a register key: an IIN, or 'document_type:number'."""
    if person_key.startswith("erased:") or ":erased:" in person_key:
        return None
    if ":" not in person_key:
        return subject_id_of(iin=person_key)
    kind, _, number = person_key.partition(":")
    return subject_id_of(document_type=kind, document_number=number)


def erase_registrations(cur: Cursor, subject: str, person_key: Any) -> None:
    """registration_cases and residents (projections/residents.py)."""
    cur.execute("SELECT case_id, application FROM registration_cases")
    for case_id, application in cur.fetchall():
        app = orjson.loads(application)
        if subject_of(app.get("person") or {}) != subject:
            continue
        erased = erased_copy(app, subject)
        person, address = erased["person"], erased.get("address") or {}
        cur.execute("UPDATE registration_cases SET application = ?, person_key = ? "
                    "WHERE case_id = ?",
                    (orjson.dumps(erased).decode(), person_key(person), case_id))
        cur.execute(
            "UPDATE residents SET person_key = ?, iin = ?, document_number = ?, "
            "family_name = ?, given_name = ?, patronymic = ?, birth_date = NULL, "
            "address_line = ? WHERE case_id = ?",
            (person_key(person), person.get("iin"), person.get("document_number"),
             person.get("family_name", ERASED), person.get("given_name", ERASED),
             person.get("patronymic"), address.get("line", ERASED), case_id),
        )


def erase_monitoring(cur: Cursor, subject: str) -> None:
    """Monitoring keeps counts only; the subject's key and birth date go."""
    for table in ("monitoring_registrations", "monitoring_residents"):
        cur.execute(f"SELECT DISTINCT person_key FROM {table}")  # noqa: S608 - fixed names
        for (key,) in cur.fetchall():
            if _key_subject(str(key)) == subject:
                cur.execute(f"UPDATE {table} SET person_key = ?, birth_date = NULL "  # noqa: S608
                            "WHERE person_key = ?", (f"erased:{subject}", key))
