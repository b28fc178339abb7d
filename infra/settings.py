"""Every setting of a deployment; the only module that reads the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KOSH_", extra="ignore")

    data_dir: Path = Field(Path("data"), description="SQLite files and the signing key")
    database_url: str | None = Field(
        None, description="postgresql://user@host:port/db; unset = SQLite files in data_dir"
    )
    database_schema: str = Field("public", description="PostgreSQL schema for all tables")
    # A process's PostgreSQL connections are these two bounds together: every instance of
    # Kosh against one server must fit in the server's max_connections.
    database_pool_size: int = Field(
        6, ge=1, description="PostgreSQL connections one process holds at most for Kosh's "
        "own tables (registers, keys, positions, trail), shared by all its threads"
    )
    database_store_pool_size: int = Field(
        6, ge=1, description="PostgreSQL connections one process's event store (the "
        "eventsourcing library) holds at most"
    )
    database_pool_wait_s: float = Field(
        10.0, gt=0, description="how long a thread waits for a pooled PostgreSQL connection "
        "before its work fails as the store unavailable (HTTP 503)"
    )
    kafka_bootstrap: str | None = Field(
        None, description="host:port[,host:port]; unset = spawn a local tansu broker"
    )
    broker_port: int = Field(19092, description="port of the spawned local broker")
    topic_prefix: str = Field("kosh", description="prefix of every topic name")
    events_partitions: int = Field(4, ge=1, description="partitions of the events topic")
    replication_factor: int = Field(1, ge=1, description="replication factor of new topics")
    consumer_group_prefix: str = Field("kosh", description="prefix of consumer group ids")
    kafka_session_timeout_ms: int = Field(2000, description="consumer session timeout")
    kafka_heartbeat_interval_ms: int = Field(500, description="consumer heartbeat interval")
    api_host: str = Field("127.0.0.1", description="HTTP API bind address")
    api_port: int = Field(8000, description="HTTP API port")
    publisher_batch: int = Field(500, ge=1, description="events per publisher round")
    publisher_idle_ms: int = Field(50, ge=1, description="publisher poll interval when idle")
    publisher_lock_poll_ms: int = Field(
        1000, ge=50, description="how often a standby publisher tries to become the leader"
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol of every client"
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] | None = Field(
        None, description="SASL mechanism when the protocol is SASL_*"
    )
    kafka_username: str | None = Field(None, description="SASL user name")
    kafka_password: str | None = Field(None, description="SASL password")
    kafka_ssl_cafile: Path | None = Field(
        None, description="PEM file of the CA that signed the brokers' TLS certificates"
    )
    jwt_secret: str | None = Field(
        None, description="HS256 key for tokens; unset = a secret created once in data_dir"
    )
    jwt_issuer: str = Field("kosh", description="issuer claim of tokens")
    token_ttl_s: int = Field(30 * 24 * 3600, description="lifetime of issued tokens, seconds")
    service_grants: dict[str, list[str]] = Field(
        default_factory=dict,
        description='JSON: service subject → command types it may send, e.g. {"crm": ["x"]}',
    )
    commands_partitions: int = Field(4, ge=1, description="partitions of the commands topic")
    ready_max_lag: int = Field(
        1000, ge=0, description="/readyz fails when a projection trails the store by more events"
    )
    audit_key_path: Path | None = Field(
        None, description="Ed25519 PEM key signing audit tree heads; unset = a key created "
        "once at data_dir/audit-signing-key.pem"
    )
    tree_head_interval_s: float = Field(
        60.0, gt=0, description="how often the audit consumer signs a tree head over new events"
    )
    idempotency_claim_timeout_s: float = Field(
        30.0, gt=0, description="a command claimed but unrecorded this long is presumed crashed"
    )
    intake_exit_after_execute: bool = Field(
        False, description="TEST ONLY: the intake kills itself after executing, before recording"
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto = console on a terminal, JSON lines otherwise"
    )
    log_level: str = Field("INFO", description="minimum log level")
    command_key: str | None = Field(
        None, description="base64 AES-256 key services seal Kafka command payloads with; "
        "when set, a payload with personal fields in clear is refused"
    )
    max_body_bytes: int = Field(
        65536, ge=1024, description="HTTP request bodies over this many bytes are refused (413)"
    )

    @property
    def events_topic(self) -> str:
        return f"{self.topic_prefix}.events"

    @property
    def commands_topic(self) -> str:
        return f"{self.topic_prefix}.commands"

    @property
    def results_topic(self) -> str:
        return f"{self.topic_prefix}.command-results"

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.topic_prefix}.dead-letters"

    @property
    def marker_topic(self) -> str:
        # Never produced to or subscribed: its absence means the broker lost its data.
        return f"{self.topic_prefix}.marker"

    def group_id(self, name: str) -> str:
        return f"{self.consumer_group_prefix}.{name}"
