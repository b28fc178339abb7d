"""The messages on Kafka, as pydantic models, and the AsyncAPI document faststream builds
from them: events, commands, command results and dead letters."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal
from uuid import UUID

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from pydantic import BaseModel, ConfigDict, Field

from consumers import dead_letters as dl
from infra.settings import Settings

Text = Annotated[str, Field(min_length=1, max_length=128)]


AUTH_HEADER = "authorization"  # Kafka record header: "Bearer <jwt>" or "ApiKey <key>"


class CommandEnvelope(BaseModel):
    """A command sent on the commands topic. `payload` is validated with the same model as
    the HTTP route of that command type; `case_id` names the case for commands on one.
    The sender is identified by the record's `authorization` header (a token from
    `kosh token issue` or an API key), never by the envelope."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command_id: Annotated[str, Field(
        min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$",
        description="unique per command; a repeat returns the first outcome and changes nothing",
    )]
    command_type: Annotated[str, Field(min_length=1, max_length=100,
                                       description="e.g. submit_registration")]
    case_id: UUID | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    sealed_payload: Annotated[str | None, Field(
        None, max_length=1_000_000,
        description="the payload sealed with the deployment's command key (AES-256-GCM, "
        "command id as associated data): how personal data travels on Kafka",
    )] = None
    effective_date: dt.date | None = Field(
        None, description="used when the payload gives none; today when neither does"
    )
    correlation_id: Text | None = None
    reply_to: Annotated[str | None, Field(
        None, pattern=r"^[A-Za-z0-9._-]{1,249}$",
        description="an existing topic that also receives the outcome",
    )] = None


class FieldError(BaseModel):
    loc: list[str | int]
    type: str
    msg: str = ""


class Refusal(BaseModel):
    code: str
    message: str
    clause: str | None = None
    errors: list[FieldError] | None = None


class CommandResult(BaseModel):
    """Published on the results topic keyed by command id. accepted: the case and the
    store sequence numbers of its new events; refused: a rule said no (nothing stored);
    rejected: the message was malformed (it also went to the dead-letter topic)."""

    command_id: str
    command_type: str
    result: Literal["accepted", "refused", "rejected"]
    case_id: UUID | None = None
    sequence_numbers: list[int] = Field(default_factory=list)
    correlation_id: str | None = None
    refusal: Refusal | None = None


class EventMessage(BaseModel):
    """An event exactly as stored (JSON, key = case id). Headers: kosh-event-type,
    kosh-topic, kosh-seq (store sequence number), kosh-version, kosh-correlation-id,
    kosh-schema-version."""

    model_config = ConfigDict(extra="allow")

    meta: dict[str, Any] = Field(description="actor, effective_date, legal_basis, "
                                 "correlation_id, causation_id")
    originator_topic: str | None = None
    timestamp: dict[str, Any] | str | None = None


class DeadLetterMessage(BaseModel):
    """The original key and value, unchanged. Headers: kosh-dlq-reason (a code),
    kosh-dlq-detail (field locations or exception class; no values), kosh-dlq-stage,
    kosh-dlq-source-topic, kosh-dlq-source-partition, kosh-dlq-source-offset, kosh-dlq-at."""

    original: Any = None


DEAD_LETTER_HEADERS = (dl.H_REASON, dl.H_DETAIL, dl.H_STAGE, dl.H_TOPIC, dl.H_PARTITION,
                       dl.H_OFFSET, dl.H_AT)


def asyncapi(settings: Settings) -> AsyncAPI:
    """A broker that is never started, declaring every channel with its message model."""
    broker = KafkaBroker(settings.kafka_bootstrap or "localhost:9092")

    @broker.subscriber(settings.events_topic, title="projections: events → registers",
                       description="applies each event to every register at most once")
    async def project(event: EventMessage) -> None: ...

    @broker.subscriber(settings.commands_topic, title="intake: commands",
                       description="validates, executes once per command id, replies")
    async def intake(command: CommandEnvelope) -> None: ...

    broker.publisher(settings.events_topic, title="publisher: store → events",
                     schema=EventMessage, description="every stored event, in store order")
    broker.publisher(settings.results_topic, title="intake: command results",
                     schema=CommandResult, description="one outcome per command, keyed by id")
    broker.publisher(settings.dead_letter_topic, title="dead letters",
                     schema=DeadLetterMessage,
                     description="malformed commands and events a projection cannot apply")
    return AsyncAPI(broker, title="Kosh", version="0.1.0",
                    description="Kafka topics and messages of Kosh")
