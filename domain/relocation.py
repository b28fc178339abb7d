"""RelocationCase (§6): a kandas or settler settles, with family members, in a territory
designated for them, within a regional quota. Applied → approved (one place per person
reserved) → arrived; refused or withdrawn (places released) before arrival.

On arrival a process manager registers each person's permanent residence (§9) and
records here which registration case it opened, so a redelivered arrival registers
nobody twice.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidTransition, RuleViolation
from domain.ids import uuid5, uuid7
from domain.quota import QuotaPeriod
from domain.territory import KOSH_NAMESPACE


def member_key(index: int) -> str:
    """A person's place in the case (0 = the applicant): events refer to people by it,
    so no IIN or document number appears outside the sealed person records."""
    return str(index)


def registration_causation_id(case_id: UUID, key: str) -> str:
    """Deterministic: the same arrival always causes the same registration commands."""
    return str(uuid5(KOSH_NAMESPACE, f"relocation/{case_id}/registration/{key}"))


def require_period_open(period: str, on: dt.date) -> None:
    """§6: settling is by the quota of a period; a period that has ended admits nobody."""
    last_day = QuotaPeriod.parse(period).last_day
    if on > last_day:
        raise RuleViolation(
            "§6", f"the quota period {period} ended on {last_day.isoformat()}; "
            f"nothing can be decided under it on {on.isoformat()}"
        )


class RelocationCase(Aggregate):
    create_id = staticmethod(uuid7)  # creation order: see domain.ids

    @event("Applied")
    def __init__(
        self,
        category: str,
        applicant: dict[str, Any],
        family_members: list[dict[str, Any]],
        territory: str,
        period: str,
        quota_id: str,
        meta: dict[str, Any],
    ) -> None:
        self.category = category
        self.applicant = applicant
        self.family_members = family_members
        self.territory = territory
        self.period = period
        self.quota_id = quota_id
        self.status = "applied"
        self.reason: str | None = None
        self.arrival: dict[str, Any] | None = None
        self.arrival_meta: dict[str, Any] = {}
        # person key → {"registration_case_id", "status"} or {"status": "failed", "reason"}
        self.registrations: dict[str, dict[str, Any]] = {}
        self.meta = meta

    @property
    def persons(self) -> list[dict[str, Any]]:
        return [self.applicant, *self.family_members]

    @property
    def places(self) -> int:
        """§6: the applicant and each family member take one place."""
        return len(self.persons)

    def _require_status(self, *allowed: str, action: str) -> None:
        if self.status not in allowed:
            raise InvalidTransition(
                f"relocation case {self.id} is {self.status}; cannot {action} it"
            )

    def approve(self, meta: dict[str, Any]) -> None:
        self._require_status("applied", action="approve")
        self._approved(places=self.places, meta=meta)

    @event("Approved")
    def _approved(self, places: int, meta: dict[str, Any]) -> None:
        self.status = "approved"
        self.meta = meta

    @property
    def holds_places(self) -> bool:
        return self.status == "approved"

    def refuse(self, reason: str, meta: dict[str, Any]) -> None:
        self._require_status("applied", "approved", action="refuse")
        self._refused(reason=reason, places_released=self.places if self.holds_places else 0,
                      meta=meta)

    @event("Refused")
    def _refused(self, reason: str, places_released: int, meta: dict[str, Any]) -> None:
        self.status = "refused"
        self.reason = reason
        self.meta = meta

    def withdraw(self, reason: str | None, meta: dict[str, Any]) -> None:
        self._require_status("applied", "approved", action="withdraw")
        self._withdrawn(reason=reason, places_released=self.places if self.holds_places else 0,
                        meta=meta)

    @event("Withdrawn")
    def _withdrawn(self, reason: str | None, places_released: int,
                   meta: dict[str, Any]) -> None:
        self.status = "withdrawn"
        self.reason = reason
        self.meta = meta

    def arrive(self, address: dict[str, Any], housing: dict[str, Any],
               meta: dict[str, Any]) -> None:
        self._require_status("approved", action="record the arrival of")
        self._arrived(address=address, housing=housing, persons=self.places, meta=meta)

    @event("Arrived")
    def _arrived(self, address: dict[str, Any], housing: dict[str, Any], persons: int,
                 meta: dict[str, Any]) -> None:
        self.status = "arrived"
        self.arrival = {"address": address, "housing": housing}
        # What the process manager's registrations cite: date, correlation, actor.
        self.arrival_meta = meta
        self.meta = meta

    def unregistered_persons(self) -> list[tuple[str, dict[str, Any]]]:
        """(member key, person) the process manager has not yet settled."""
        return [(member_key(i), p) for i, p in enumerate(self.persons)
                if member_key(i) not in self.registrations]

    def record_registration(self, key: str, registration_case_id: str,
                            meta: dict[str, Any]) -> None:
        self._require_status("arrived", action="record a registration for")
        if key in self.registrations:
            raise InvalidTransition(f"relocation case {self.id} already settled person {key}")
        self._member_registered(person=key, registration_case_id=registration_case_id,
                                meta=meta)

    @event("MemberRegistered")
    def _member_registered(self, person: str, registration_case_id: str,
                           meta: dict[str, Any]) -> None:
        self.registrations = {**self.registrations, person: {
            "status": "registered", "registration_case_id": registration_case_id}}

    def record_registration_failure(self, key: str, reason: str,
                                    meta: dict[str, Any]) -> None:
        self._require_status("arrived", action="record a registration for")
        if key in self.registrations:
            raise InvalidTransition(f"relocation case {self.id} already settled person {key}")
        self._member_not_registered(person=key, reason=reason, meta=meta)

    @event("MemberNotRegistered")
    def _member_not_registered(self, person: str, reason: str, meta: dict[str, Any]) -> None:
        self.registrations = {**self.registrations, person: {"status": "failed",
                                                             "reason": reason}}
