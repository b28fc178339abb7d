"""The legal-act registry: which acts exist and which are in force on a date, and the
commands that record an act, its first publication, its state registration, its repeal."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request

from api.context import command_context
from api.routes.common import accepted, kosh_of
from api.schemas import CommandAccepted
from api.threads import run_in_threadpool
from domain.legal_act_commands import (
    EnterPublication,
    EnterStateRegistration,
    RegisterLegalAct,
    RepealLegalAct,
)
from projections.legal_acts import LegalActsRegister

router = APIRouter(prefix="/legal-acts", tags=["legal acts"])
AsOf = Query(None, description="the date to judge 'in force' on; today when omitted")


@router.get("")
async def legal_acts(request: Request, as_of: dt.date | None = AsOf) -> dict[str, Any]:
    """Every act of the registry, whether each is in force on `as_of`, and the edition of
    the Rules then in force (or why none is)."""
    register = LegalActsRegister(kosh_of(request).registers_db)
    return await run_in_threadpool(register.as_of, as_of or dt.date.today())


@router.get("/{act_id}")
async def legal_act(act_id: str, request: Request, as_of: dt.date | None = AsOf) -> dict[str, Any]:
    register = LegalActsRegister(kosh_of(request).registers_db)
    found = await run_in_threadpool(register.act, act_id, as_of or dt.date.today())
    if found is None:
        raise HTTPException(404, detail=f"no legal act {act_id} in the register")
    return found


@router.post("", status_code=201)
async def register_legal_act(cmd: RegisterLegalAct, request: Request) -> CommandAccepted:
    ctx = command_context(request, cmd.effective_date)
    outcome = await run_in_threadpool(kosh_of(request).app.register_legal_act, cmd, ctx)
    return accepted(request, outcome)


@router.post("/{act_id}/publication")
async def enter_publication(
    act_id: str, cmd: EnterPublication, request: Request
) -> CommandAccepted:
    """The first official publication; the act enters into force 10 calendar days later
    unless it states its own date."""
    ctx = command_context(request, cmd.effective_date)
    outcome = await run_in_threadpool(
        kosh_of(request).app.enter_legal_act_publication, act_id, cmd, ctx
    )
    return accepted(request, outcome)


@router.post("/{act_id}/state-registration")
async def enter_state_registration(
    act_id: str, cmd: EnterStateRegistration, request: Request
) -> CommandAccepted:
    ctx = command_context(request, cmd.effective_date)
    outcome = await run_in_threadpool(
        kosh_of(request).app.enter_legal_act_state_registration, act_id, cmd, ctx
    )
    return accepted(request, outcome)


@router.post("/{act_id}/repeal")
async def repeal_legal_act(act_id: str, cmd: RepealLegalAct, request: Request) -> CommandAccepted:
    """Records that `repealed_by` repeals this act, from the day `repealed_by` enters
    into force."""
    ctx = command_context(request, cmd.effective_date)
    outcome = await run_in_threadpool(kosh_of(request).app.repeal_legal_act, act_id, cmd, ctx)
    return accepted(request, outcome)
