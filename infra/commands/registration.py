"""Registration commands (§9 registration, §10 area norm).

A decision that touches a person's other registration or an address's occupants saves
every aggregate it changed in one atomic save; when another decision changed one of
them meanwhile, the store refuses the save and the decision is made again on fresh
state — so neither two permanent registrations of one person nor two occupants racing
for the last square metres can both stand.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import RecordConflictError

from domain.address import AddressOccupancy, address_id, area_norm_applies
from domain.commands import (
    ApproveRegistration,
    CorrectRegistration,
    Deregister,
    ExtendRegistration,
    RefuseRegistration,
    SubmitRegistration,
)
from domain.context import CommandContext
from domain.errors import DomainError, InvalidTransition, InvalidValue
from domain.housing import check_area_norm
from domain.person import Person, person_id
from domain.registration import DeregistrationReason, RegistrationCase
from infra.service_base import Outcome, ServiceBase

MAX_ATTEMPTS = 50


class RegistrationBusy(InvalidTransition):
    """Every retry met a concurrent change to the person or the address."""

    code = "registration_busy"


class _StaleRead(Exception):
    """Aggregates read at different moments disagree: another decision committed in
    between, and its save will make ours conflict anyway."""


class RegistrationCommands(ServiceBase):
    def submit_registration(self, cmd: SubmitRegistration, ctx: CommandContext) -> Outcome:
        on = ctx.effective_date
        basis = self.legal_acts.basis("§9", on)
        if cmd.valid_until is not None and cmd.valid_until <= on:
            raise InvalidValue(
                f"a temporary registration must end after it starts on {on}; "
                f"valid_until {cmd.valid_until} given"
            )
        person = cmd.person.model_dump(mode="json", exclude_none=True)
        address = cmd.address.model_dump(mode="json")
        housing = cmd.housing.model_dump(mode="json")
        if area_norm_applies(housing) and self.legal_acts.clause_in_force("§10", on):
            # Refused early when already too small; decided again at approval.
            occupancy = self._find(address_id(address), AddressOccupancy)
            counted = occupancy.occupants_after(str(person_id(person)), on) if occupancy else 1
            check_area_norm(
                cmd.housing.type,
                cmd.housing.useful_area_m2,
                max(counted, cmd.housing.occupants_after_registration or 0),
            )
        case = RegistrationCase(
            person=person,
            address=address,
            housing=housing,
            registration_kind=cmd.kind.value,
            valid_until=cmd.valid_until.isoformat() if cmd.valid_until else None,
            meta=ctx.meta(basis),
        )
        return self._save(case)

    def approve_registration(
        self, case_id: UUID, cmd: ApproveRegistration, ctx: CommandContext
    ) -> Outcome:
        on = ctx.effective_date
        basis = self.legal_acts.basis("§9", on)
        norm_in_force = self.legal_acts.clause_in_force("§10", on)
        meta = ctx.meta(basis)

        def decide() -> list[Any]:
            case: RegistrationCase = self._get(case_id, RegistrationCase)
            case.require_submitted("approve")  # a 409 beats a §10 refusal
            person = self._person(case.person, meta)
            person.require_alive("approve a registration")
            changed: list[Any] = [case]
            occupants = None
            occupancies: dict[UUID, AddressOccupancy] = {}
            if area_norm_applies(case.housing):
                occupancy = self._occupancy(address_id(case.address), meta, occupancies)
                occupants = occupancy.admit(
                    str(case.id),
                    str(person.id),
                    _date(case.valid_until),
                    case.housing,
                    on,
                    norm_in_force,
                    meta,
                )
            ends = person.register(str(case.id), case.registration_kind, meta)
            case.approve(meta=meta, occupants=occupants, ends=ends)
            if ends is not None:
                # §9: the new permanent registration ends the old one in this decision.
                old: RegistrationCase = self._get(UUID(ends), RegistrationCase)
                if old.status != "approved":
                    raise _StaleRead  # ended since the person was read: decide again
                old.end_superseded(str(case.id), meta)
                changed.append(old)
                if area_norm_applies(old.housing):
                    self._occupancy(address_id(old.address), meta, occupancies).release(
                        [str(old.id)], meta
                    )
            return [*changed, person, *occupancies.values()]

        return self._decide(decide, f"approval of registration case {case_id}")

    def refuse_registration(
        self, case_id: UUID, cmd: RefuseRegistration, ctx: CommandContext
    ) -> Outcome:
        case: RegistrationCase = self._get(case_id, RegistrationCase)
        basis = self.legal_acts.basis("§9", ctx.effective_date)
        case.refuse(reason=cmd.reason, meta=ctx.meta(basis))
        return self._save(case)

    def extend_registration(
        self, case_id: UUID, cmd: ExtendRegistration, ctx: CommandContext
    ) -> Outcome:
        meta = ctx.meta(self.legal_acts.basis("§9", ctx.effective_date))

        def decide() -> list[Any]:
            case: RegistrationCase = self._get(case_id, RegistrationCase)
            case.extend(cmd.valid_until, ctx.effective_date, meta)
            if not area_norm_applies(case.housing):
                return [case]
            occupancy = self._occupancy(address_id(case.address), meta, {})
            occupancy.extend(str(case.id), cmd.valid_until, meta)
            return [case, occupancy]

        return self._decide(decide, f"extension of registration case {case_id}")

    def deregister(self, case_id: UUID, cmd: Deregister, ctx: CommandContext) -> Outcome:
        """Ends the registration; a death ends every registration of the person, each
        with its own event, in one save."""
        on = ctx.effective_date
        meta = ctx.meta(self.legal_acts.basis("§9", on))

        def decide() -> list[Any]:
            case: RegistrationCase = self._get(case_id, RegistrationCase)
            case.deregister(cmd.reason, on, meta)
            person = self._person(case.person, meta)
            ending = [case]
            if cmd.reason is DeregistrationReason.DECEASED:
                for other_id in person.active:
                    other: RegistrationCase = self._get(UUID(other_id), RegistrationCase)
                    if other.id != case.id and other.active_on(on):
                        other.deregister(cmd.reason, on, meta)
                        ending.append(other)
            person.end([str(c.id) for c in ending], cmd.reason.value, on.isoformat(), meta)
            occupancies: dict[UUID, AddressOccupancy] = {}
            for ended in ending:
                if area_norm_applies(ended.housing):
                    self._occupancy(address_id(ended.address), meta, occupancies).release(
                        [str(ended.id)], meta
                    )
            return [*ending, person, *occupancies.values()]

        return self._decide(decide, f"deregistration of registration case {case_id}")

    def correct_registration(
        self, case_id: UUID, cmd: CorrectRegistration, ctx: CommandContext
    ) -> Outcome:
        case: RegistrationCase = self._get(case_id, RegistrationCase)
        basis = self.legal_acts.basis("§9", ctx.effective_date)
        case.correct(cmd.fields(), cmd.reason, meta=ctx.meta(basis))
        return self._save(case)

    # -- loading ---------------------------------------------------------------------
    def _find(self, aggregate_id: UUID, kind: type[Any]) -> Any:
        found = self._read_or_none(aggregate_id)
        return found if isinstance(found, kind) else None

    def _person(self, person: dict[str, Any], meta: dict[str, Any]) -> Person:
        pid = person_id(person)
        return self._find(pid, Person) or Person(id=pid, meta=meta)

    def _occupancy(
        self, aid: UUID, meta: dict[str, Any], loaded: dict[UUID, AddressOccupancy]
    ) -> AddressOccupancy:
        """One object per address within a decision, so an old and a new registration at
        the same address change the same aggregate."""
        if aid not in loaded:
            loaded[aid] = self._find(aid, AddressOccupancy) or AddressOccupancy(id=aid, meta=meta)
        return loaded[aid]

    def _decide(self, decide: Callable[[], Sequence[Any]], what: str) -> Outcome:
        """The first attempt borrows what this process saved last (see DecisionCache);
        a conflict, or a refusal met on borrowed state, is decided again on fresh reads."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            borrowing = attempt == 1
            self.decisions.lending = borrowing
            try:
                return self._save(*decide())
            except (RecordConflictError, _StaleRead):
                if not borrowing:
                    time.sleep(random.uniform(0, min(0.002 * attempt, 0.05)))
            except DomainError:
                if not (borrowing and self.decisions.borrowed):
                    raise
            finally:
                self.decisions.lending = False
        raise RegistrationBusy(f"{what} met {MAX_ATTEMPTS} concurrent changes in a row; try again")


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None
