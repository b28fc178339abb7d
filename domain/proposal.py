"""Proposals (§5): the akimat proposes to the authorised body to include or exclude
the city's territory for settling kandases and settlers, to raise or lower the
foreign-labour quota, or to raise or lower the regional quotas for the medium term or
the coming year. Drafted → submitted → accepted / declined by the authorised body.

An accepted proposal takes effect through the target aggregate's own events
(TerritoryDesignation.Included/Excluded, Quota.Adjusted) whose causation id is the
proposal's acceptance id, saved atomically with the acceptance.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.context import Actor
from domain.errors import InvalidTransition, RuleViolation
from domain.ids import uuid5, uuid7
from domain.quota import QuotaKind, QuotaPeriod
from domain.territory import KOSH_NAMESPACE

AUTHORISED_BODY = "authorised_body"


class ProposalKind(StrEnum):
    INCLUDE_TERRITORY = "include_territory"
    EXCLUDE_TERRITORY = "exclude_territory"
    RAISE_QUOTA = "raise_quota"
    LOWER_QUOTA = "lower_quota"


TERRITORY_KINDS = frozenset({ProposalKind.INCLUDE_TERRITORY, ProposalKind.EXCLUDE_TERRITORY})


def require_authorised_body(actor: Actor, action: str) -> None:
    """§5: proposals are decided, and quotas set, by the authorised body for migration."""
    if actor.role != AUTHORISED_BODY:
        raise RuleViolation(
            "§5",
            f"only the authorised body (role {AUTHORISED_BODY}) may {action}; "
            f"the acting role is {actor.role}",
        )


def check_regional_period(quota_kind: str, period: str, on: dt.date) -> None:
    """§5: regional (kandas / settler) quotas are changed for the medium term or the
    coming year; the foreign-labour quota has no such restriction in the Rules."""
    if QuotaKind(quota_kind) is QuotaKind.FOREIGN_LABOUR:
        return
    parsed = QuotaPeriod.parse(period)
    coming = on.year + 1
    if parsed.is_year and parsed.start != coming:
        raise RuleViolation(
            "§5",
            f"a regional {quota_kind} quota is changed for the coming year ({coming}) or the "
            f"medium term (a range of years); {period} is neither on {on.isoformat()}",
        )
    if not parsed.is_year and parsed.start < coming:
        raise RuleViolation(
            "§5",
            f"a medium-term regional quota change must start no earlier than the coming "
            f"year ({coming}); {period} starts in {parsed.start}",
        )


def acceptance_id(proposal_id: UUID) -> str:
    """The causation id of everything an accepted proposal changes."""
    return str(uuid5(KOSH_NAMESPACE, f"proposal/{proposal_id}/accepted"))


class Proposal(Aggregate):
    create_id = staticmethod(uuid7)  # creation order: see domain.ids

    @event("Drafted")
    def __init__(
        self, kind: str, target: dict[str, Any], rationale: str, meta: dict[str, Any]
    ) -> None:
        self.kind = kind
        self.target = target
        self.rationale = rationale
        self.status = "drafted"
        self.reasons: str | None = None
        self.acceptance_id: str | None = None
        self.meta = meta

    def _require_status(self, allowed: str, action: str) -> None:
        if self.status != allowed:
            raise InvalidTransition(f"proposal {self.id} is {self.status}; cannot {action} it")

    def submit(self, meta: dict[str, Any]) -> None:
        self._require_status("drafted", "submit")
        self._submitted(meta=meta)

    @event("Submitted")
    def _submitted(self, meta: dict[str, Any]) -> None:
        self.status = "submitted"
        self.meta = meta

    def accept(self, reasons: str | None, meta: dict[str, Any]) -> str:
        """Returns the acceptance id the consequences cite as their causation."""
        self._require_status("submitted", "accept")
        accepted_as = acceptance_id(self.id)
        self._accepted(acceptance_id=accepted_as, reasons=reasons, meta=meta)
        return accepted_as

    @event("Accepted")
    def _accepted(self, acceptance_id: str, reasons: str | None, meta: dict[str, Any]) -> None:
        self.status = "accepted"
        self.acceptance_id = acceptance_id
        self.reasons = reasons
        self.meta = meta

    def decline(self, reasons: str, meta: dict[str, Any]) -> None:
        self._require_status("submitted", "decline")
        if not reasons.strip():
            raise RuleViolation("§5", "a declined proposal must state the reasons")
        self._declined(reasons=reasons, meta=meta)

    @event("Declined")
    def _declined(self, reasons: str, meta: dict[str, Any]) -> None:
        self.status = "declined"
        self.reasons = reasons
        self.meta = meta
