"""Monitoring inputs (§7): the natural-growth figure a period's migration is judged by."""

from __future__ import annotations

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import RecordConflictError

from domain.context import CommandContext
from domain.errors import InvalidTransition
from domain.natural_growth import NaturalGrowthFigure, RecordNaturalGrowth
from infra.service_base import Outcome, ServiceBase


class MonitoringCommands(ServiceBase):
    def record_natural_growth(self, cmd: RecordNaturalGrowth, ctx: CommandContext) -> Outcome:
        """Enters the figure for a period, or revises the one entered before."""
        basis = self.legal_acts.basis("§7", ctx.effective_date)
        meta = ctx.meta(basis)
        try:
            figure: NaturalGrowthFigure = self.repository.get(
                NaturalGrowthFigure.create_id(cmd.period))
        except AggregateNotFoundError:
            figure = NaturalGrowthFigure(period=cmd.period, natural_growth=cmd.natural_growth,
                                         source=cmd.source, meta=meta)
        else:
            figure.revise(cmd.natural_growth, cmd.source, meta)
        try:
            return self._save(figure)
        except RecordConflictError:
            raise InvalidTransition(
                f"the natural-growth figure for {cmd.period} was changed at the same time; "
                "read it again and resubmit"
            ) from None
