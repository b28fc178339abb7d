"""Case histories, straight from the event store (the system of record)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request

from api.routes.common import kosh_of
from api.schemas import CaseHistory, HistoryEntry
from api.threads import run_in_threadpool
from infra.publisher import event_type

router = APIRouter(prefix="/cases", tags=["cases"])
_NOT_DATA = {"meta", "originator_id", "originator_version", "timestamp", "originator_topic"}


def history_entry(e: Any) -> HistoryEntry:
    meta = getattr(e, "meta", None) or {}
    return HistoryEntry(
        version=e.originator_version,
        type=event_type(type(e).__qualname__),
        recorded_at=e.timestamp.isoformat(),
        effective_date=meta.get("effective_date"),
        actor=meta.get("actor"),
        legal_basis=meta.get("legal_basis"),
        correlation_id=meta.get("correlation_id"),
        causation_id=meta.get("causation_id"),
        data={k: v for k, v in e.__dict__.items() if k not in _NOT_DATA},
    )


@router.get("/{case_id}/history")
async def case_history(case_id: UUID, request: Request) -> CaseHistory:
    """Every event of a case with type, time, actor, legal basis and correlation id."""
    events = await run_in_threadpool(kosh_of(request).app.case_history, case_id)
    return CaseHistory(case_id=case_id, events=[history_entry(e) for e in events])
