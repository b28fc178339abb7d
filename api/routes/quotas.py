"""Quotas (§3, §6): established by the authorised body; the ledger register."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Request

from api.context import command_context
from api.routes.common import accepted, kosh_of
from api.schemas import CommandAccepted
from api.threads import run_in_threadpool
from domain.quota import QuotaKind
from domain.quota_commands import EstablishQuota
from domain.territory import Territory
from projections.quotas import QuotaLedger

router = APIRouter(prefix="/quotas", tags=["quotas"])


@router.post("", status_code=201)
async def establish_quota(cmd: EstablishQuota, request: Request) -> CommandAccepted:
    """The authorised body sets a quota's limit once; changes go through §5 proposals."""
    ctx = command_context(request, cmd.effective_date)
    outcome = await run_in_threadpool(kosh_of(request).app.establish_quota, cmd, ctx)
    return accepted(request, outcome)


@router.get("")
async def quotas(
    request: Request, kind: QuotaKind | None = None, territory: Territory | None = None,
    period: str | None = None,
) -> list[dict[str, Any]]:
    """The ledger: limit, reserved and remaining places per quota."""
    ledger = QuotaLedger(kosh_of(request).registers_db)
    return await run_in_threadpool(
        ledger.search, kind.value if kind else None, territory.value if territory else None,
        period,
    )


@router.get("/{quota_id}")
async def quota(quota_id: UUID, request: Request) -> dict[str, Any]:
    row = await run_in_threadpool(QuotaLedger(kosh_of(request).registers_db).get, str(quota_id))
    if row is None:
        raise HTTPException(404, detail=f"no quota {quota_id} in the ledger")
    return row
