"""Erasure of a data subject's personal data (data protection officer only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from api.context import command_context
from api.routes.common import accepted, kosh_of
from api.schemas import CommandAccepted
from api.threads import run_in_threadpool

router = APIRouter(prefix="/data-subjects", tags=["data protection"])


class EraseSubject(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: Annotated[str, Field(min_length=1, max_length=100,
                                  description="IIN, or document_type:number")]
    legal_basis: Annotated[str, Field(min_length=3, max_length=500,
                                      description="the law and article requiring erasure")]


@router.post("/erasures", status_code=201)
async def erase_subject(cmd: EraseSubject, request: Request) -> CommandAccepted:
    """Deletes the subject's key: their events stay, their personal fields become
    unreadable, and the erasure is recorded with its legal basis."""
    ctx = command_context(request, None)
    outcome = await run_in_threadpool(
        kosh_of(request).app.erase_subject, cmd.subject, cmd.legal_basis, ctx
    )
    return accepted(request, outcome)
