"""A person's registrations (§9): at most one active permanent registration at a time.

One Person aggregate per identity (IIN, else document type and number), changed in the
same atomic save as the registration decision: two permanent registrations of one
person approved at once collide on its version instead of both standing. Its events
hold registration case ids only — the identity is in the registration case, where
personal data is sealed.
"""

from __future__ import annotations

import functools
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidTransition
from domain.ids import uuid5
from domain.territory import KOSH_NAMESPACE


def normalised_document(document_type: str, document_number: str) -> tuple[str, str]:
    """'National Passport', 'n 12 345' → ('national_passport', 'N12345')."""
    kind = "_".join(document_type.strip().casefold().split())
    return kind, "".join(document_number.split()).upper()


def identity_key(person: dict[str, Any]) -> str:
    """Who the person is, for the register: the IIN when they have one (citizens always;
    foreigners and stateless persons once issued), else their document."""
    if person.get("iin"):
        return f"iin:{person['iin']}"
    kind, number = normalised_document(str(person["document_type"]), str(person["document_number"]))
    return f"doc:{kind}:{number}"


def person_id(person: dict[str, Any]) -> UUID:
    return _person_uuid(identity_key(person))


@functools.lru_cache(maxsize=65536)  # asked several times per command; uuid5 is a SHA-1
def _person_uuid(identity: str) -> UUID:
    return uuid5(KOSH_NAMESPACE, f"person/{identity}")


class Person(Aggregate):
    @event("Recorded")
    def __init__(self, id: UUID, meta: dict[str, Any]) -> None:  # noqa: A002
        # active registration case id → "permanent" | "temporary"
        self.active: dict[str, str] = {}
        self.deceased_on: str | None = None
        self.meta = meta

    @property
    def permanent(self) -> str | None:
        """The active permanent registration, if any."""
        return next((c for c, kind in self.active.items() if kind == "permanent"), None)

    def require_alive(self, action: str) -> None:
        if self.deceased_on is not None:
            raise InvalidTransition(
                f"the person was deregistered as deceased on {self.deceased_on}; cannot {action}"
            )

    def register(self, registration_case_id: str, kind: str, meta: dict[str, Any]) -> str | None:
        """Records the registration; returns the permanent one it ends (§9: one place of
        permanent residence), which the caller ends in the same save."""
        self.require_alive("approve a registration")
        ends = self.permanent if kind == "permanent" else None
        self._registered(
            registration_case_id=registration_case_id, registration_kind=kind, ends=ends, meta=meta
        )
        return ends

    @event("Registered")
    def _registered(
        self,
        registration_case_id: str,
        registration_kind: str,
        ends: str | None,
        meta: dict[str, Any],
    ) -> None:
        active = {c: k for c, k in self.active.items() if c != ends}
        self.active = {**active, registration_case_id: registration_kind}
        self.meta = meta

    def end(
        self, registration_case_ids: list[str], reason: str, on: str, meta: dict[str, Any]
    ) -> None:
        self._ended(registration_case_ids=registration_case_ids, reason=reason, on=on, meta=meta)

    @event("RegistrationsEnded")
    def _ended(
        self, registration_case_ids: list[str], reason: str, on: str, meta: dict[str, Any]
    ) -> None:
        self.active = {c: k for c, k in self.active.items() if c not in registration_case_ids}
        if reason == "deceased":
            # Registrations that already ran out end with the person too.
            self.active = {}
            self.deceased_on = on
        self.meta = meta
