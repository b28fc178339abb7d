"""Natural-growth figures (§7): births minus deaths of the city for a period, as entered
by the statistics office. The monitoring register compares a period's net migration
outflow with it; an outflow beyond natural growth calls for the §7 measures."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from pydantic import AfterValidator, Field

from domain.commands import Command
from domain.errors import InvalidValue
from domain.ids import uuid5

_NAMESPACE = uuid.UUID("0c7b6f7e-2f55-4f0e-8a51-6e6174677277")
_PERIOD = re.compile(r"^(\d{4})(?:-(0[1-9]|1[0-2]))?$")


def check_period(raw: str) -> str:
    """A year (2024) or a month (2024-03): the periods monitoring counts flows by."""
    if not _PERIOD.match(raw):
        raise InvalidValue(f"period {raw!r} must be a year (2024) or a month (2024-03)")
    return raw


Period = Annotated[str, Field(min_length=4, max_length=7), AfterValidator(check_period)]


class RecordNaturalGrowth(Command):
    period: Period
    natural_growth: Annotated[
        int, Field(ge=-10_000_000, le=10_000_000, description="births minus deaths")
    ]
    source: Annotated[str, Field(min_length=1, max_length=200,
                                 description="where the figure comes from")]


class NaturalGrowthFigure(Aggregate):
    """One per period; a corrected figure is a new event, never an edit."""

    @staticmethod
    def create_id(period: str) -> UUID:
        return uuid5(_NAMESPACE, f"natural-growth/{period}")

    @event("Recorded")
    def __init__(self, period: str, natural_growth: int, source: str,
                 meta: dict[str, Any]) -> None:
        self.period = period
        self.natural_growth = natural_growth
        self.source = source
        self.meta = meta

    def revise(self, natural_growth: int, source: str, meta: dict[str, Any]) -> None:
        self._revised(period=self.period, natural_growth=natural_growth,
                      previous=self.natural_growth, source=source, meta=meta)

    @event("Revised")
    def _revised(self, period: str, natural_growth: int, previous: int, source: str,
                 meta: dict[str, Any]) -> None:
        self.natural_growth = natural_growth
        self.source = source
        self.meta = meta
