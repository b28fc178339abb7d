"""Quota commands (§3, §6), and the optimistic-concurrency retry every command that
changes a quota goes through: reservations from several processes race on the quota's
version; the loser reloads and decides again on the fresh state."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import RecordConflictError

from domain.context import CommandContext
from domain.errors import InvalidTransition, RuleViolation
from domain.proposal import require_authorised_body
from domain.quota import Quota, QuotaBusy, quota_id, quota_label
from domain.quota_commands import EstablishQuota
from domain.territory import TerritoryDesignation, designation_id
from infra.service_base import Outcome, ServiceBase

MAX_ATTEMPTS = 200


class QuotaCommands(ServiceBase):
    def establish_quota(self, cmd: EstablishQuota, ctx: CommandContext) -> Outcome:
        require_authorised_body(ctx.actor, "establish a quota")
        basis = self.legal_acts.basis("§3", ctx.effective_date)
        existing = self.find_quota(quota_id(cmd.kind, cmd.territory, cmd.period))
        if existing is not None:
            raise self._already_established(existing)
        quota = Quota(kind=cmd.kind.value, territory=cmd.territory.value, period=cmd.period,
                      limit=cmd.limit, meta=ctx.meta(basis))
        try:
            return self._save(quota)
        except RecordConflictError:
            # Established by a concurrent request between our read and our save.
            raise self._already_established(self._get(quota.id, Quota)) from None

    @staticmethod
    def _already_established(quota: Quota) -> InvalidTransition:
        return InvalidTransition(
            f"the {quota.label} is already established with limit {quota.limit}; "
            "change it through a §5 proposal"
        )

    def find_quota(self, qid: UUID) -> Quota | None:
        try:
            quota: Any = self.repository.get(qid)
        except AggregateNotFoundError:
            return None
        return quota if isinstance(quota, Quota) else None

    def require_quota(self, kind: str, territory: str, period: str, clause: str) -> Quota:
        quota = self.find_quota(quota_id(kind, territory, period))
        if quota is None:
            raise RuleViolation(
                clause, f"no {quota_label(kind, territory, period)} has been established"
            )
        return quota

    def find_designation(self, territory: str) -> TerritoryDesignation | None:
        try:
            found: Any = self.repository.get(designation_id(territory))
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, TerritoryDesignation) else None

    def _save_retrying(self, decide: Callable[[], Sequence[Any]], what: str) -> Outcome:
        """Runs `decide` (load, check, change) and saves what it returns atomically; on a
        version conflict the whole decision is made again on reloaded aggregates."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            aggregates = decide()
            try:
                return self._save(*aggregates)
            except RecordConflictError:
                time.sleep(random.uniform(0, min(0.002 * attempt, 0.05)))
        raise QuotaBusy(f"{what} met {MAX_ATTEMPTS} concurrent changes in a row; try again")
