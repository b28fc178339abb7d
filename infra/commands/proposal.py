"""Proposal commands (§5). An accepted proposal's consequence (a designation change or
a quota adjustment) is saved in the same atomic save as the acceptance, its events
caused by the acceptance id."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from uuid import UUID

from domain.context import CommandContext
from domain.errors import RuleViolation
from domain.proposal import (
    TERRITORY_KINDS,
    Proposal,
    ProposalKind,
    check_regional_period,
    require_authorised_body,
)
from domain.proposal_commands import (
    AcceptProposal,
    DeclineProposal,
    DraftProposal,
    SubmitProposal,
)
from domain.quota import Quota
from domain.territory import TerritoryDesignation
from infra.commands.quota import QuotaCommands
from infra.service_base import Outcome


class ProposalCommands(QuotaCommands):
    def draft_proposal(self, cmd: DraftProposal, ctx: CommandContext) -> Outcome:
        basis = self.legal_acts.basis("§5", ctx.effective_date)
        target: dict[str, Any] = {"territory": cmd.territory.value}
        if cmd.kind in TERRITORY_KINDS:
            target["categories"] = [c.value for c in cmd.categories or ()]
        else:
            assert cmd.quota_kind and cmd.period and cmd.change_by
            check_regional_period(cmd.quota_kind.value, cmd.period, ctx.effective_date)
            quota = self.require_quota(cmd.quota_kind.value, cmd.territory.value, cmd.period,
                                       "§5")
            target.update(quota_id=str(quota.id), quota_kind=cmd.quota_kind.value,
                          period=cmd.period, change_by=cmd.change_by)
        # A dry run on today's state refuses early what acceptance would refuse.
        self._consequence(cmd.kind.value, target, "draft", ctx.effective_date, {})
        proposal = Proposal(kind=cmd.kind.value, target=target, rationale=cmd.rationale,
                            meta=ctx.meta(basis))
        return self._save(proposal)

    def submit_proposal(self, proposal_id: UUID, cmd: SubmitProposal,
                        ctx: CommandContext) -> Outcome:
        basis = self.legal_acts.basis("§5", ctx.effective_date)
        proposal: Proposal = self._get(proposal_id, Proposal)
        proposal.submit(meta=ctx.meta(basis))
        return self._save(proposal)

    def accept_proposal(self, proposal_id: UUID, cmd: AcceptProposal,
                        ctx: CommandContext) -> Outcome:
        require_authorised_body(ctx.actor, "accept a proposal")
        basis = self.legal_acts.basis("§5", ctx.effective_date)

        def decide() -> tuple[Any, ...]:
            proposal: Proposal = self._get(proposal_id, Proposal)
            accepted_as = proposal.accept(cmd.reasons, meta=ctx.meta(basis))
            caused = dataclasses.replace(ctx, causation_id=accepted_as).meta(basis)
            changed = self._consequence(proposal.kind, proposal.target, str(proposal.id),
                                        ctx.effective_date, caused)
            return proposal, changed

        return self._save_retrying(decide, f"acceptance of proposal {proposal_id}")

    def decline_proposal(self, proposal_id: UUID, cmd: DeclineProposal,
                         ctx: CommandContext) -> Outcome:
        require_authorised_body(ctx.actor, "decline a proposal")
        basis = self.legal_acts.basis("§5", ctx.effective_date)
        proposal: Proposal = self._get(proposal_id, Proposal)
        proposal.decline(cmd.reasons, meta=ctx.meta(basis))
        return self._save(proposal)

    def _consequence(self, kind: str, target: dict[str, Any], proposal_id: str,
                     on: dt.date, meta: dict[str, Any]) -> Any:
        """The aggregate the proposal changes, changed (not saved)."""
        if kind in TERRITORY_KINDS:
            territory = target["territory"]
            designation = self.find_designation(territory) or TerritoryDesignation(
                territory=territory, meta=meta
            )
            for category in target["categories"]:
                designation.change(category, kind == ProposalKind.INCLUDE_TERRITORY, on,
                                   proposal_id, meta)
            return designation
        quota: Quota = self._get(UUID(target["quota_id"]), Quota)
        by = int(target["change_by"])
        if kind == ProposalKind.LOWER_QUOTA and by > quota.limit:
            raise RuleViolation(
                "§5", f"the {quota.label} cannot be lowered by {by}: its limit is {quota.limit}"
            )
        new_limit = quota.limit + by if kind == ProposalKind.RAISE_QUOTA else quota.limit - by
        quota.adjust(new_limit, proposal_id, meta)
        return quota
