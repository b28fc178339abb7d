"""What every command handler mixin of the application service stands on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain.errors import CaseNotFound
from domain.legal_acts import LegalActRegistry
from infra.eventstore import EventStoreApplication
from infra.settings import Settings


@dataclass(frozen=True)
class Outcome:
    """What a command produced: the case, and each new event's store sequence number."""

    case_id: UUID
    sequence_numbers: tuple[int, ...]


class ServiceBase(EventStoreApplication):
    def __init__(self, settings: Settings, legal_acts: LegalActRegistry | None = None) -> None:
        super().__init__(settings)
        self.legal_acts = legal_acts or LegalActRegistry()

    def _save(self, *aggregates: Any) -> Outcome:
        """Saves atomically; the first aggregate is the case the caller is told about."""
        recordings = self.save(*aggregates)
        return Outcome(aggregates[0].id, tuple(r.notification.id for r in recordings))

    def _get(self, case_id: UUID, kind: type[Any]) -> Any:
        try:
            case = self.repository.get(case_id)
        except AggregateNotFoundError:
            raise CaseNotFound(f"no case {case_id}") from None
        if not isinstance(case, kind):
            raise CaseNotFound(f"case {case_id} is not a {kind.__name__}")
        return case

    def case_history(self, case_id: UUID) -> list[Any]:
        events = list(self.events.get(case_id))
        if not events:
            raise CaseNotFound(f"no case {case_id}")
        return events
