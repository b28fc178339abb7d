"""RegistrationCase (§9, §10): a person's registration at a place of residence."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidTransition


class RegistrationCase(Aggregate):
    """Submitted → approved or refused. Events carry plain JSON so the stored bytes
    (which the audit trail hashes) need no project code to be read."""

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
        self.meta = meta

    def _require_status(self, *allowed: str, action: str) -> None:
        if self.status not in allowed:
            raise InvalidTransition(
                f"registration case {self.id} is {self.status}; cannot {action} it"
            )

    def approve(self, meta: dict[str, Any]) -> None:
        self._require_status("submitted", action="approve")
        self._approved(meta=meta)

    @event("Approved")
    def _approved(self, meta: dict[str, Any]) -> None:
        self.status = "approved"
        self.meta = meta

    def refuse(self, reason: str, meta: dict[str, Any]) -> None:
        self._require_status("submitted", action="refuse")
        self._refused(reason=reason, meta=meta)

    @event("Refused")
    def _refused(self, reason: str, meta: dict[str, Any]) -> None:
        self.status = "refused"
        self.meta = meta
