"""Current registers (projections), read by internal services and auditors."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from api.routes.common import kosh_of
from api.schemas import Resident
from domain.commands import District

router = APIRouter(tags=["registers"])


@router.get("/residents/{iin}")
async def resident(iin: str, request: Request) -> Resident:
    row = await run_in_threadpool(kosh_of(request).residents.by_iin, iin)
    if row is None:
        raise HTTPException(404, detail=f"no resident registered with IIN {iin}")
    return Resident(**row)


@router.get("/residents")
async def residents_by_district(
    request: Request,
    district: District,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> list[Resident]:
    rows = await run_in_threadpool(
        kosh_of(request).residents.by_district, district.value, limit, offset
    )
    return [Resident(**r) for r in rows]
