"""The LegalAct aggregate: one act of the registry, as its facts become known.

Registered with what its text says; the first official publication and the state
registration may be entered later; a repeal by another act is recorded on the act it
ends. A wrong publication date is corrected by a later event, never edited.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidTransition, InvalidValue
from domain.ids import uuid5
from domain.legal_acts import ActFacts, fold_repeals
from domain.territory import KOSH_NAMESPACE


def legal_act_id(act_id: str) -> UUID:
    """One aggregate per act: registering it twice collides in the store."""
    return uuid5(KOSH_NAMESPACE, f"legal-act/{act_id}")


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


class LegalAct(Aggregate):
    @event("Registered")
    def __init__(
        self,
        id: UUID,  # noqa: A002 - eventsourcing takes the aggregate id by this name
        act_id: str,
        title: str,
        number: str,
        adopted_on: str,
        registration_number: str | None,
        registered_on: str | None,
        published_on: str | None,
        in_force_on_stated: str | None,
        edition_of_rules: bool,
        clauses: list[str],
        repeals: list[str],
        meta: dict[str, Any],
    ) -> None:
        self.act_id = act_id
        self.title = title
        self.number = number
        self.adopted_on = adopted_on
        self.registration_number = registration_number
        self.registered_on = registered_on
        self.published_on = published_on
        self.in_force_on_stated = in_force_on_stated
        self.edition_of_rules = edition_of_rules
        self.clauses = clauses
        self.repeals = repeals
        self.repealed_by: str | None = None
        self.meta = meta

    @classmethod
    def register(cls, facts: ActFacts, meta: dict[str, Any]) -> LegalAct:
        for label, day in (
            ("state registration", facts.registered_on),
            ("first publication", facts.published_on),
            ("stated entry into force", facts.in_force_on_stated),
        ):
            if day is not None and day < facts.adopted_on:
                raise InvalidValue(
                    f"the {label} of {facts.title} ({day}) cannot precede its "
                    f"adoption on {facts.adopted_on}"
                )
        return cls(
            id=legal_act_id(facts.act_id),
            act_id=facts.act_id,
            title=facts.title,
            number=facts.number,
            adopted_on=facts.adopted_on.isoformat(),
            registration_number=facts.registration_number,
            registered_on=_iso(facts.registered_on),
            published_on=_iso(facts.published_on),
            in_force_on_stated=_iso(facts.in_force_on_stated),
            edition_of_rules=facts.edition_of_rules,
            clauses=sorted(facts.clauses, key=lambda c: int(c.lstrip("§"))),
            repeals=list(facts.repeals),
            meta=meta,
        )

    @property
    def facts(self) -> ActFacts:
        return ActFacts(
            act_id=self.act_id,
            title=self.title,
            number=self.number,
            adopted_on=dt.date.fromisoformat(self.adopted_on),
            registration_number=self.registration_number,
            registered_on=_date(self.registered_on),
            published_on=_date(self.published_on),
            in_force_on_stated=_date(self.in_force_on_stated),
            edition_of_rules=self.edition_of_rules,
            clauses=frozenset(self.clauses),
            repeals=tuple(self.repeals),
        )

    def _not_before_adoption(self, label: str, day: dt.date) -> None:
        if day < dt.date.fromisoformat(self.adopted_on):
            raise InvalidValue(
                f"the {label} of {self.title} ({day}) cannot precede its "
                f"adoption on {self.adopted_on}"
            )

    def enter_publication(
        self, published_on: dt.date, correction_reason: str | None, meta: dict[str, Any]
    ) -> None:
        self._not_before_adoption("first publication", published_on)
        if self.published_on is not None:
            if self.published_on == published_on.isoformat():
                raise InvalidTransition(
                    f"{self.title} is already recorded as first published on {published_on}"
                )
            if not correction_reason:
                raise InvalidTransition(
                    f"{self.title} is recorded as first published on {self.published_on}; "
                    "give correction_reason to correct it"
                )
        self._publication_entered(
            published_on=published_on.isoformat(),
            previous=self.published_on,
            correction_reason=correction_reason,
            meta=meta,
        )

    @event("PublicationEntered")
    def _publication_entered(
        self,
        published_on: str,
        previous: str | None,
        correction_reason: str | None,
        meta: dict[str, Any],
    ) -> None:
        self.published_on = published_on
        self.meta = meta

    def enter_state_registration(
        self, registration_number: str, registered_on: dt.date, meta: dict[str, Any]
    ) -> None:
        self._not_before_adoption("state registration", registered_on)
        if self.registration_number is not None and self.registered_on is not None:
            raise InvalidTransition(
                f"{self.title} is already registered under No. {self.registration_number} "
                f"on {self.registered_on}"
            )
        if self.registration_number not in (None, registration_number):
            raise InvalidTransition(
                f"{self.title} is registered under No. {self.registration_number}, "
                f"not {registration_number}"
            )
        self._state_registration_entered(
            registration_number=registration_number,
            registered_on=registered_on.isoformat(),
            meta=meta,
        )

    @event("StateRegistrationEntered")
    def _state_registration_entered(
        self, registration_number: str, registered_on: str, meta: dict[str, Any]
    ) -> None:
        self.registration_number = registration_number
        self.registered_on = registered_on
        self.meta = meta

    def repeal(self, by: LegalAct, meta: dict[str, Any]) -> None:
        """Records that `by` repeals this act; the repeal takes effect when `by` enters
        into force."""
        if by.act_id == self.act_id:
            raise InvalidValue(f"{self.title} cannot repeal itself")
        if self.repealed_by is not None:
            raise InvalidTransition(f"{self.title} is already repealed by {self.repealed_by}")
        if by.adopted_on < self.adopted_on:
            raise InvalidValue(
                f"{by.title} (adopted {by.adopted_on}) cannot repeal the later "
                f"{self.title} (adopted {self.adopted_on})"
            )
        self._repealed(repealed_by=by.act_id, meta=meta)

    @event("Repealed")
    def _repealed(self, repealed_by: str, meta: dict[str, Any]) -> None:
        self.repealed_by = repealed_by
        self.meta = meta


def registry_facts(acts: list[LegalAct]) -> list[ActFacts]:
    return fold_repeals(
        [a.facts for a in acts], {a.act_id: a.repealed_by for a in acts if a.repealed_by}
    )
