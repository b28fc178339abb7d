"""Feeds the projections from the events topic, in batches, one transaction a batch."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.persistence import Mapper, StoredEvent
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from consumers.fetch_wait import FETCH_MAX_WAIT_MS
from consumers.parking import ParkingProjector
from consumers.retry_in_place import until_done
from infra import metrics
from infra.kafka_security import faststream_broker_kwargs
from infra.settings import Settings
from projections.projector import Delivered, Projector

log = structlog.get_logger(__name__)
RETRY_BACKOFF_S = 1.0


def header(record: Any, name: str) -> str:
    for key, value in record.headers or ():
        if key == name:
            return value.decode() if isinstance(value, bytes) else str(value)
    raise KeyError(f"message at offset {record.offset} has no {name} header")


def delivered(record: Any, mapper: Mapper[Any]) -> Delivered:
    """Rebuilds the domain event from the stored bytes the publisher sent."""
    stored = StoredEvent(
        originator_id=UUID(record.key.decode()),
        originator_version=int(header(record, "kosh-version")),
        topic=header(record, "kosh-topic"),
        state=record.value,
    )
    return Delivered(seq=int(header(record, "kosh-seq")), event=mapper.to_domain_event(stored))


def subscribe_projector(
    broker: KafkaBroker, settings: Settings, projector: Projector, mapper: Mapper[Any],
    group: str = "projections",
) -> None:
    parking = ParkingProjector(projector, settings, group)

    @broker.subscriber(
        settings.events_topic,
        group_id=settings.group_id(group),
        batch=True,
        max_records=1000,
        batch_timeout_ms=20,
        # The handler reads the records themselves; faststream would otherwise parse every
        # event's JSON into a body nobody uses.
        decoder=records_undecoded,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title=f"{group}: events → registers",
    )
    async def project_events(body: Any, msg: KafkaMessage) -> None:
        records: Sequence[Any] = msg.raw_message

        def failed(exc: Exception, attempt: int) -> None:
            # Transient (database locked, away or full): nothing skipped, tried again.
            metrics.TRANSIENT_ERRORS.labels(group).inc()
            log.error("projection.batch_failed", error=type(exc).__name__,
                      records=len(records), attempt=attempt, retry_in_s=RETRY_BACKOFF_S)

        applied = await until_done(lambda: parking.apply(records, delivered, mapper), failed,
                                   RETRY_BACKOFF_S)
        log.debug("projection.batch_applied", received=len(records), applied=applied)


async def records_undecoded(msg: Any) -> Any:
    """A batch decoder for handlers that read `msg.raw_message`: leaves the values alone."""
    return msg.body


def projection_broker(settings: Settings) -> KafkaBroker:
    return KafkaBroker(
        **faststream_broker_kwargs(settings),
        client_id="kosh-projections",
        allow_auto_create_topics=False,
        graceful_timeout=10,
        # Per-message "Received/Processed" lines would drown the structured logs.
        log_level=logging.DEBUG,
    )
