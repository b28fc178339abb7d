"""Territory designations (§5, §6), as of today or any past date."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request

from api.routes.common import kosh_of
from api.threads import run_in_threadpool
from domain.territory import Territory
from projections.territories import TerritoryRegister

router = APIRouter(prefix="/territories", tags=["territories"])


@router.get("")
async def territories(request: Request, on: dt.date | None = None) -> list[dict[str, Any]]:
    """Whether each territory is open for settling kandases / settlers on `on`."""
    register = TerritoryRegister(kosh_of(request).registers_db)
    return await run_in_threadpool(register.as_of, on or dt.date.today())


@router.get("/{territory}")
async def territory(territory: Territory, request: Request,
                    on: dt.date | None = None) -> dict[str, Any]:
    register = TerritoryRegister(kosh_of(request).registers_db)

    def read() -> dict[str, Any]:
        (state,) = register.as_of(on or dt.date.today(), territory.value)
        return {**state, "history": register.history(territory.value)}

    return await run_in_threadpool(read)
