"""RegistrationCase (§9, §10): a person's registration at a place of residence.

Submitted → approved (the person is registered) or refused. An approved temporary
registration ends on its end date unless extended; any approved registration ends by
deregistration (moved out, left the country, deceased) or, when permanent, by a new
permanent registration elsewhere. A correction is a new event that supersedes a field;
nothing recorded is ever edited.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidTransition, InvalidValue
from domain.ids import uuid7

SUPERSEDED = "superseded"
# Fields a correction may supersede; identity (IIN, document) is not corrected but
# registered anew, since the register keys persons by it.
CORRECTABLE = ("family_name", "given_name", "patronymic", "birth_date")


class DeregistrationReason(StrEnum):
    MOVED_OUT = "moved_out"
    LEFT_COUNTRY = "left_country"
    DECEASED = "deceased"


class RegistrationCase(Aggregate):
    """Events carry plain JSON so the stored bytes (which the audit trail hashes) need no
    project code to be read."""

    create_id = staticmethod(uuid7)  # creation order: see domain.ids

    @event("Submitted")
    def __init__(
        self,
        person: dict[str, Any],
        address: dict[str, Any],
        housing: dict[str, Any],
        registration_kind: str,
        valid_until: str | None,
        meta: dict[str, Any],
    ) -> None:
        self.person = person
        self.address = address
        self.housing = housing
        self.registration_kind = registration_kind
        self.valid_until = valid_until
        self.status = "submitted"
        self.approved_on: str | None = None
        self.ended_on: str | None = None
        self.end_reason: str | None = None
        self.corrected_fields: list[str] = []
        self.meta = meta

    def _require_status(self, *allowed: str, action: str) -> None:
        if self.status not in allowed:
            raise InvalidTransition(
                f"registration case {self.id} is {self.status}; cannot {action} it"
            )

    def require_submitted(self, action: str) -> None:
        self._require_status("submitted", action=action)

    def active_on(self, on: dt.date) -> bool:
        return self.status == "approved" and (
            self.valid_until is None or self.valid_until >= on.isoformat()
        )

    def _require_active(self, on: dt.date, action: str) -> None:
        self._require_status("approved", action=action)
        if not self.active_on(on):
            raise InvalidTransition(
                f"temporary registration {self.id} ended on {self.valid_until}; cannot "
                f"{action} it on {on} — submit a new registration"
            )
        if self.approved_on is not None and on.isoformat() < self.approved_on:
            raise InvalidValue(
                f"registration {self.id} took effect on {self.approved_on}; cannot {action} "
                f"it as of the earlier {on}"
            )

    # -- decision ----------------------------------------------------------------------
    def approve(
        self, meta: dict[str, Any], occupants: int | None = None, ends: str | None = None
    ) -> None:
        self.require_submitted("approve")
        self._approved(meta=meta, occupants=occupants, ends=ends)

    @event("Approved")
    def _approved(
        self, meta: dict[str, Any], occupants: int | None = None, ends: str | None = None
    ) -> None:
        self.status = "approved"
        self.approved_on = meta.get("effective_date")
        self.meta = meta

    def refuse(self, reason: str, meta: dict[str, Any]) -> None:
        self.require_submitted("refuse")
        self._refused(reason=reason, meta=meta)

    @event("Refused")
    def _refused(self, reason: str, meta: dict[str, Any]) -> None:
        self.status = "refused"
        self.meta = meta

    # -- while registered --------------------------------------------------------------
    def extend(self, valid_until: dt.date, on: dt.date, meta: dict[str, Any]) -> None:
        if self.registration_kind != "temporary":
            raise InvalidTransition(
                f"registration {self.id} is permanent; only a temporary registration is extended"
            )
        self._require_active(on, "extend")
        assert self.valid_until is not None
        if valid_until.isoformat() <= self.valid_until:
            raise InvalidValue(
                f"an extension must end after the current end date "
                f"{self.valid_until}; {valid_until} given"
            )
        self._extended(valid_until=valid_until.isoformat(), previous=self.valid_until, meta=meta)

    @event("Extended")
    def _extended(self, valid_until: str, previous: str, meta: dict[str, Any]) -> None:
        self.valid_until = valid_until
        self.meta = meta

    def deregister(self, reason: DeregistrationReason, on: dt.date, meta: dict[str, Any]) -> None:
        self._require_active(on, "deregister")
        self._deregistered(reason=reason.value, meta=meta)

    @event("Deregistered")
    def _deregistered(self, reason: str, meta: dict[str, Any]) -> None:
        self.status = "ended"
        self.end_reason = reason
        self.ended_on = meta.get("effective_date")
        self.meta = meta

    def end_superseded(self, by_case_id: str, meta: dict[str, Any]) -> None:
        """§9: a new permanent registration ends this one in the same decision."""
        self._require_status("approved", action="end")
        self._ended(reason=SUPERSEDED, superseded_by=by_case_id, meta=meta)

    @event("Ended")
    def _ended(self, reason: str, superseded_by: str, meta: dict[str, Any]) -> None:
        self.status = "ended"
        self.end_reason = reason
        self.ended_on = meta.get("effective_date")
        self.meta = meta

    # -- errata ------------------------------------------------------------------------
    def correct(self, fields: dict[str, Any], reason: str, meta: dict[str, Any]) -> None:
        """Supersedes recorded personal fields; the old values stay in the history."""
        if not fields:
            raise InvalidValue("a correction names at least one field to correct")
        unknown = sorted(set(fields) - set(CORRECTABLE))
        if unknown:
            raise InvalidValue(
                f"cannot correct {', '.join(unknown)}; correctable: {', '.join(CORRECTABLE)}"
            )
        if "birth_date" in fields and self.person.get("iin"):
            raise InvalidValue(
                "the birth date of a person with an IIN is the IIN's; correct "
                "the IIN by a new registration"
            )
        unchanged = sorted(k for k, v in fields.items() if self.person.get(k) == v)
        if unchanged:
            raise InvalidValue(f"{', '.join(unchanged)} already hold the corrected value")
        self._corrected(person=dict(fields), fields=sorted(fields), reason=reason, meta=meta)

    @event("Corrected")
    def _corrected(
        self, person: dict[str, Any], fields: list[str], reason: str, meta: dict[str, Any]
    ) -> None:
        self.person = {**self.person, **person}
        self.corrected_fields = sorted({*self.corrected_fields, *fields})
        self.meta = meta
