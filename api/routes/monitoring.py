"""Monitoring of migration (§4, §7, §8): flows, residents by age band, §7 signals; live,
or as of a past date (by effective date or recorded time)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Query, Request

from api.context import command_context
from api.routes.auditor import as_of_registers, cutoff_of
from api.routes.common import accepted, kosh_of
from api.schemas import CommandAccepted
from api.threads import run_in_threadpool
from domain.commands import District
from domain.natural_growth import RecordNaturalGrowth
from projections.monitoring import CATEGORIES, NAME, MonitoringRegister

router = APIRouter(prefix="/monitoring", tags=["monitoring"])
_DATE = Query(None, description="read the register as of this effective date")
_RECORDED = Query(None, description="read the register as recorded at this time")


async def _register(request: Request, date: dt.date | None,
                    recorded: dt.datetime | None) -> MonitoringRegister:
    if date is None and recorded is None:
        return MonitoringRegister(kosh_of(request).registers_db)
    view = await run_in_threadpool(as_of_registers(request).open, [NAME],
                                   cutoff_of(date, recorded))
    return MonitoringRegister(view.db)


@router.post("/natural-growth", status_code=201)
async def record_natural_growth(cmd: RecordNaturalGrowth, request: Request) -> CommandAccepted:
    """Enters (or revises) a period's natural growth, which §7 compares outflow with."""
    ctx = command_context(request, cmd.effective_date)
    outcome = await run_in_threadpool(kosh_of(request).app.record_natural_growth, cmd, ctx)
    return accepted(request, outcome)


@router.get("/flows")
async def flows(
    request: Request,
    district: District | None = None,
    month: str | None = Query(None, pattern=r"^\d{4}(-(0[1-9]|1[0-2]))?$",
                              description="2024-03, or 2024 for the whole year"),
    category: str | None = Query(None, description=", ".join(CATEGORIES)),
    date: dt.date | None = _DATE,
    recorded_before: dt.datetime | None = _RECORDED,
) -> list[dict[str, Any]]:
    """§4: arrivals, departures and net migration by district, month and category."""
    register = await _register(request, date, recorded_before)
    return await run_in_threadpool(
        register.flows, district.value if district else None, month, category
    )


@router.get("/age-bands")
async def age_bands(
    request: Request,
    district: District | None = None,
    date: dt.date | None = _DATE,
    recorded_before: dt.datetime | None = _RECORDED,
) -> list[dict[str, Any]]:
    """§8: residents by district and age band (age on `date`, today by default)."""
    register = await _register(request, date, recorded_before)
    on = date or (recorded_before.date() if recorded_before else dt.date.today())
    return await run_in_threadpool(register.age_bands, on, district.value if district else None)


@router.get("/signals")
async def signals(
    request: Request,
    date: dt.date | None = _DATE,
    recorded_before: dt.datetime | None = _RECORDED,
) -> dict[str, Any]:
    """§7: periods whose net outflow exceeds their natural growth (and every period
    with a figure, evaluated)."""
    register = await _register(request, date, recorded_before)
    periods = await run_in_threadpool(register.periods)
    return {"signals": [p for p in periods if p["signal"]], "periods": periods}
