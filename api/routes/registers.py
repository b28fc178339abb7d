"""Current registers (projections), read by internal services and auditors."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel

from api.routes.common import kosh_of
from api.threads import run_in_threadpool
from domain.commands import District
from domain.person import normalised_document

router = APIRouter(tags=["registers"])


class ResidentRegistration(BaseModel):
    """One registration in the residents register. `status`: active, expired (a temporary
    registration past `valid_until`) or ended (`end_reason`: moved_out, left_country,
    deceased, or superseded by a new permanent registration)."""

    case_id: str
    person_kind: str
    iin: str | None
    document_type: str | None
    document_number: str | None
    family_name: str
    given_name: str
    patronymic: str | None
    birth_date: str | None
    district: str
    address_line: str
    housing_type: str
    registration_kind: str
    valid_until: str | None
    status: str
    end_reason: str | None
    ended_on: str | None
    registered_on: str
    corrected_fields: list[str]


@router.get("/residents/{iin}")
async def resident(iin: str, request: Request) -> ResidentRegistration:
    """The person's current registration: the permanent one, else the newest running
    temporary one."""
    row = await run_in_threadpool(kosh_of(request).residents.by_iin, iin)
    if row is None:
        raise HTTPException(404, detail=f"no resident registered with IIN {iin}")
    return ResidentRegistration(**row)


@router.get("/residents/{iin}/registrations")
async def registrations_of_resident(iin: str, request: Request) -> list[ResidentRegistration]:
    """Every registration of the person, ended ones included."""
    rows = await run_in_threadpool(kosh_of(request).residents.registrations_of_iin, iin)
    return [ResidentRegistration(**r) for r in rows]


@router.get("/residents/by-document/{document_type}/{document_number}")
async def registrations_by_document(
    document_type: str, document_number: str, request: Request
) -> list[ResidentRegistration]:
    """A foreigner's or stateless person's registrations, by identity document."""
    kind, number = normalised_document(document_type, document_number)
    rows = await run_in_threadpool(kosh_of(request).residents.by_document, kind, number)
    return [ResidentRegistration(**r) for r in rows]


@router.get("/residents")
async def residents_by_district(
    request: Request,
    district: District,
    status: Literal["active", "expired", "ended", "all"] = "active",
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000_000),
) -> list[ResidentRegistration]:
    rows = await run_in_threadpool(
        kosh_of(request).residents.by_district, district.value, limit, offset, status
    )
    return [ResidentRegistration(**r) for r in rows]
