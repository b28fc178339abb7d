"""Erasure of a data subject's personal data when the law requires it.

The erasure is itself an event, with its legal basis; the subject appears only by its
pseudonymous id, so the record of the erasure holds no personal data."""

from __future__ import annotations

import uuid
from typing import Any

from eventsourcing.domain import Aggregate, event

_NAMESPACE = uuid.UUID("0f3e1d2c-7b6a-4e59-8d4c-3b2a1f0e9d8c")


class Erasure(Aggregate):
    @staticmethod
    def create_id(subject_id: str) -> uuid.UUID:
        # One erasure per subject: a second request conflicts instead of repeating.
        return uuid.uuid5(_NAMESPACE, subject_id)

    @event("Recorded")
    def __init__(self, subject_id: str, legal_basis: str, meta: dict[str, Any]) -> None:
        self.subject_id = subject_id
        self.legal_basis = legal_basis
        self.meta = meta
