"""Who decided, when, under which act: the metadata every event carries."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from domain.legal_acts import LegalBasis


@dataclass(frozen=True)
class Actor:
    actor_id: str
    role: str
    organisation: str

    def as_dict(self) -> dict[str, str]:
        return {"id": self.actor_id, "role": self.role, "organisation": self.organisation}


@dataclass(frozen=True)
class CommandContext:
    """What the caller of a command supplies besides its payload."""

    actor: Actor
    effective_date: dt.date
    correlation_id: str
    causation_id: str

    def meta(self, basis: LegalBasis) -> dict[str, Any]:
        """The event metadata; plain JSON types so the stored bytes are self-describing."""
        return {
            "actor": self.actor.as_dict(),
            "effective_date": self.effective_date.isoformat(),
            "legal_basis": basis.as_dict(),
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
        }
