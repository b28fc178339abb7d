"""§11: the akimat exercises other powers the law gives it — new case types are added as
their own aggregate, command model, handler and register, without changing the core:
the registers ignore events they do not know, and the command registry dispatches any
case type by name to its handler."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from api.bootstrap import all_projections
from domain.commands import Command
from domain.context import Actor, CommandContext
from infra.command_registry import CommandType, on_case, on_new_case
from infra.service_base import Outcome
from infra.sql import Database
from projections.projector import Delivered, Projector

CTX = CommandContext(
    Actor("akimat-1", "akimat_planner", "akimat"), dt.date(2025, 6, 1), "corr", "cause"
)


class LabourFairPermit(Aggregate):
    """A case type the Rules do not name, under §11."""

    @event("Issued")
    def __init__(self, district: str, meta: dict[str, Any]) -> None:
        self.district = district
        self.meta = meta


class IssuePermit(Command):
    district: str


class PermitCommands:
    def __init__(self) -> None:
        self.issued: list[LabourFairPermit] = []

    def issue_permit(self, cmd: IssuePermit, ctx: CommandContext) -> Outcome:
        permit = LabourFairPermit(district=cmd.district, meta={"effective_date": "2025-06-01"})
        self.issued.append(permit)
        return Outcome(permit.id, (1,))

    def revoke_permit(self, case_id: UUID, cmd: IssuePermit, ctx: CommandContext) -> Outcome:
        return Outcome(case_id, (2,))


def test_s11_a_new_case_type_dispatches_by_name_through_the_command_registry() -> None:
    app = PermitCommands()
    issue = CommandType(IssuePermit, on_new_case("issue_permit"))
    outcome = issue.handle(app, IssuePermit(district="Medeu"), CTX, None)
    assert outcome.case_id == app.issued[0].id and not issue.targets_case
    revoke = CommandType(IssuePermit, on_case("revoke_permit"))
    assert revoke.targets_case
    assert revoke.handle(app, IssuePermit(district="Medeu"), CTX, outcome.case_id) == Outcome(
        outcome.case_id, (2,)
    )


def test_s11_every_register_takes_a_new_case_types_events_without_changing() -> None:
    db = Database(None, Path(":memory:"))
    projector = Projector(db, all_projections())
    tables = [r[0] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")]
    before = {t: db.query(f"SELECT * FROM {t}") for t in tables}
    (issued,) = LabourFairPermit(district="Medeu", meta={}).collect_events()
    assert projector.apply_batch([Delivered(1, issued)]) == len(all_projections())
    after = {
        t: db.query(f"SELECT * FROM {t}")
        for t in tables
        if t not in ("projection_applied", "projection_status")
    }
    assert after == {t: rows for t, rows in before.items() if t in after}
