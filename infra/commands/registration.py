"""Registration commands (§9 registration, §10 area norm)."""

from __future__ import annotations

from uuid import UUID

from domain.commands import ApproveRegistration, RefuseRegistration, SubmitRegistration
from domain.context import CommandContext
from domain.housing import check_area_norm
from domain.registration import RegistrationCase
from infra.service_base import Outcome, ServiceBase


class RegistrationCommands(ServiceBase):
    def submit_registration(self, cmd: SubmitRegistration, ctx: CommandContext) -> Outcome:
        basis = self.legal_acts.basis("§9", ctx.effective_date)
        housing = cmd.housing
        check_area_norm(housing.type, housing.useful_area_m2, housing.occupants_after_registration)
        case = RegistrationCase(
            person=cmd.person.model_dump(mode="json"),
            address=cmd.address.model_dump(mode="json"),
            housing=housing.model_dump(mode="json"),
            registration_kind=cmd.kind.value,
            valid_until=cmd.valid_until.isoformat() if cmd.valid_until else None,
            meta=ctx.meta(basis),
        )
        return self._save(case)

    def approve_registration(
        self, case_id: UUID, cmd: ApproveRegistration, ctx: CommandContext
    ) -> Outcome:
        case: RegistrationCase = self._get(case_id, RegistrationCase)
        basis = self.legal_acts.basis("§9", ctx.effective_date)
        h = case.housing
        # Checked again at the decision: the Rules in force on its date apply.
        check_area_norm(h["type"], h["useful_area_m2"], h["occupants_after_registration"])
        case.approve(meta=ctx.meta(basis))
        return self._save(case)

    def refuse_registration(
        self, case_id: UUID, cmd: RefuseRegistration, ctx: CommandContext
    ) -> Outcome:
        case: RegistrationCase = self._get(case_id, RegistrationCase)
        basis = self.legal_acts.basis("§9", ctx.effective_date)
        case.refuse(reason=cmd.reason, meta=ctx.meta(basis))
        return self._save(case)
