"""The monitoring register's rebuild: the same rows as `MonitoringProjection.apply`
writes event by event, kept in write-back caches a batch at a time. The rare events
(a registration's end, natural-growth figures, erasures) go to the projection's own code.
"""

from __future__ import annotations

from typing import Any

from infra.sql import Cursor
from projections.monitoring import (
    MonitoringProjection,
    _month,
    _person_key,
    arrival_category,
    birth_date_of,
)
from projections.write_back import CachedApplier, Handler, RowCache, ignore

_REGISTRATIONS = ("case_id", "person_key", "district", "birth_date", "category",
                  "arrival_month", "counted")


class MonitoringRebuild(CachedApplier):
    def __init__(self, projection: MonitoringProjection) -> None:
        self.registrations = RowCache("monitoring_registrations", ("case_id",), _REGISTRATIONS)
        self.residents = RowCache("monitoring_residents", ("person_key",),
                                  ("person_key", "case_id", "district", "birth_date"))
        self.relocations = RowCache("monitoring_relocations", ("case_id",),
                                    ("case_id", "category"))
        self.settled = RowCache("monitoring_settled", ("registration_case_id",),
                                ("registration_case_id", "relocation_case_id"))
        self.flows = RowCache("monitoring_flows", ("district", "month", "category"),
                              ("district", "month", "category", "arrivals", "departures"))
        handlers: dict[str, Handler] = {
            "RegistrationCase.Submitted": self._submitted,
            "RegistrationCase.Approved": self._approved,
            "RelocationCase.Applied": self._relocation_applied,
            "RelocationCase.Arrived": self._relocation_arrived,
            "RelocationCase.MemberRegistered": self._member_registered,
        }
        # What the projection does nothing with, of the cases it reads.
        for name in ("RegistrationCase.Refused", "RegistrationCase.Extended",
                     "RegistrationCase.Corrected", "RelocationCase.Approved",
                     "RelocationCase.Refused", "RelocationCase.Withdrawn",
                     "RelocationCase.MemberNotRegistered"):
            handlers[name] = ignore
        super().__init__(projection, [self.registrations, self.residents, self.relocations,
                                      self.settled, self.flows], handlers)

    def prefetch(self, cur: Cursor, events: Any) -> None:
        ids = [str(e.originator_id) for e in events
               if type(e).__qualname__.startswith("RegistrationCase.")]
        self.registrations.prefetch(cur, ids)
        self.settled.prefetch(cur, ids)
        # The persons of the batch's registrations: known now for those submitted before.
        self.residents.prefetch(cur, [
            row[1] for i in ids if (row := self.registrations.rows.get(i)) is not None])

    # -- registrations (§9) --------------------------------------------------------------
    def _submitted(self, cur: Cursor, seq: int, e: Any) -> bool:
        case_id = str(e.originator_id)
        if self.registrations.get(cur, case_id) is None:  # else ON CONFLICT DO NOTHING
            application = {k: getattr(e, k, None) for k in ("person", "purpose", "grounds")}
            person = e.person or {}
            self.registrations.put(case_id, [
                case_id, _person_key(person), e.address["district"], birth_date_of(person),
                arrival_category(application), None, 0])
        return True

    def _approved(self, cur: Cursor, seq: int, e: Any) -> bool:
        case_id = str(e.originator_id)
        row = self.registrations.get(cur, case_id)
        if row is None:
            return True  # submitted before monitoring existed: nothing to count it by
        person_key, district, birth_date, category = row[1], row[2], row[3], row[4]
        unsettled = self.settled.get(cur, case_id) is None
        month = _month(e)
        previous = self.residents.get(cur, person_key)
        if previous is not None and previous[1] != case_id:
            # §4 internal flow: a resident re-registers elsewhere in the city.
            self._count(cur, previous[2], month, "internal", departures=1)
            category = "internal"
        counted = bool(unsettled)  # else the relocation's arrival counted them
        if counted:
            self._count(cur, district, month, category, arrivals=1)
        row[4], row[5], row[6] = category, month, int(counted)
        self.registrations.put(case_id, row)
        self.residents.put(person_key, [person_key, case_id, district, birth_date])
        return True

    # -- relocations (§6) ----------------------------------------------------------------
    def _relocation_applied(self, cur: Cursor, seq: int, e: Any) -> bool:
        case_id = str(e.originator_id)
        if self.relocations.get(cur, case_id) is None:
            self.relocations.put(case_id, [case_id, e.category])
        return True

    def _relocation_arrived(self, cur: Cursor, seq: int, e: Any) -> bool:
        row = self.relocations.get(cur, str(e.originator_id))
        if row is not None:
            self._count(cur, e.address["district"], _month(e), row[1], arrivals=int(e.persons))
        return True

    def _member_registered(self, cur: Cursor, seq: int, e: Any) -> bool:
        reg_case = str(e.registration_case_id)
        if self.settled.get(cur, reg_case) is None:
            self.settled.put(reg_case, [reg_case, str(e.originator_id)])
        row = self.registrations.get(cur, reg_case)
        if row is not None and row[6] == 1:  # approved before the link was recorded
            self._count(cur, row[2], row[5], row[4], arrivals=-1)
            row[6] = 0
            self.registrations.put(reg_case, row)
        return True

    def _count(self, cur: Cursor, district: str, month: str, category: str,
               arrivals: int = 0, departures: int = 0) -> None:
        """As monitoring's `_count`: an upsert adding to the counts, and a row a count
        taken back leaves at zero deleted."""
        key = (district, month, category)
        row = self.flows.get(cur, key)
        if row is None:
            row = [district, month, category, arrivals, departures]
        else:
            row[3] += arrivals
            row[4] += departures
        self.flows.put(key, row)
        if (arrivals < 0 or departures < 0) and row[3] == 0 and row[4] == 0:
            self.flows.delete(key)
