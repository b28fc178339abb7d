"""What every command handler mixin of the application service stands on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.persistence import Notification, Recording

from domain.errors import CaseNotFound
from domain.legal_acts import LegalActRegistry
from infra.batching import CommandBatcher
from infra.decision_cache import DecisionCache
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
        sealer = getattr(self.mapper, "sealer", None)
        self.batcher = CommandBatcher(self.recorder, keys=sealer.keys if sealer else None)
        self.decisions = DecisionCache()

    def close(self) -> None:
        self.batcher.close()
        super().close()

    def _record(self, processing_event: ProcessingEvent[Any]) -> list[Recording[Any]]:
        """The library's `_record` (for its own `save`), through group commit."""
        if processing_event.tracking is not None or processing_event.saved_kwargs:
            return super()._record(processing_event)
        events = processing_event.events
        stored, ids = self._insert(processing_event)
        return [
            Recording(
                d,
                Notification(
                    id=n,
                    originator_id=s.originator_id,
                    originator_version=s.originator_version,
                    topic=s.topic,
                    state=s.state,
                ),
            )
            for d, s, n in zip(events, stored, ids, strict=True)
        ]

    def _insert(self, processing: ProcessingEvent[Any]) -> tuple[list[Any], list[int]]:
        stored, ids = self.batcher.insert(processing.events, self.mapper.to_stored_event)
        if self.repository.cache and not self.repository.fastforward:
            for aggregate_id, aggregate in processing.aggregates.items():
                self.repository.cache.put(aggregate_id, aggregate)
        return stored, ids

    def _save(self, *aggregates: Any) -> Outcome:
        """Saves atomically; the first aggregate is the case the caller is told about.

        The library's `save`, less its runtime Protocol checks of each object (a tenth
        of a command's CPU) and the Recording objects it builds for `_notify`, a hook
        nothing in Kosh implements: Kosh saves only its own aggregates."""
        processing: ProcessingEvent[Any] = ProcessingEvent()
        for aggregate in aggregates:
            processing.events.extend(aggregate.collect_events())
            processing.aggregates[aggregate.id] = aggregate
        _, ids = self._insert(processing)
        self._take_snapshots(processing)
        self.decisions.keep(aggregates)
        return Outcome(aggregates[0].id, tuple(ids))

    def _borrowed(self, aggregate_id: UUID) -> Any | None:
        return self.decisions.borrow(aggregate_id) if self.decisions.lending else None

    def _read(self, aggregate_id: UUID) -> Any:
        """Borrowed from the decision cache inside a decision, else from the store."""
        return self._borrowed(aggregate_id) or self.repository.get(aggregate_id)

    def _read_or_none(self, aggregate_id: UUID) -> Any | None:
        """As `_read`, with None for an aggregate that has no events."""
        if (found := self._borrowed(aggregate_id)) is not None:
            return found
        get_or_none = getattr(self.repository, "get_or_none", None)
        if get_or_none is not None:
            return get_or_none(aggregate_id)
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def _get(self, case_id: UUID, kind: type[Any]) -> Any:
        try:
            case = self._read(case_id)
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
