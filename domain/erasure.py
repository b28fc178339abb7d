"""Erasure of a data subject's personal data when the law requires it.

The erasure is itself an event, with its legal basis; the subject appears only by its
pseudonymous id, so the record of the erasure holds no personal data."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any

from eventsourcing.domain import Aggregate, event

from domain.ids import uuid5
from domain.person import identity_key

_NAMESPACE = uuid.UUID("0f3e1d2c-7b6a-4e59-8d4c-3b2a1f0e9d8c")
_SUBJECTS = uuid.UUID("5b0c5d3e-6f7a-4c1e-9a57-6b6f73682d31")

# Fields that identify or describe a person: sealed in stored events, blanked on erasure.
PERSONAL_FIELDS = frozenset({
    "iin", "family_name", "given_name", "patronymic", "document_number", "birth_date", "line",
})
ERASED = "[erased]"


@functools.lru_cache(maxsize=65536)  # every sealed field asks again; uuid5 is a SHA-1
def subject_id_of(iin: str | None = None, document_type: str | None = None,
                  document_number: str | None = None) -> str:
    """Stable pseudonymous id of a data subject (what `kosh erase` takes after lookup)."""
    if not (iin or document_number):
        raise ValueError("a data subject needs an IIN or a document number")
    # The register's own identity key, so a document written two ways is one subject.
    key = identity_key({"iin": iin, "document_type": document_type or "",
                        "document_number": document_number})
    return str(uuid5(_SUBJECTS, key))


def subject_of(person: dict[str, Any]) -> str | None:
    if person.get("iin") or person.get("document_number"):
        return subject_id_of(person.get("iin"), person.get("document_type"),
                             person.get("document_number"))
    return None


def erased_value(field: str, subject: str) -> str | None:
    """What a personal field reads as once its subject's key is gone."""
    if field in ("iin", "document_number"):
        return f"erased:{subject}"  # still unique, so registers keep one row per subject
    if field == "birth_date":
        return None
    return ERASED


def replace_personal(value: Any, replacement: Callable[[str], Any]) -> Any:
    """`value` with every non-null personal field, at any depth, replaced by
    `replacement(field name)`."""
    if isinstance(value, list):
        return [replace_personal(v, replacement) for v in value]
    if isinstance(value, dict):
        return {k: (replacement(k) if k in PERSONAL_FIELDS and v is not None
                    else replace_personal(v, replacement)) for k, v in value.items()}
    return value


def erased_copy(value: Any, subject: str) -> Any:
    """`value` with every personal field as it reads after erasure."""
    return replace_personal(value, lambda field: erased_value(field, subject))


class Erasure(Aggregate):
    @staticmethod
    def create_id(subject_id: str) -> uuid.UUID:
        # One erasure per subject: a second request conflicts instead of repeating.
        return uuid5(_NAMESPACE, subject_id)

    @event("Recorded")
    def __init__(self, subject_id: str, legal_basis: str, meta: dict[str, Any]) -> None:
        self.subject_id = subject_id
        self.legal_basis = legal_basis
        self.meta = meta
