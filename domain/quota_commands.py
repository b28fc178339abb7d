"""Quota commands (§3, §6). §2: a quota is a number of places, never a profile."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from domain.commands import Command
from domain.quota import MAX_LIMIT, QuotaKind, QuotaPeriod
from domain.territory import Territory


def _valid_period(value: str) -> str:
    return str(QuotaPeriod.parse(value))


PeriodStr = Annotated[
    str,
    Field(min_length=4, max_length=9, description="a year (2026) or a range (2026-2028)"),
    AfterValidator(_valid_period),
]


class EstablishQuota(Command):
    """The authorised body sets a quota once; later changes go through §5 proposals."""

    kind: QuotaKind
    territory: Territory
    period: PeriodStr
    limit: Annotated[int, Field(ge=0, le=MAX_LIMIT)]
