"""Messages a consumer cannot use go to the dead-letter topic, and are counted, not lost.

The record keeps the original key and value (for a later re-drive); its headers say why
and where it came from. Headers and the ops tables carry reason codes, field locations
and exception class names only: never message text that could echo personal data.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from eventsourcing import persistence as es_persistence
from kafka import KafkaProducer
from kafka.errors import KafkaError

from domain.erasure import replace_personal
from infra import metrics
from infra.settings import Settings
from infra.sql import Database
from infra.topics import kafka_client_config

log = structlog.get_logger(__name__)

H_REASON = "kosh-dlq-reason"
H_DETAIL = "kosh-dlq-detail"
H_STAGE = "kosh-dlq-stage"
H_TOPIC = "kosh-dlq-source-topic"
H_PARTITION = "kosh-dlq-source-partition"
H_OFFSET = "kosh-dlq-source-offset"
H_AT = "kosh-dlq-at"

_DDL = """CREATE TABLE IF NOT EXISTS kosh_dead_letters (
    stage TEXT NOT NULL,
    source_topic TEXT NOT NULL,
    source_partition INTEGER NOT NULL,
    source_offset BIGINT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    dead_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (stage, source_topic, source_partition, source_offset)
)"""

_TRANSIENT = (
    sqlite3.OperationalError,
    es_persistence.OperationalError,
    es_persistence.InterfaceError,
    # A concurrent write to the same aggregate: a retry reloads it.
    es_persistence.IntegrityError,
    KafkaError,
    ConnectionError,
    TimeoutError,
    OSError,
)


def is_transient(exc: BaseException) -> bool:
    """Worth retrying without skipping anything: the database or broker is away or busy."""
    try:
        import psycopg

        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return True
    except ImportError:  # pragma: no cover
        pass
    return isinstance(exc, _TRANSIENT)


_DIGITS = re.compile(r"\d{6,}")


def scrub(text: str, limit: int = 300) -> str:
    """Masks long digit runs (IINs, document numbers) in text kept for operators."""
    return _DIGITS.sub("<digits>", text)[:limit]


def redact_personal(value: bytes | None) -> bytes | None:
    """The rejected record as the dead-letter topic may carry it: personal fields masked
    (Kafka never carries them in clear); a value that is not JSON is not kept at all."""
    if not value:
        return value
    try:
        return orjson.dumps(replace_personal(orjson.loads(value), lambda _: "[redacted]"))
    except orjson.JSONDecodeError:
        return b""


@dataclass(frozen=True)
class DeadLetter:
    stage: str  # "intake", "projection:<name>"
    reason: str  # a code: not_json, invalid_envelope, unknown_command_type, ...
    detail: str  # field locations / exception class; no values
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    extra_headers: list[tuple[str, bytes]] = field(default_factory=list)

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            (H_REASON, self.reason.encode()),
            (H_DETAIL, self.detail.encode()),
            (H_STAGE, self.stage.encode()),
            (H_TOPIC, self.topic.encode()),
            (H_PARTITION, str(self.partition).encode()),
            (H_OFFSET, str(self.offset).encode()),
            (H_AT, f"{time.time():.3f}".encode()),
            *self.extra_headers,
        ]


def reliable_producer(settings: Settings, client_id: str) -> KafkaProducer:
    """kafka-python, idempotent, acks=all (aiokafka cannot be idempotent on this broker)."""
    return KafkaProducer(
        **kafka_client_config(settings),
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        allow_auto_create_topics=False,
        linger_ms=5,
        max_request_size=5 * 1024 * 1024,
        request_timeout_ms=10_000,
        delivery_timeout_ms=30_000,
        max_block_ms=10_000,
    )


class DeadLetterLog:
    """Durable count of dead letters per stage and reason, readable by any process."""

    def __init__(self, db: Database) -> None:
        self.db = db
        with db.transaction() as cur:
            cur.execute(_DDL)

    def record(self, letter: DeadLetter) -> bool:
        """True the first time this source record is dead-lettered at this stage."""
        with self.db.transaction() as cur:
            return cur.execute(
                "INSERT INTO kosh_dead_letters (stage, source_topic, source_partition, "
                "source_offset, reason, detail, dead_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (letter.stage, letter.topic, letter.partition, letter.offset, letter.reason,
                 letter.detail, time.time()),
            ) == 1

    def counts(self) -> dict[tuple[str, str], int]:
        rows = self.db.query(
            "SELECT stage, reason, COUNT(*) FROM kosh_dead_letters GROUP BY stage, reason"
        )
        return {(r[0], r[1]): int(r[2]) for r in rows}

    def latest(self) -> dict[str, tuple[str, float]]:
        """Per stage: the latest reason code and when."""
        rows = self.db.query(
            "SELECT stage, reason, dead_at FROM kosh_dead_letters d WHERE dead_at = "
            "(SELECT MAX(dead_at) FROM kosh_dead_letters e WHERE e.stage = d.stage)"
        )
        return {r[0]: (r[1], float(r[2])) for r in rows}

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT stage, source_topic, source_partition, source_offset, reason, detail, "
            "dead_at FROM kosh_dead_letters ORDER BY dead_at DESC LIMIT ?", (limit,)
        )
        keys = ("stage", "topic", "partition", "offset", "reason", "detail", "at")
        return [dict(zip(keys, r, strict=True)) for r in rows]


class DeadLetterSink:
    """Sends to the dead-letter topic, then records; a redelivered record counts once."""

    def __init__(self, settings: Settings, log_db: Database, client_id: str) -> None:
        self.settings = settings
        self.log = DeadLetterLog(log_db)
        self.client_id = client_id
        self._producer: KafkaProducer | None = None
        self._producer_lock = threading.Lock()  # the intake's lanes share one sink

    def send(self, letter: DeadLetter, record: bool = True) -> None:
        """`record=False` when the caller keeps its own record (parked events)."""
        with self._producer_lock:
            if self._producer is None:
                self._producer = reliable_producer(self.settings, self.client_id)
            producer = self._producer
        try:
            future = producer.send(
                self.settings.dead_letter_topic, key=letter.key, value=letter.value or b"",
                headers=letter.headers(),
            )
            producer.flush(timeout=30)
            future.get(timeout=30)
        except KafkaError:
            self.close()  # fatal for an idempotent producer after a broker restart: renew
            raise
        if not record or self.log.record(letter):
            metrics.DEAD_LETTERS.labels(stage=letter.stage, reason=letter.reason).inc()
        log.warning("dead_letter.sent", stage=letter.stage, reason=letter.reason,
                    detail=letter.detail, topic=letter.topic, partition=letter.partition,
                    offset=letter.offset)

    def close(self) -> None:
        with self._producer_lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=2)
            except Exception:  # noqa: BLE001 - a broken producer may fail to close
                pass


_PARKED_DDL = """CREATE TABLE IF NOT EXISTS projection_parked (
    projection TEXT NOT NULL,
    seq BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    parked_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (projection, seq)
)"""


class ParkedEvents:
    """Events a projection could not apply, kept beside its register with the reason.

    A parked event is not marked applied: after a fix, a redelivery or a replay applies
    it and takes it off the list."""

    def __init__(self, db: Database) -> None:
        self.db = db
        with db.transaction() as cur:
            cur.execute(_PARKED_DDL)

    def park(self, projection: str, seq: int, event_type: str, exc: BaseException) -> bool:
        with self.db.transaction() as cur:
            return cur.execute(
                "INSERT INTO projection_parked (projection, seq, event_type, reason, detail, "
                "parked_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (projection, seq, event_type, type(exc).__name__, scrub(str(exc)), time.time()),
            ) == 1

    def unpark(self, projection: str, seq: int) -> None:
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM projection_parked WHERE projection = ? AND seq = ?",
                        (projection, seq))

    def counts(self) -> dict[str, int]:
        rows = self.db.query(
            "SELECT projection, COUNT(*) FROM projection_parked GROUP BY projection"
        )
        return {r[0]: int(r[1]) for r in rows}

    def latest(self) -> dict[str, tuple[str, float]]:
        rows = self.db.query(
            "SELECT projection, reason, parked_at FROM projection_parked p WHERE parked_at = "
            "(SELECT MAX(parked_at) FROM projection_parked q WHERE q.projection = p.projection)"
        )
        return {r[0]: (r[1], float(r[2])) for r in rows}

    def listing(self, limit: int = 100) -> list[dict[str, Any]]:
        """For operators: where and why, without the event's content."""
        rows = self.db.query(
            "SELECT projection, seq, event_type, reason, parked_at FROM projection_parked "
            "ORDER BY parked_at DESC LIMIT ?", (limit,)
        )
        keys = ("projection", "seq", "event_type", "reason", "at")
        return [dict(zip(keys, r, strict=True)) for r in rows]
