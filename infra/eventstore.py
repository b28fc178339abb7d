"""The event store: an eventsourcing Application on SQLite (default) or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast
from urllib.parse import unquote, urlparse

from eventsourcing.application import Application
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    UUIDAsHex,
)

from infra import pg_pool
from infra.settings import Settings
from infra.sql import ddl_lock_key, take_ddl_lock


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
        # The library opens 5 connections per application up front (15 at most); with an
        # application in every process, a few instances would exhaust a server's slots.
        "POSTGRES_POOL_SIZE": "1",
        "POSTGRES_MAX_OVERFLOW": str(settings.database_store_pool_size - 1),
    }




def ensure_schema(url: str, schema: str) -> None:
    """eventsourcing creates its tables but not the schema they live in."""
    import psycopg

    with psycopg.connect(url, autocommit=False, connect_timeout=5) as conn:
        take_ddl_lock(conn.cursor(), schema)
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        conn.commit()


@contextmanager
def ddl_lock(url: str | None, schema: str) -> Iterator[None]:
    """Serialises table creation across processes sharing one PostgreSQL database."""
    if not url:
        yield
        return
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        locked = take_ddl_lock(conn.cursor(), schema, session=True)
        try:
            yield
        finally:
            if locked:
                conn.execute("SELECT pg_advisory_unlock(%s)", (ddl_lock_key(schema),))


class EventStoreApplication(Application[Any]):
    """Base for Kosh's application: fixes the table name and the stored encoding."""

    name = "Kosh"  # tables kosh_events; never rename without migrating

    def __init__(self, settings: Settings) -> None:
        self.kosh_settings = settings  # construct_mapper runs inside super().__init__
        if settings.database_url:
            # This process's bound for Kosh's own connections, beside the library's.
            pg_pool.configure(settings.database_pool_size, settings.database_pool_wait_s)
            ensure_schema(settings.database_url, settings.database_schema)
        super().__init__(env=store_env(settings))

    def construct_mapper(self) -> Mapper[Any]:
        return build_mapper(self.kosh_settings)

    def construct_repository(self) -> Any:
        from infra.repository import FastRepository, SQLiteEventReader

        library = super().construct_repository()
        if library.cache:  # configured by the library's own setting: left as it is
            return library
        reader = None
        if not self.kosh_settings.database_url:
            reader = SQLiteEventReader(self.kosh_settings.data_dir / "events.sqlite",
                                       cast(Any, self.recorder).events_table_name)
        return FastRepository(
            event_store=library.event_store,
            snapshot_store=library.snapshot_store,
            read_events=reader,
        )

    def construct_recorder(self) -> Any:
        # The library creates its tables here.
        with ddl_lock(self.kosh_settings.database_url, self.kosh_settings.database_schema):
            return super().construct_recorder()


def build_transcoder() -> JSONTranscoder:
    from infra.transcoder import OrjsonTranscoder

    transcoder = OrjsonTranscoder()
    transcoder.register(UUIDAsHex())
    transcoder.register(DecimalAsStr())
    transcoder.register(DatetimeAsISO())
    return transcoder


def build_mapper(settings: Settings | None = None) -> Mapper[Any]:
    """The one encoding of stored events, shared by the store and by consumers that decode
    events from Kafka. With settings, personal fields are sealed with each data subject's
    key (the key store lives beside the events); without, sealed fields stay sealed — what
    the ops side and anything else that must never see personal data uses."""
    if settings is None:
        return Mapper(transcoder=build_transcoder())
    from infra.personal_data import PersonalDataSealer, SealingMapper
    from infra.sql import Database
    from infra.subject_keys import SubjectKeyStore

    db = Database(settings.database_url, settings.data_dir / "events.sqlite",
                  settings.database_schema)
    return SealingMapper(build_transcoder(), PersonalDataSealer(SubjectKeyStore(db)))
