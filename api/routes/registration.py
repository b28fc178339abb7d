"""Registration cases (§9, §10): submit, approve or refuse; then extend (temporary),
deregister, correct."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request

from api.context import command_context
from api.routes.common import accepted, kosh_of
from api.schemas import CommandAccepted
from api.threads import run_in_threadpool
from domain.commands import (
    ApproveRegistration,
    CorrectRegistration,
    Deregister,
    ExtendRegistration,
    RefuseRegistration,
    SubmitRegistration,
)

router = APIRouter(prefix="/registrations", tags=["registration"])


@router.post("", status_code=201)
async def submit_registration(cmd: SubmitRegistration, request: Request) -> CommandAccepted:
    """Apply for registration at a place of residence (§9): a citizen by IIN, a foreigner
    or stateless person by document; permanent, or temporary until `valid_until`."""
    ctx = command_context(request, cmd.effective_date)
    outcome = await run_in_threadpool(kosh_of(request).app.submit_registration, cmd, ctx)
    return accepted(request, outcome)


@router.post("/{case_id}/approve")
async def approve_registration(
    case_id: UUID, request: Request, cmd: ApproveRegistration | None = None
) -> CommandAccepted:
    """Registers the person; §10 counts everyone registered at the address after this
    decision; a permanent registration ends the person's previous one."""
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


@router.post("/{case_id}/extend")
async def extend_registration(
    case_id: UUID, cmd: ExtendRegistration, request: Request
) -> CommandAccepted:
    """A running temporary registration gets a later end date."""
    ctx = command_context(request, cmd.effective_date)
    outcome = await run_in_threadpool(kosh_of(request).app.extend_registration, case_id, cmd, ctx)
    return accepted(request, outcome)


@router.post("/{case_id}/deregister")
async def deregister(case_id: UUID, cmd: Deregister, request: Request) -> CommandAccepted:
    """Ends the registration: moved_out, left_country or deceased."""
    ctx = command_context(request, cmd.effective_date)
    outcome = await run_in_threadpool(kosh_of(request).app.deregister, case_id, cmd, ctx)
    return accepted(request, outcome)


@router.post("/{case_id}/corrections")
async def correct_registration(
    case_id: UUID, cmd: CorrectRegistration, request: Request
) -> CommandAccepted:
    """An erratum: a new event supersedes the named fields; the history keeps both."""
    ctx = command_context(request, cmd.effective_date)
    outcome = await run_in_threadpool(kosh_of(request).app.correct_registration, case_id, cmd, ctx)
    return accepted(request, outcome)
