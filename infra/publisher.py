"""The publisher: store notification log → events topic, at least once, in order.

It saves its position only after the broker acknowledged every event up to it, so a
crash republishes rather than loses; consumers drop repeats by sequence number. When
the broker has lost its data (restart of a memory broker, a replaced cluster), it
re-creates the topics and a new producer and republishes everything from the store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import orjson
import structlog
from eventsourcing.persistence import ApplicationRecorder, Notification
from kafka import KafkaProducer
from kafka.errors import KafkaError

from infra.positions import PositionStore
from infra.publisher_position import PositionWriter
from infra.settings import Settings
from infra.topics import admin_client, broker_lost_data, ensure_topics, kafka_client_config

log = structlog.get_logger(__name__)

SCHEMA_VERSION = b"1"
POSITION_NAME = "publisher"
MARKER_CHECK_INTERVAL_S = 1.0


def event_type(topic: str) -> str:
    """'domain.registration:RegistrationCase.Approved' → 'RegistrationCase.Approved'."""
    return topic.rsplit(":", 1)[-1]


def headers_for(n: Notification) -> list[tuple[str, bytes]]:
    meta = orjson.loads(n.state).get("meta") or {}
    return [
        ("kosh-event-type", event_type(n.topic).encode()),
        ("kosh-topic", n.topic.encode()),
        ("kosh-seq", str(n.id).encode()),
        ("kosh-version", str(n.originator_version).encode()),
        ("kosh-correlation-id", str(meta.get("correlation_id", "")).encode()),
        ("kosh-schema-version", SCHEMA_VERSION),
    ]


class Publisher:
    def __init__(
        self, settings: Settings, recorder: ApplicationRecorder, positions: PositionStore
    ) -> None:
        self.settings = settings
        self.recorder = recorder
        self.positions = positions
        self.position = positions.get(POSITION_NAME)
        self._saver = PositionWriter(positions, POSITION_NAME)
        self._producer: KafkaProducer | None = None
        self._admin: Any = None
        self._last_marker_check = 0.0
        self._wake = threading.Event()
        self.published = 0

    def wake(self) -> None:
        """Called after a local write so the event goes out without waiting a poll."""
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        log.info("publisher.started", position=self.position, topic=self.settings.events_topic)
        backoff = 0.2
        try:
            while not stop.is_set():
                try:
                    sent = self.publish_once()
                    backoff = 0.2
                    if not sent:
                        self._wake.wait(self.settings.publisher_idle_ms / 1000)
                        self._wake.clear()
                except (KafkaError, OSError) as exc:
                    log.warning("publisher.broker_error", error=repr(exc), retry_in_s=backoff)
                    self._reset_clients()
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:
            self._reset_clients()
            # Whatever ends this run, its last saves land now, not after a successor's.
            self._saver.close()
        log.info("publisher.stopped", position=self.position)

    def publish_once(self) -> int:
        """Publishes the next batch; returns how many events went out."""
        self._check_broker()
        batch = self.recorder.select_notifications(
            start=self.position + 1, limit=self.settings.publisher_batch
        )
        if not batch:
            return 0
        self._send(batch)
        self.position = batch[-1].id
        self._saver.set(self.position)
        self.published += len(batch)
        return len(batch)

    def _send(self, batch: Sequence[Notification]) -> None:
        producer = self._producer_or_new()
        futures = [
            producer.send(
                self.settings.events_topic,
                key=str(n.originator_id).encode(),
                value=n.state,
                headers=headers_for(n),
            )
            for n in batch
        ]
        producer.flush(timeout=30)
        for f in futures:
            f.get(timeout=30)  # raises the broker's error; the position is not saved

    def _check_broker(self) -> None:
        now = time.monotonic()
        if self._admin is not None and now - self._last_marker_check < MARKER_CHECK_INTERVAL_S:
            return
        if self._admin is None:
            self._admin = admin_client(self.settings)
        if broker_lost_data(self._admin, self.settings):
            if self.position > 0:
                log.warning("publisher.broker_lost_data", republish_from=1, was=self.position)
            # A new producer: the old producer id means nothing to the new cluster.
            self._close_producer()
            # Position 0 is on disk before the marker topic is back: a crash in between
            # must not leave a position the new cluster never received.
            self.position = 0
            self._saver.set(0)
            if not self._saver.flush():
                raise RuntimeError("could not save the publisher position after data loss")
            ensure_topics(self._admin, self.settings)
        self._last_marker_check = now

    def _producer_or_new(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = KafkaProducer(
                **kafka_client_config(self.settings),
                client_id="kosh-publisher",
                acks="all",
                enable_idempotence=True,
                allow_auto_create_topics=False,
                linger_ms=5,
                batch_size=256 * 1024,
                max_request_size=5 * 1024 * 1024,
                request_timeout_ms=10_000,
                delivery_timeout_ms=30_000,
            )
        return self._producer

    def _close_producer(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=1)
            except Exception:  # noqa: BLE001 - a broken producer may fail to close
                pass
            self._producer = None

    def _reset_clients(self) -> None:
        self._close_producer()
        if self._admin is not None:
            try:
                self._admin.close()
            except Exception:  # noqa: BLE001
                pass
            self._admin = None
