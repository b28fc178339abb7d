"""Registration cases (§9, §10)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.context import command_context
from api.routes.common import accepted, kosh_of
from api.schemas import CommandAccepted
from domain.commands import ApproveRegistration, RefuseRegistration, SubmitRegistration

router = APIRouter(prefix="/registrations", tags=["registration"])


@router.post("", status_code=201)
async def submit_registration(cmd: SubmitRegistration, request: Request) -> CommandAccepted:
    """Apply for registration at a place of residence (§9); §10 is checked."""
    ctx = command_context(request, cmd.effective_date)
    outcome = await run_in_threadpool(kosh_of(request).app.submit_registration, cmd, ctx)
    return accepted(request, outcome)


@router.post("/{case_id}/approve")
async def approve_registration(
    case_id: UUID, request: Request, cmd: ApproveRegistration | None = None
) -> CommandAccepted:
    cmd = cmd or ApproveRegistration()
    ctx = command_context(request, cmd.effective_date)
    outcome = await run_in_threadpool(kosh_of(request).app.approve_registration, case_id, cmd, ctx)
    return accepted(request, outcome)


@router.post("/{case_id}/refuse")
async def refuse_registration(
    case_id: UUID, cmd: RefuseRegistration, request: Request
) -> CommandAccepted:
    ctx = command_context(request, cmd.effective_date)
    outcome = await run_in_threadpool(kosh_of(request).app.refuse_registration, case_id, cmd, ctx)
    return accepted(request, outcome)
