"""Relocation commands (§6): apply, approve (reserve), refuse / withdraw (release),
arrival; and the steps the relocation process manager records after arrival."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.context import CommandContext
from domain.errors import RuleViolation
from domain.housing import check_area_norm
from domain.quota import Quota
from domain.relocation import RelocationCase, require_period_open
from domain.relocation_commands import (
    ApplyForRelocation,
    ApproveRelocation,
    RecordArrival,
    RefuseRelocation,
    WithdrawRelocation,
)
from domain.territory import require_open
from infra.commands.quota import QuotaCommands
from infra.service_base import Outcome


class RelocationCommands(QuotaCommands):
    def apply_for_relocation(self, cmd: ApplyForRelocation, ctx: CommandContext) -> Outcome:
        basis = self.legal_acts.basis("§6", ctx.effective_date)
        require_period_open(cmd.period, ctx.effective_date)
        territory, category = cmd.territory.value, cmd.category.value
        require_open(self.find_designation(territory), territory, category, ctx.effective_date)
        quota = self.require_quota(category, territory, cmd.period, "§6")
        case = RelocationCase(
            category=category,
            applicant=cmd.applicant.model_dump(mode="json"),
            family_members=[m.model_dump(mode="json") for m in cmd.family_members],
            territory=territory,
            period=cmd.period,
            quota_id=str(quota.id),
            meta=ctx.meta(basis),
        )
        return self._save(case)

    def approve_relocation(
        self, case_id: UUID, cmd: ApproveRelocation, ctx: CommandContext
    ) -> Outcome:
        basis = self.legal_acts.basis("§6", ctx.effective_date)

        def decide() -> tuple[RelocationCase, Quota]:
            case: RelocationCase = self._get(case_id, RelocationCase)
            case.approve(meta=ctx.meta(basis))  # state check first: a 409 beats a quota 422
            require_period_open(case.period, ctx.effective_date)
            # §6: the designation must still hold on the date of the decision.
            require_open(self.find_designation(case.territory), case.territory, case.category,
                         ctx.effective_date)
            quota: Quota = self._get(UUID(case.quota_id), Quota)
            quota.reserve(str(case.id), case.places, meta=ctx.meta(basis))
            return case, quota

        return self._save_retrying(decide, f"approval of relocation case {case_id}")

    def refuse_relocation(
        self, case_id: UUID, cmd: RefuseRelocation, ctx: CommandContext
    ) -> Outcome:
        basis = self.legal_acts.basis("§6", ctx.effective_date)
        return self._end_case(case_id, f"refusal of relocation case {case_id}",
                              lambda case: case.refuse(cmd.reason, meta=ctx.meta(basis)),
                              ctx.meta(basis))

    def withdraw_relocation(
        self, case_id: UUID, cmd: WithdrawRelocation, ctx: CommandContext
    ) -> Outcome:
        basis = self.legal_acts.basis("§6", ctx.effective_date)
        return self._end_case(case_id, f"withdrawal of relocation case {case_id}",
                              lambda case: case.withdraw(cmd.reason, meta=ctx.meta(basis)),
                              ctx.meta(basis))

    def _end_case(self, case_id: UUID, what: str, end: Any, meta: dict[str, Any]) -> Outcome:
        """Refusal or withdrawal; an approved case's places go back to the quota in the
        same atomic save."""

        def decide() -> tuple[Any, ...]:
            case: RelocationCase = self._get(case_id, RelocationCase)
            held = case.holds_places
            end(case)
            if not held:
                return (case,)
            quota: Quota = self._get(UUID(case.quota_id), Quota)
            quota.release(str(case.id), meta=meta)
            return case, quota

        return self._save_retrying(decide, what)

    def record_arrival(self, case_id: UUID, cmd: RecordArrival, ctx: CommandContext) -> Outcome:
        basis = self.legal_acts.basis("§6", ctx.effective_date)
        case: RelocationCase = self._get(case_id, RelocationCase)
        housing = cmd.housing
        if housing.occupants_after_registration < case.places:
            raise RuleViolation(
                "§10",
                f"{case.places} persons arrive, so at least {case.places} occupants are "
                f"registered at the address; {housing.occupants_after_registration} given",
            )
        # §10 is checked now, so the family's registrations cannot fail on it later.
        check_area_norm(housing.type, housing.useful_area_m2,
                        housing.occupants_after_registration)
        case.arrive(address=cmd.address.model_dump(mode="json"),
                    housing=housing.model_dump(mode="json"), meta=ctx.meta(basis))
        return self._save(case)

    def relocation_case(self, case_id: UUID) -> RelocationCase:
        case: RelocationCase = self._get(case_id, RelocationCase)
        return case

    def record_member_registration(
        self, case_id: UUID, member: str, registration_case_id: UUID, ctx: CommandContext
    ) -> Outcome:
        basis = self.legal_acts.basis("§9", ctx.effective_date)
        case = self.relocation_case(case_id)
        case.record_registration(member, str(registration_case_id), meta=ctx.meta(basis))
        return self._save(case)

    def record_member_not_registered(
        self, case_id: UUID, member: str, reason: str, ctx: CommandContext
    ) -> Outcome:
        basis = self.legal_acts.basis("§9", ctx.effective_date)
        case = self.relocation_case(case_id)
        case.record_registration_failure(member, reason, meta=ctx.meta(basis))
        return self._save(case)
