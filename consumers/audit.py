"""Keeps the audit trail level with the store and signs tree heads (runs with the
projections role: the trail is a projection of the store itself).

An event on the topic only says "the store has grown to sequence N": the trail then appends
every stored event it has not appended yet, read from the store in order (trail.py says
why). A redelivered event finds nothing new; one that arrives before its predecessors pulls
them in from the store; a lost message is made good by the periodic round, which also signs
a tree head whenever the trail has grown since the last one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import structlog
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from consumers.projections import header, records_undecoded
from consumers.retry_in_place import until_done
from infra import metrics
from infra.kafka_security import faststream_broker_kwargs
from infra.settings import Settings
from projections.audit.heads import TreeHeads, signing_key
from projections.audit.trail import AuditTrail

log = structlog.get_logger(__name__)

GROUP = "audit"
RETRY_BACKOFF_S = 1.0


class AuditConsumer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.trail = AuditTrail(settings)
        self.heads = TreeHeads(self.trail.db, signing_key(settings))
        self.broker = KafkaBroker(
            **faststream_broker_kwargs(settings),
            client_id="kosh-audit",
            allow_auto_create_topics=False,
            graceful_timeout=10,
            log_level=logging.DEBUG,
        )
        self._subscribe()
        self._rounds: asyncio.Task[None] | None = None

    def _subscribe(self) -> None:
        @self.broker.subscriber(
            self.settings.events_topic,
            group_id=self.settings.group_id(GROUP),
            batch=True,
            max_records=1000,
            batch_timeout_ms=20,
            decoder=records_undecoded,  # only the headers are read
            auto_offset_reset="earliest",
            session_timeout_ms=self.settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=self.settings.kafka_heartbeat_interval_ms,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            title=f"{GROUP}: stored events → audit trail",
        )
        async def on_events(body: Any, msg: KafkaMessage) -> None:
            records: Sequence[Any] = msg.raw_message
            newest = max(int(header(r, "kosh-seq")) for r in records)
            if newest <= self.trail.last_seq:
                return  # redelivered or republished: already in the trail

            def failed(exc: Exception, attempt: int) -> None:
                metrics.TRANSIENT_ERRORS.labels(GROUP).inc()
                log.error("audit.catch_up_failed", error=repr(exc), attempt=attempt,
                          retry_in_s=RETRY_BACKOFF_S)

            appended = await until_done(self.trail.catch_up, failed, RETRY_BACKOFF_S)
            log.debug("audit.appended", events=appended, last_seq=self.trail.last_seq)

    def round(self) -> dict[str, Any] | None:
        """Catch up with the store; sign a head if the trail grew since the last one."""
        self.trail.sync()
        self.trail.catch_up()
        latest = self.heads.latest()
        if latest is not None and latest["tree_size"] == self.trail.size:
            return None
        head = self.heads.issue(self.trail)
        log.info("audit.tree_head_signed", tree_size=head["tree_size"], root=head["root_hash"])
        return head

    async def _every_interval(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.round)
            except Exception as exc:  # noqa: BLE001 - the next round retries
                log.error("audit.round_failed", error=repr(exc))
            await asyncio.sleep(self.settings.tree_head_interval_s)

    async def start(self) -> None:
        await self.broker.start()
        self._rounds = asyncio.create_task(self._every_interval())
        log.info(
            "audit.started",
            group=self.settings.group_id(GROUP),
            size=self.trail.size,
            last_seq=self.trail.last_seq,
        )

    async def stop(self) -> None:
        if self._rounds is not None:
            self._rounds.cancel()
            try:
                await self._rounds
            except asyncio.CancelledError:
                pass
        await self.broker.stop()
