"""For auditors: every register as it stood on a past date, and a case's full timeline."""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any, cast
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from fastapi import APIRouter, HTTPException, Query, Request

from api.bootstrap import Kosh, all_projections, store_database
from api.routes.cases import history_entry
from api.routes.common import kosh_of
from api.threads import run_in_threadpool
from domain.errors import CaseNotFound
from infra.sql import Database
from projections.as_of import AsOfRegisters, AsOfView, Cutoff
from projections.replay import StoreReader, columns_of, table_names

router = APIRouter(tags=["auditors"])
_RESERVED = {"date", "recorded_before", "table", "limit", "offset"}
_lock = threading.Lock()
_DATE = Query(None, description="effective date: decisions in effect by then (inclusive)")
_RECORDED = Query(None, description="recorded time: events the store held then (inclusive; "
                                    "UTC if no zone)")


def as_of_registers(request: Request) -> AsOfRegisters:
    """One cache of past registers per running API."""
    state = request.app.state
    with _lock:
        if getattr(state, "as_of", None) is None:
            kosh = kosh_of(request)
            state.as_of = AsOfRegisters(
                StoreReader(kosh.app.recorder, kosh.app.mapper), all_projections,
                kosh.settings.data_dir / "as-of",
            )
        return state.as_of


def cutoff_of(date: dt.date | None, recorded_before: dt.datetime | None) -> Cutoff:
    if (date is None) == (recorded_before is None):
        raise HTTPException(422, detail="give either date=YYYY-MM-DD (by effective date) "
                                         "or recorded_before=ISO-datetime (by recorded time)")
    return Cutoff(effective_on=date, recorded_at=recorded_before)


@router.get("/as-of")
async def registers_as_of(request: Request) -> dict[str, list[str]]:
    """The registers that can be read as of a past date."""
    return {"registers": as_of_registers(request).names()}


@router.get("/as-of/{register}")
async def register_as_of(
    register: str,
    request: Request,
    date: dt.date | None = _DATE,
    recorded_before: dt.datetime | None = _RECORDED,
    table: str | None = Query(None, description="one table of the register; all by default"),
    limit: int = Query(1000, ge=1, le=10_000),
    offset: int = Query(0, ge=0),
) -> dict[str, Any]:
    """A register as it stood at the cut-off, rebuilt from the store with the register's
    own projection code. Any other query parameter filters rows by the column it names
    (district=Medeu)."""
    registers = as_of_registers(request)
    if register not in registers.names():
        raise HTTPException(404, detail=f"no register named {register}; "
                                        f"registers: {', '.join(registers.names())}")
    cutoff = cutoff_of(date, recorded_before)
    filters = {k: v for k, v in request.query_params.items() if k not in _RESERVED}
    view = await run_in_threadpool(registers.open, [register], cutoff)
    return await run_in_threadpool(_read, view, register, table, filters, limit, offset)


def _read(view: AsOfView, register: str, table: str | None, filters: dict[str, str],
          limit: int, offset: int) -> dict[str, Any]:
    projection = next(p for p in all_projections() if p.name == register)
    tables = table_names(projection)
    if table is not None and table not in tables:
        raise HTTPException(422, detail=f"register {register} has no table {table}; "
                                        f"tables: {', '.join(tables)}")
    chosen = [table] if table else tables
    columns = {t: columns_of(view.db, t) for t in chosen}
    unknown = [f for f in filters if not any(f in cols for cols in columns.values())]
    if unknown:
        raise HTTPException(422, detail=f"cannot filter {register} by {', '.join(unknown)}; "
                                        "filter by a column of its tables")
    out: dict[str, Any] = {}
    for t in chosen:
        if any(f not in columns[t] for f in filters):
            continue
        out[t] = _rows(view.db, t, columns[t], filters, limit, offset)
    return {
        "register": register,
        "as_of": view.cutoff.as_dict(),
        "store_head": view.store_head,
        "events_applied": view.result.applied,
        "events_not_applicable": [{"seq": s, "error": e}
                                  for s, e in sorted(view.result.skipped.items())],
        "tables": out,
    }


def _rows(db: Database, table: str, columns: list[str], filters: dict[str, str], limit: int,
          offset: int) -> dict[str, Any]:
    where = " AND ".join(f"CAST({c} AS TEXT) = ?" for c in filters) or "1 = 1"
    params = list(filters.values())
    total = db.query(f"SELECT COUNT(*) FROM {table} WHERE {where}", params)[0][0]
    rows = db.query(f"SELECT * FROM {table} WHERE {where} ORDER BY 1 LIMIT ? OFFSET ?",
                    [*params, limit, offset])
    return {"columns": columns, "total": int(total),
            "rows": [dict(zip(columns, r, strict=True)) for r in rows]}


# -- case timeline ---------------------------------------------------------------------
@router.get("/cases/{case_id}/timeline")
async def case_timeline(case_id: UUID, request: Request) -> dict[str, Any]:
    """Every event of the case in store order, with its store sequence number, actor,
    legal act and clause, correlation and causation ids; and the events of other
    aggregates that the same commands caused (same correlation id)."""
    return await run_in_threadpool(timeline, kosh_of(request), case_id)


def timeline(kosh: Kosh, case_id: UUID) -> dict[str, Any]:
    db = store_database(kosh.settings)
    pg = db.is_postgres
    seq_col = "notification_id" if pg else "rowid"
    table = cast(Any, kosh.app.recorder).events_table_name  # both stores' recorders have it
    rows = db.query(
        f"SELECT {seq_col}, originator_id, originator_version, topic, state FROM {table} "
        "WHERE originator_id = ? ORDER BY originator_version",
        (case_id if pg else case_id.hex,),
    )
    if not rows:
        raise CaseNotFound(f"no case {case_id}")
    events = [_entry(kosh, r) for r in rows]
    correlations = sorted({e["correlation_id"] for e in events if e["correlation_id"]})
    related: dict[int, dict[str, Any]] = {}
    for correlation in correlations:
        needle = f'"correlation_id":{json.dumps(correlation, ensure_ascii=False)}'.encode()
        found = db.query(
            f"SELECT {seq_col}, originator_id, originator_version, topic, state "
            f"FROM {table} WHERE " + ("position(? in state) > 0" if pg
                                         else "instr(state, ?) > 0"),
            (needle,),
        )
        for r in found:
            entry = _entry(kosh, r)
            if entry["aggregate_id"] != str(case_id) and entry["correlation_id"] == correlation:
                related[entry["seq"]] = entry
    return {"case_id": str(case_id), "events": events,
            "caused_elsewhere": [related[s] for s in sorted(related)]}


def _entry(kosh: Kosh, row: tuple[Any, ...]) -> dict[str, Any]:
    seq, originator_id, version, topic, state = row
    stored = StoredEvent(originator_id=UUID(str(originator_id)),
                         originator_version=int(version), topic=topic, state=bytes(state))
    event = kosh.app.mapper.to_domain_event(stored)
    entry = history_entry(event).model_dump()
    legal = entry.get("legal_basis") or {}
    return {"seq": int(seq), "aggregate_id": str(event.originator_id), **entry,
            "legal_act": legal.get("act_id"), "legal_act_title": legal.get("act"),
            "clause": legal.get("clause")}
