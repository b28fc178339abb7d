"""HTTP response shapes (request bodies are the domain's command models)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel


class CommandAccepted(BaseModel):
    case_id: UUID
    sequence_numbers: list[int]
    correlation_id: str


class HistoryEntry(BaseModel):
    version: int
    type: str
    recorded_at: str
    effective_date: str | None
    actor: dict[str, Any] | None
    legal_basis: dict[str, Any] | None
    correlation_id: str | None
    causation_id: str | None
    data: dict[str, Any]


class CaseHistory(BaseModel):
    case_id: UUID
    events: list[HistoryEntry]


class Resident(BaseModel):
    iin: str | None
    family_name: str
    given_name: str
    district: str
    address_line: str
    housing_type: str
    registration_kind: str
    valid_until: str | None
    case_id: str
    registered_on: str
