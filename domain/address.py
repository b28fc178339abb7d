"""AddressOccupancy (§10): who is registered at one address of state or akimat-leased
housing, so the area norm counts everyone registered there after a decision.

One aggregate per normalised address, changed in the same atomic save as the
registration it concerns: two approvals racing for the last square metres collide on
its version, and the one retried sees the other's occupant. Its events name occupants
by registration case and person pseudonym only; the address itself stays in the
registration case, where personal data is sealed.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.housing import NORM_APPLIES_TO, HousingType, check_area_norm
from domain.ids import uuid5
from domain.territory import KOSH_NAMESPACE

_PUNCTUATION = re.compile(r"[,.;:\"'«»№#()]")
_SPACES = re.compile(r"\s+")


def normalised_address(district: str, line: str) -> str:
    """'Dostyk 5, flat 2' and 'dostyk  5 flat 2' are one address."""
    text = _PUNCTUATION.sub(" ", unicodedata.normalize("NFKC", line).casefold())
    return f"{district.casefold()}|{_SPACES.sub(' ', text).strip()}"


def address_id(address: dict[str, Any]) -> UUID:
    key = normalised_address(str(address["district"]), str(address["line"]))
    return uuid5(KOSH_NAMESPACE, f"address/{key}")


def area_norm_applies(housing: dict[str, Any]) -> bool:
    """§10 counts occupants only in state and akimat-leased housing."""
    return HousingType(housing["type"]) in NORM_APPLIES_TO


class AddressOccupancy(Aggregate):
    @event("Opened")
    def __init__(self, id: UUID, meta: dict[str, Any]) -> None:  # noqa: A002
        # registration case id → {"person": pseudonym, "until": ISO date or None}
        self.occupants: dict[str, dict[str, Any]] = {}
        self.meta = meta

    def persons_on(self, on: dt.date) -> set[str]:
        """Persons registered here on `on` (a temporary registration past its end date
        no longer counts)."""
        day = on.isoformat()
        return {
            o["person"] for o in self.occupants.values() if o["until"] is None or o["until"] >= day
        }

    def occupants_after(self, person: str, on: dt.date) -> int:
        """Everyone registered here once `person` is: a person counts once, however
        many of their registrations point here."""
        return len(self.persons_on(on) | {person})

    def admit(
        self,
        registration_case_id: str,
        person: str,
        until: dt.date | None,
        housing: dict[str, Any],
        on: dt.date,
        norm_in_force: bool,
        meta: dict[str, Any],
    ) -> int:
        """Admits the occupant, refusing under §10 when the home is then too small;
        a declared figure above the count (occupants the city does not register here)
        is taken when larger. Returns the number of occupants counted."""
        counted = self.occupants_after(person, on)
        declared = housing.get("occupants_after_registration") or 0
        occupants = max(counted, int(declared))
        if norm_in_force:
            check_area_norm(
                HousingType(housing["type"]), float(housing["useful_area_m2"]), occupants
            )
        self._admitted(
            registration_case_id=registration_case_id,
            person=person,
            until=until.isoformat() if until else None,
            occupants=occupants,
            meta=meta,
        )
        return occupants

    @event("Admitted")
    def _admitted(
        self,
        registration_case_id: str,
        person: str,
        until: str | None,
        occupants: int,
        meta: dict[str, Any],
    ) -> None:
        self.occupants = {
            **self.occupants,
            registration_case_id: {"person": person, "until": until},
        }
        self.meta = meta

    def extend(self, registration_case_id: str, until: dt.date, meta: dict[str, Any]) -> None:
        if registration_case_id in self.occupants:
            self._extended(
                registration_case_id=registration_case_id, until=until.isoformat(), meta=meta
            )

    @event("Extended")
    def _extended(self, registration_case_id: str, until: str, meta: dict[str, Any]) -> None:
        self.occupants = {
            **self.occupants,
            registration_case_id: {**self.occupants[registration_case_id], "until": until},
        }
        self.meta = meta

    def release(self, registration_case_ids: list[str], meta: dict[str, Any]) -> None:
        leaving = [c for c in registration_case_ids if c in self.occupants]
        if leaving:
            self._left(registration_case_ids=leaving, meta=meta)

    @event("Left")
    def _left(self, registration_case_ids: list[str], meta: dict[str, Any]) -> None:
        self.occupants = {k: v for k, v in self.occupants.items() if k not in registration_case_ids}
        self.meta = meta
