"""The residents register's rebuild: the same rows as `ResidentsProjection.apply` writes
event by event, kept in write-back caches a batch at a time. Corrections and erasures
are rare: the projection's own code applies them to the database."""

from __future__ import annotations

from typing import Any

import orjson

from infra.sql import Cursor
from projections.residents import (
    _COLUMNS,
    ResidentsProjection,
    application_json,
    person_key,
    resident_row,
)
from projections.write_back import CachedApplier, RowCache

_CASE_COLUMNS = ("case_id", "person_key", "status", "application", "submitted_seq")
_AT = {c: i for i, c in enumerate(_COLUMNS)}
_STATUS, _VALID_UNTIL, _SEQ = _AT["status"], _AT["valid_until"], _AT["seq"]
_END_REASON, _ENDED_ON = _AT["end_reason"], _AT["ended_on"]


class ResidentsRebuild(CachedApplier):
    def __init__(self, projection: ResidentsProjection) -> None:
        self.cases = RowCache("registration_cases", ("case_id",), _CASE_COLUMNS)
        self.residents = RowCache("residents", ("case_id",), _COLUMNS)
        on = "RegistrationCase."
        super().__init__(projection, [self.cases, self.residents], {
            on + "Submitted": self._submitted,
            on + "Approved": self._approved,
            on + "Refused": self._refused,
            on + "Extended": self._extended,
            on + "Deregistered": self._ended,
            on + "Ended": self._ended,
        })

    def prefetch(self, cur: Cursor, events: Any) -> None:
        ids = [str(e.originator_id) for e in events
               if type(e).__qualname__.startswith("RegistrationCase.")]
        self.cases.prefetch(cur, ids)
        self.residents.prefetch(cur, ids)

    def _submitted(self, cur: Cursor, seq: int, e: Any) -> bool:
        case_id = str(e.originator_id)
        if self.cases.get(cur, case_id) is not None:
            return False  # the projection's INSERT refuses it
        self.cases.put(case_id, [case_id, person_key(e.person), "submitted",
                                 application_json(e), seq])
        return True

    def _approved(self, cur: Cursor, seq: int, e: Any) -> bool:
        case_id = str(e.originator_id)
        case = self.cases.get(cur, case_id)
        if case is None or self.residents.get(cur, case_id) is not None:
            return False  # the projection raises
        case[2] = "approved"
        self.cases.put(case_id, case)
        self.residents.put(case_id, resident_row(case_id, orjson.loads(case[3]),
                                                 e.meta["effective_date"], seq))
        return True

    def _refused(self, cur: Cursor, seq: int, e: Any) -> bool:
        self._case_status(cur, str(e.originator_id), "refused")
        return True

    def _case_status(self, cur: Cursor, case_id: str, status: str) -> None:
        case = self.cases.get(cur, case_id)
        if case is not None:
            case[2] = status
            self.cases.put(case_id, case)

    def _extended(self, cur: Cursor, seq: int, e: Any) -> bool:
        case_id = str(e.originator_id)
        row = self.residents.get(cur, case_id)
        if row is not None:
            row[_VALID_UNTIL], row[_SEQ] = e.valid_until, seq
            self.residents.put(case_id, row)
        return True

    def _ended(self, cur: Cursor, seq: int, e: Any) -> bool:
        case_id = str(e.originator_id)
        self._case_status(cur, case_id, "ended")
        row = self.residents.get(cur, case_id)
        if row is not None:
            row[_STATUS], row[_END_REASON] = "ended", e.reason
            row[_ENDED_ON], row[_SEQ] = e.meta["effective_date"], seq
            self.residents.put(case_id, row)
        return True
