"""A projection that cannot apply an event parks it and keeps going, instead of retrying the
same batch forever; a transient failure (database locked or away, broker away) parks
nothing: the batch fails, is redelivered, and nothing is skipped.

A parked event is recorded beside the register (projection_parked: projection, sequence
number, event type, exception class), counted in metrics, logged, and sent once to the
dead-letter topic with headers saying where it came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from eventsourcing.persistence import Mapper

from consumers.dead_letters import DeadLetter, DeadLetterSink, ParkedEvents, is_transient
from infra import metrics
from infra.publisher import event_type
from infra.settings import Settings
from projections.projector import Delivered, Projector

log = structlog.get_logger(__name__)


class ParkingProjector:
    def __init__(self, projector: Projector, settings: Settings, group: str) -> None:
        self.projector = projector
        self.group = group
        self.parked = ParkedEvents(projector.db)
        # One projector per projection, to find which one fails on an event.
        self.singles = {p.name: Projector(projector.db, [p]) for p in projector.projections}
        self.dead_letters = DeadLetterSink(settings, projector.db, f"kosh-{group}-dlq")

    def apply(self, records: Sequence[Any], decode: Any, mapper: Mapper[Any]) -> int:
        batch: list[tuple[Delivered, Any]] = []
        for record in records:
            try:
                batch.append((decode(record, mapper), record))
            except Exception as exc:  # noqa: BLE001 - a record no projection can read
                if is_transient(exc):
                    # Decoding reads the data subjects' keys from the store: a database
                    # away is no reason to drop the event.
                    raise
                self._dead_letter(record, "undecodable", type(exc).__name__, self.group)
        # Partitions interleave freely; store order makes registers that read across
        # aggregates (a move ends one registration and approves another) come out as a
        # rebuild from the store would.
        batch.sort(key=lambda item: item[0].seq)
        try:
            return self.projector.apply_batch([d for d, _ in batch])
        except Exception as exc:
            if is_transient(exc):
                raise
            log.error("projection.batch_rejected", error=type(exc).__name__,
                      events=len(batch), action="applying one event at a time")
        return sum(self._apply_one(d, record) for d, record in batch)

    def _apply_one(self, d: Delivered, record: Any) -> int:
        applied = 0
        for name, single in self.singles.items():
            try:
                applied += single.apply_batch([d])
            except Exception as exc:
                if is_transient(exc):
                    raise
                self._park(name, d, record, exc)
            else:
                self.parked.unpark(name, d.seq)
        return applied

    def _park(self, name: str, d: Delivered, record: Any, exc: Exception) -> None:
        kind = _event_type(d.event)
        if not self.parked.park(name, d.seq, kind, exc):
            return
        metrics.PARKED.labels(name).inc()
        log.error("projection.event_parked", projection=name, seq=d.seq, event_type=kind,
                  error=type(exc).__name__)
        self._dead_letter(record, "projection_failed", type(exc).__name__, f"projection:{name}",
                          [("kosh-seq", str(d.seq).encode()),
                           ("kosh-event-type", kind.encode())])

    def _dead_letter(self, record: Any, reason: str, detail: str, stage: str,
                     extra: list[tuple[str, bytes]] | None = None) -> None:
        self.dead_letters.send(DeadLetter(
            stage=stage, reason=reason, detail=detail, topic=record.topic,
            partition=record.partition, offset=record.offset, key=record.key,
            value=record.value, extra_headers=extra or [],
        ), record=reason != "projection_failed")

    def close(self) -> None:
        self.dead_letters.close()


def _event_type(event: Any) -> str:
    cls = type(event)
    return event_type(f"{cls.__module__}:{cls.__qualname__}")
