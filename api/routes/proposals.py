"""Proposals (§5): the akimat drafts and submits; the authorised body accepts or declines."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request

from api.context import command_context
from api.routes.common import accepted, kosh_of
from api.schemas import CommandAccepted
from api.threads import run_in_threadpool
from domain.proposal_commands import (
    AcceptProposal,
    DeclineProposal,
    DraftProposal,
    SubmitProposal,
)
from projections.proposals import ProposalRegister

router = APIRouter(prefix="/proposals", tags=["proposals"])


@router.post("", status_code=201)
async def draft_proposal(cmd: DraftProposal, request: Request) -> CommandAccepted:
    ctx = command_context(request, cmd.effective_date)
    outcome = await run_in_threadpool(kosh_of(request).app.draft_proposal, cmd, ctx)
    return accepted(request, outcome)


@router.post("/{proposal_id}/submit")
async def submit_proposal(
    proposal_id: UUID, request: Request, cmd: SubmitProposal | None = None
) -> CommandAccepted:
    cmd = cmd or SubmitProposal()
    ctx = command_context(request, cmd.effective_date)
    outcome = await run_in_threadpool(kosh_of(request).app.submit_proposal, proposal_id, cmd,
                                      ctx)
    return accepted(request, outcome)


@router.post("/{proposal_id}/accept")
async def accept_proposal(
    proposal_id: UUID, request: Request, cmd: AcceptProposal | None = None
) -> CommandAccepted:
    """The authorised body accepts: the designation or quota changes in the same save."""
    cmd = cmd or AcceptProposal()
    ctx = command_context(request, cmd.effective_date)
    outcome = await run_in_threadpool(kosh_of(request).app.accept_proposal, proposal_id, cmd,
                                      ctx)
    return accepted(request, outcome)


@router.post("/{proposal_id}/decline")
async def decline_proposal(
    proposal_id: UUID, cmd: DeclineProposal, request: Request
) -> CommandAccepted:
    ctx = command_context(request, cmd.effective_date)
    outcome = await run_in_threadpool(kosh_of(request).app.decline_proposal, proposal_id, cmd,
                                      ctx)
    return accepted(request, outcome)


@router.get("")
async def proposals(
    request: Request, status: str | None = None,
    limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=1_000_000_000),
) -> list[dict[str, Any]]:
    register = ProposalRegister(kosh_of(request).registers_db)
    return await run_in_threadpool(register.search, status, limit, offset)


@router.get("/{proposal_id}")
async def proposal(proposal_id: UUID, request: Request) -> dict[str, Any]:
    row = await run_in_threadpool(ProposalRegister(kosh_of(request).registers_db).get,
                                  str(proposal_id))
    if row is None:
        raise HTTPException(404, detail=f"no proposal {proposal_id} in the register")
    return row
