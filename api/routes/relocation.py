"""Relocation cases (§6): apply, approve (reserves places), refuse, withdraw, arrival."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request

from api.context import command_context
from api.routes.common import accepted, kosh_of
from api.schemas import CommandAccepted
from api.threads import run_in_threadpool
from domain.relocation_commands import (
    ApplyForRelocation,
    ApproveRelocation,
    RecordArrival,
    RefuseRelocation,
    WithdrawRelocation,
)
from projections.relocations import RelocationRegister

router = APIRouter(prefix="/relocations", tags=["relocation"])


@router.post("", status_code=201)
async def apply_for_relocation(cmd: ApplyForRelocation, request: Request) -> CommandAccepted:
    """A kandas or settler applies, with family members, for a designated territory."""
    ctx = command_context(request, cmd.effective_date)
    outcome = await run_in_threadpool(kosh_of(request).app.apply_for_relocation, cmd, ctx)
    return accepted(request, outcome)


@router.post("/{case_id}/approve")
async def approve_relocation(
    case_id: UUID, request: Request, cmd: ApproveRelocation | None = None
) -> CommandAccepted:
    """Reserves one place per person in the quota, all or none (§6)."""
    cmd = cmd or ApproveRelocation()
    ctx = command_context(request, cmd.effective_date)
    outcome = await run_in_threadpool(kosh_of(request).app.approve_relocation, case_id, cmd, ctx)
    return accepted(request, outcome)


@router.post("/{case_id}/refuse")
async def refuse_relocation(
    case_id: UUID, cmd: RefuseRelocation, request: Request
) -> CommandAccepted:
    ctx = command_context(request, cmd.effective_date)
    outcome = await run_in_threadpool(kosh_of(request).app.refuse_relocation, case_id, cmd, ctx)
    return accepted(request, outcome)


@router.post("/{case_id}/withdraw")
async def withdraw_relocation(
    case_id: UUID, request: Request, cmd: WithdrawRelocation | None = None
) -> CommandAccepted:
    cmd = cmd or WithdrawRelocation()
    ctx = command_context(request, cmd.effective_date)
    outcome = await run_in_threadpool(kosh_of(request).app.withdraw_relocation, case_id, cmd,
                                      ctx)
    return accepted(request, outcome)


@router.post("/{case_id}/arrival")
async def record_arrival(case_id: UUID, cmd: RecordArrival, request: Request) -> CommandAccepted:
    """The family arrived; each person is then registered (§9) at the address."""
    ctx = command_context(request, cmd.effective_date)
    outcome = await run_in_threadpool(kosh_of(request).app.record_arrival, case_id, cmd, ctx)
    return accepted(request, outcome)


@router.get("")
async def relocations(
    request: Request, status: str | None = None,
    limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=1_000_000_000),
) -> list[dict[str, Any]]:
    register = RelocationRegister(kosh_of(request).registers_db)
    return await run_in_threadpool(register.search, status, limit, offset)


@router.get("/{case_id}")
async def relocation(case_id: UUID, request: Request) -> dict[str, Any]:
    register = RelocationRegister(kosh_of(request).registers_db)
    row = await run_in_threadpool(register.get, str(case_id))
    if row is None:
        raise HTTPException(404, detail=f"no relocation case {case_id} in the register")
    return row
