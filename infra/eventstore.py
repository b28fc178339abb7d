"""The event store: an eventsourcing Application on SQLite (default) or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlparse

from eventsourcing.application import Application
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    UUIDAsHex,
)

from infra.settings import Settings


def store_env(settings: Settings) -> dict[str, str]:
    """eventsourcing's own configuration keys, derived from Kosh settings."""
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(settings.data_dir / "events.sqlite"),
            "SQLITE_LOCK_TIMEOUT": "30",
        }
    url = urlparse(settings.database_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": url.path.lstrip("/") or "postgres",
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
        "POSTGRES_SCHEMA": settings.database_schema,
        "POSTGRES_CONNECT_TIMEOUT": "5",
    }


# Any fixed 64-bit key: PostgreSQL's catalogue refuses concurrent CREATE TABLE IF NOT EXISTS
# of the same table ("tuple concurrently updated") when several processes start at once.
_DDL_LOCK_KEY = 0x4B6F73680001


def ensure_schema(url: str, schema: str) -> None:
    """eventsourcing creates its tables but not the schema they live in."""
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')


@contextmanager
def ddl_lock(url: str | None) -> Iterator[None]:
    """Serialises table creation across processes sharing one PostgreSQL database."""
    if not url:
        yield
        return
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_DDL_LOCK_KEY,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_DDL_LOCK_KEY,))


class EventStoreApplication(Application[Any]):
    """Base for Kosh's application: fixes the table name and the stored encoding."""

    name = "Kosh"  # tables kosh_events; never rename without migrating

    def __init__(self, settings: Settings) -> None:
        if settings.database_url:
            ensure_schema(settings.database_url, settings.database_schema)
        with ddl_lock(settings.database_url):
            super().__init__(env=store_env(settings))

    def construct_mapper(self) -> Mapper[Any]:
        return build_mapper()


def build_transcoder() -> JSONTranscoder:
    transcoder = JSONTranscoder()
    transcoder.register(UUIDAsHex())
    transcoder.register(DecimalAsStr())
    transcoder.register(DatetimeAsISO())
    return transcoder


def build_mapper() -> Mapper[Any]:
    """The one encoding of stored events, shared by the store and by consumers that
    decode events from Kafka without opening the store."""
    return Mapper(transcoder=build_transcoder())
