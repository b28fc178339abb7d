"""Quotas (§3, §5, §6): one per (kind, territory, period). Invariant: reserved ≤ limit.

The aggregate checks the invariant on its own state; the store's optimistic concurrency
(one version per event) makes the check hold across processes: a reservation computed
on a stale quota fails to save and is retried on the fresh one.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidTransition, InvalidValue, RuleViolation
from domain.ids import uuid5
from domain.territory import KOSH_NAMESPACE, Territory

MAX_LIMIT = 10_000_000
MEDIUM_TERM_MAX_YEARS = 5
_PERIOD = re.compile(r"^(\d{4})(?:-(\d{4}))?$")


class QuotaKind(StrEnum):
    """§3.2, §3.3 regional quotas, and the §5 foreign-labour quota."""

    KANDAS = "kandas"
    SETTLER = "settler"
    FOREIGN_LABOUR = "foreign_labour"


@dataclass(frozen=True)
class QuotaPeriod:
    """A year ("2026") or a medium-term range ("2026-2028", at most five years)."""

    start: int
    end: int

    @classmethod
    def parse(cls, raw: str) -> QuotaPeriod:
        match = _PERIOD.match(raw.strip()) if isinstance(raw, str) else None
        if match is None:
            raise InvalidValue(
                f"quota period must be a year (2026) or a range of years (2026-2028), got {raw!r}"
            )
        start = int(match.group(1))
        end = int(match.group(2) or start)
        if not 2000 <= start <= 2100 or not 2000 <= end <= 2100:
            raise InvalidValue(f"quota period {raw!r} must lie within 2000-2100")
        if match.group(2) is not None and end <= start:
            raise InvalidValue(f"quota period {raw!r} must end after it starts")
        if end - start + 1 > MEDIUM_TERM_MAX_YEARS:
            raise InvalidValue(
                f"quota period {raw!r} spans {end - start + 1} years; a medium term is at most "
                f"{MEDIUM_TERM_MAX_YEARS}"
            )
        return cls(start, end)

    @property
    def is_year(self) -> bool:
        return self.start == self.end

    @property
    def last_day(self) -> dt.date:
        return dt.date(self.end, 12, 31)

    def __str__(self) -> str:
        return str(self.start) if self.is_year else f"{self.start}-{self.end}"


def quota_id(kind: str, territory: str, period: str) -> UUID:
    key = f"quota/{QuotaKind(kind).value}/{Territory(territory).value}/{QuotaPeriod.parse(period)}"
    return uuid5(KOSH_NAMESPACE, key)


def quota_label(kind: str, territory: str, period: str) -> str:
    return f"{kind} quota for {territory} {period}"


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_LIMIT:
        raise InvalidValue(f"a quota limit is a whole number 0..{MAX_LIMIT}, got {limit!r}")


class Quota(Aggregate):
    @staticmethod
    def create_id(kind: str, territory: str, period: str) -> UUID:
        return quota_id(kind, territory, period)

    @event("Established")
    def __init__(
        self, kind: str, territory: str, period: str, limit: int, meta: dict[str, Any]
    ) -> None:
        _check_limit(limit)
        self.kind = kind
        self.territory = territory
        self.period = period
        self.limit = limit
        self.reservations: dict[str, int] = {}
        self.meta = meta

    @property
    def label(self) -> str:
        return quota_label(self.kind, self.territory, self.period)

    @property
    def reserved(self) -> int:
        return sum(self.reservations.values())

    @property
    def remaining(self) -> int:
        return self.limit - self.reserved

    def reserve(self, case_id: str, count: int, meta: dict[str, Any]) -> None:
        """§6: all places of a case or none; never beyond the limit."""
        if count < 1:
            raise InvalidValue(f"a reservation is for at least one place, got {count}")
        if case_id in self.reservations:
            raise InvalidTransition(
                f"case {case_id} already holds {self.reservations[case_id]} place(s) in the "
                f"{self.label}"
            )
        if count > self.remaining:
            raise RuleViolation(
                "§6",
                f"the {self.label} has {self.remaining} place(s) remaining of {self.limit}; "
                f"{count} requested",
            )
        self._places_reserved(case_id=case_id, count=count, meta=meta)

    @event("PlacesReserved")
    def _places_reserved(self, case_id: str, count: int, meta: dict[str, Any]) -> None:
        self.reservations = {**self.reservations, case_id: count}
        self.meta = meta

    def release(self, case_id: str, meta: dict[str, Any]) -> None:
        if case_id not in self.reservations:
            raise InvalidTransition(f"case {case_id} holds no places in the {self.label}")
        self._places_released(case_id=case_id, count=self.reservations[case_id], meta=meta)

    @event("PlacesReleased")
    def _places_released(self, case_id: str, count: int, meta: dict[str, Any]) -> None:
        self.reservations = {k: v for k, v in self.reservations.items() if k != case_id}
        self.meta = meta

    def check_adjustment(self, new_limit: int) -> None:
        """§5: a quota lowered below the places already reserved would break §6."""
        _check_limit(new_limit)
        if new_limit == self.limit:
            raise RuleViolation("§5", f"the {self.label} already has the limit {new_limit}")
        if new_limit < self.reserved:
            raise RuleViolation(
                "§5",
                f"the {self.label} cannot be lowered to {new_limit}: {self.reserved} place(s) "
                f"are already reserved",
            )

    def adjust(self, new_limit: int, proposal_id: str, meta: dict[str, Any]) -> None:
        self.check_adjustment(new_limit)
        self._adjusted(new_limit=new_limit, delta=new_limit - self.limit,
                       proposal_id=proposal_id, meta=meta)

    @event("Adjusted")
    def _adjusted(self, new_limit: int, delta: int, proposal_id: str,
                  meta: dict[str, Any]) -> None:
        self.limit = new_limit
        self.meta = meta


class QuotaBusy(InvalidTransition):
    """Every retry met a concurrent change to the quota; the caller may simply retry."""

    code = "quota_busy"
