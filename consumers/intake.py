"""Command intake: the commands topic → the application service → the results topic.

Each record is a CommandEnvelope. The payload is validated with the model the HTTP route
of that command type uses (infra/command_registry.py), executed at most once per command
id (infra/idempotency.py), and its outcome is published on the results topic keyed by the
command id. The commands of a batch run side by side, so that their saves share group
commits, except those that share a case id or a record key, which run in the order they
came (consumers/intake_lanes.py). A rule's refusal is an outcome, not a failure. A record
that cannot be a command (not JSON, unknown type, schema errors) goes to the dead-letter
topic and, when it names a command id, also gets a `rejected` outcome; the intake keeps
going. Transient errors (database or broker away) fail the batch: nothing is committed,
it is redelivered.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import orjson
import structlog
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from kafka import KafkaProducer
from kafka.errors import KafkaError
from pydantic import BaseModel, ValidationError

from consumers.command_sealing import (
    UnreadablePayload,
    command_key,
    open_payload,
    personal_fields_in,
)
from consumers.contracts import (
    AUTH_HEADER,
    CommandEnvelope,
    CommandResult,
    FieldError,
    Refusal,
)
from consumers.dead_letters import (
    DeadLetter,
    DeadLetterSink,
    is_transient,
    redact_personal,
    reliable_producer,
)
from consumers.fetch_wait import FETCH_MAX_WAIT_MS
from consumers.intake_batch import Command, Prepared, execute_batch
from consumers.intake_lanes import Lanes
from consumers.offset_guard import StaleOffsetGuard
from consumers.retry_in_place import until_done
from domain.context import Actor, CommandContext
from domain.errors import DomainError
from infra import metrics
from infra.auth import ApiKeyStore, AuthenticationError, Principal, verify_token
from infra.command_registry import COMMAND_TYPES, command_type
from infra.idempotency import (
    Caused,
    CommandInProgress,
    IdempotencyConflict,
    IdempotencyStore,
    Recorded,
    fingerprint,
    refusal_of,
)
from infra.kafka_security import faststream_broker_kwargs
from infra.permissions import NotPermitted, require_command_role
from infra.service_base import Outcome
from infra.settings import Settings
from infra.sql import Database

log = structlog.get_logger(__name__)

STAGE = "intake"
IN_PROGRESS_POLL_S = 0.5
TRANSIENT_BACKOFF_S = 1.0
RESULTS_FLUSH_S = 5.0


class Malformed(Exception):
    """The record cannot be a command; `reason` is a dead-letter reason code."""

    def __init__(self, reason: str, detail: str, errors: list[FieldError] | None = None,
                 message: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail
        self.errors = errors
        self.message = message or reason.replace("_", " ")


def field_errors(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[FieldError]:
    """Locations, types and messages for the sender; dead-letter headers take only the
    locations and types (a message may quote the value sent)."""
    return [FieldError(loc=[*prefix, *e["loc"]], type=e["type"], msg=e["msg"])
            for e in exc.errors(include_input=False, include_url=False)]


def locations(errors: list[FieldError]) -> str:
    return "; ".join(f"{'.'.join(map(str, e.loc))}: {e.type}" for e in errors)[:500]


def parse_command(value: bytes | None,
                  key: bytes | None = None) -> tuple[CommandEnvelope, Any, BaseModel]:
    """The envelope, its command type and the validated command; or Malformed."""
    try:
        raw = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        raise Malformed("not_json", "value is not JSON") from None
    try:
        envelope = CommandEnvelope.model_validate(raw)
    except ValidationError as exc:
        errors = field_errors(exc)
        raise Malformed("invalid_envelope", locations(errors), errors) from None
    try:
        spec = command_type(envelope.command_type)
    except DomainError as exc:
        raise Malformed("unknown_command_type", "command_type", message=exc.message) from None
    if spec.targets_case and envelope.case_id is None:
        raise Malformed("missing_case_id", "case_id",
                        message=f"{envelope.command_type} acts on a case: give case_id")
    payload = _payload(envelope, key)
    if envelope.effective_date is not None:
        payload.setdefault("effective_date", envelope.effective_date.isoformat())
    try:
        cmd = spec.model.model_validate(payload)
    except ValidationError as exc:
        errors = field_errors(exc, ("payload",))
        raise Malformed("invalid_payload", locations(errors), errors) from None
    return envelope, spec, cmd


def _payload(envelope: CommandEnvelope, key: bytes | None) -> dict[str, Any]:
    if envelope.sealed_payload is None:
        if key is not None and (found := personal_fields_in(envelope.payload)):
            raise Malformed("personal_data_in_clear", ", ".join(sorted(set(found))),
                            message="personal fields travel on Kafka only sealed: send "
                            "them in sealed_payload, sealed with the command key")
        return dict(envelope.payload)
    if envelope.payload:
        raise Malformed("invalid_envelope", "payload",
                        message="send payload or sealed_payload, not both")
    if key is None:
        raise Malformed("unreadable_payload", "sealed_payload",
                        message="this deployment has no command key to open sealed payloads")
    try:
        return open_payload(key, envelope.command_id, envelope.sealed_payload)
    except UnreadablePayload as exc:
        raise Malformed("unreadable_payload", "sealed_payload", message=str(exc)) from None


class CommandIntake:
    def __init__(self, settings: Settings, app: Any, store_db: Database,
                 on_commit: Callable[[], None] = lambda: None) -> None:
        self.settings = settings
        self.app = app
        self.on_commit = on_commit
        self.outcomes = IdempotencyStore(store_db, app.recorder,
                                         settings.idempotency_claim_timeout_s)
        self.dead_letters = DeadLetterSink(settings, store_db, "kosh-intake-dlq")
        self.api_keys = ApiKeyStore(store_db)
        self.command_key = command_key(settings.command_key) if settings.command_key else None
        self._producer: KafkaProducer | None = None
        self.lanes = Lanes()

    def handle_batch(self, records: Sequence[Any]) -> None:
        """Handles every record, then waits until every result is acknowledged: only then
        may the offsets be committed. A transient error fails the whole batch (it is
        redelivered; what did execute is then replayed from its recorded outcome)."""
        futures = []
        try:
            commands: list[Command] = []
            for record in records:
                taken = self._take(record)
                if isinstance(taken, Command):
                    commands.append(taken)
                else:
                    futures.extend(taken)
            done = execute_batch(self, commands)
            for outcome in done:
                if isinstance(outcome, Exception) and is_transient(outcome):
                    raise outcome
            for command, outcome in zip(commands, done, strict=True):
                futures.extend(self._answer(command, outcome))
            if futures:
                # Bounded well below the producer's delivery timeout: after a broker lost
                # its data the idempotent producer retries an unknown producer id until
                # then (30 s); a fresh producer on the redelivery answers at once.
                self.producer.flush(timeout=RESULTS_FLUSH_S)
                for f in futures:
                    f.get(timeout=RESULTS_FLUSH_S)
        except KafkaError:
            # An idempotent producer fails for good once the broker lost its state (a
            # restart of a memory broker: UnknownProducerId): the redelivery gets a new one.
            self._drop_producer()
            raise

    @property
    def producer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = reliable_producer(self.settings, "kosh-intake")
        return self._producer

    def _take(self, record: Any) -> Command | list[Any]:
        """The record as a command to execute, or the futures of its rejection."""
        try:
            envelope, spec, cmd = parse_command(record.value, self.command_key)
            principal, role = self.authorise(record, envelope.command_type)
        except Malformed as bad:
            return self._reject(record, bad)
        actor = Actor(principal.subject[:128], role, (principal.organisation or "unknown")[:128])
        return Command(record, envelope, spec, cmd, actor)

    def _answer(self, command: Command, outcome: CommandResult | BaseException | None
                ) -> list[Any]:
        if isinstance(outcome, CommandResult):
            return self._publish(outcome, command.envelope.reply_to)
        log.error("intake.execution_failed", command_id=command.envelope.command_id,
                  command_type=command.envelope.command_type, error=type(outcome).__name__,
                  exc_info=outcome)
        return self._reject(command.record, Malformed(
            "execution_failed", type(outcome).__name__,
            message="the command could not be executed; operations were alerted"))

    def authorise(self, record: Any, command_type: str) -> tuple[Principal, str]:
        """The sender from the record's authorization header, and the role it acts in."""
        raw = next((v for k, v in (record.headers or ()) if k.lower() == AUTH_HEADER), None)
        credential = (raw or b"").decode("latin-1").strip()
        scheme, _, secret = credential.partition(" ")
        try:
            if scheme.lower() == "bearer" and secret:
                principal = verify_token(self.settings, secret.strip())
            elif scheme.lower() == "apikey" and secret:
                principal = self.api_keys.verify(secret.strip())
            else:
                raise AuthenticationError(
                    "send the header 'authorization: Bearer <token>' or 'ApiKey <key>'")
        except AuthenticationError as exc:
            log.warning("auth.denied", channel="kafka", status=401, reason=str(exc),
                        command_type=command_type)
            raise Malformed("unauthenticated", AUTH_HEADER, message=str(exc)) from None
        try:
            return principal, require_command_role(principal, command_type, self.settings)
        except NotPermitted as exc:
            log.warning("auth.denied", channel="kafka", status=403, reason=str(exc),
                        subject=principal.subject, command_type=command_type)
            raise Malformed("forbidden", "role", message=str(exc)) from None

    def prepare(self, command: Command) -> Prepared:
        """The command as the idempotency store runs it, at most once per command id."""
        envelope, spec, cmd = command.envelope, command.spec, command.cmd
        cid, ctype = envelope.command_id, envelope.command_type
        correlation_id = envelope.correlation_id or cid
        ctx = CommandContext(
            actor=command.actor,
            effective_date=getattr(cmd, "effective_date", None) or dt.date.today(),
            correlation_id=correlation_id,
            causation_id=cid,  # lets a retry find the events of a crashed attempt
        )

        def run() -> dict[str, Any]:
            outcome: Outcome = spec.handle(self.app, cmd, ctx, envelope.case_id)
            return {"case_id": str(outcome.case_id),
                    "sequence_numbers": list(outcome.sequence_numbers),
                    "correlation_id": correlation_id}

        def recovered(found: list[Caused]) -> dict[str, Any]:
            return {"case_id": str(UUID(found[0].case_id)),
                    "sequence_numbers": [c.seq for c in found],
                    "correlation_id": found[0].correlation_id or correlation_id}

        print_ = fingerprint("kafka", ctype, str(envelope.case_id), cmd.model_dump(mode="json"))
        return Prepared(cid, ctype, print_, run, recovered)

    def execute_prepared(self, p: Prepared) -> CommandResult:
        deadline = time.monotonic() + self.settings.idempotency_claim_timeout_s + 5
        while True:
            try:
                recorded = self.outcomes.run(p.cid, p.ctype, p.print_, p.run, p.recovered,
                                             after_execute=self._crash_if_testing)
                break
            except CommandInProgress:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"command {p.cid!r} stayed in progress") from None
                time.sleep(IN_PROGRESS_POLL_S)
            except IdempotencyConflict as exc:
                metrics.COMMANDS.labels("kafka", p.ctype, "refused").inc()
                return CommandResult(command_id=p.cid, command_type=p.ctype, result="refused",
                                     refusal=Refusal(**refusal_of(exc)))
        return self.result_of(p, recorded)

    def run_held(self, p: Prepared) -> tuple[str, dict[str, Any]]:
        """A command whose id this intake has just claimed: (result, outcome), recorded
        afterwards with the batch's others (IdempotencyStore.record_all)."""
        return self.outcomes.execute_held(p.cid, p.run, self._crash_if_testing)

    def result_of(self, p: Prepared, recorded: Recorded) -> CommandResult:
        if recorded.result == "accepted" and not recorded.replayed:
            self.on_commit()
        metrics.COMMANDS.labels(
            "kafka", p.ctype, "replayed" if recorded.replayed else recorded.result).inc()
        return CommandResult.model_validate({"command_id": p.cid, "command_type": p.ctype,
                                             "result": recorded.result, **recorded.outcome})

    def _crash_if_testing(self) -> None:
        if self.settings.intake_exit_after_execute:
            log.warning("intake.test_crash", after="execute", before="record and commit")
            os.kill(os.getpid(), signal.SIGKILL)

    def _reject(self, record: Any, bad: Malformed) -> list[Any]:
        self.dead_letters.send(DeadLetter(
            stage=STAGE, reason=bad.reason, detail=bad.detail, topic=record.topic,
            partition=record.partition, offset=record.offset, key=record.key,
            value=redact_personal(record.value),
        ))
        command_id, ctype = _identity(record.value)
        if command_id is None:
            metrics.COMMANDS.labels("kafka", "unknown", "rejected").inc()
            return []
        label = ctype if ctype in COMMAND_TYPES else "unknown"
        metrics.COMMANDS.labels("kafka", label, "rejected").inc()
        result = CommandResult(
            command_id=command_id, command_type=ctype[:100], result="rejected",
            refusal=Refusal(code=bad.reason, message=bad.message, errors=bad.errors),
        )
        return self._publish(result, None)

    def _publish(self, result: CommandResult, reply_to: str | None) -> list[Any]:
        value = result.model_dump_json(exclude_none=True).encode()
        headers = [("kosh-result", result.result.encode()),
                   ("kosh-command-type", result.command_type.encode())]
        key = result.command_id.encode()
        futures = [self.producer.send(self.settings.results_topic, key=key, value=value,
                                      headers=headers)]
        if reply_to and reply_to != self.settings.results_topic:
            try:
                self.producer.send(reply_to, key=key, value=value, headers=headers)
            except Exception as exc:  # noqa: BLE001 - the results topic has it anyway
                log.warning("intake.reply_to_failed", reply_to=reply_to, error=type(exc).__name__)
        return futures

    def close(self) -> None:
        self.lanes.close()
        self.dead_letters.close()
        self._drop_producer()

    def _drop_producer(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=2)
            except Exception:  # noqa: BLE001
                pass
            self._producer = None


def _identity(value: bytes | None) -> tuple[str | None, str]:
    """The command id and type of a malformed record, when it names them."""
    try:
        raw = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None, ""
    if not isinstance(raw, dict):
        return None, ""
    cid, ctype = raw.get("command_id"), raw.get("command_type")
    if not isinstance(cid, str) or not 0 < len(cid) <= 200:
        return None, ""
    return cid, ctype if isinstance(ctype, str) else ""


async def _raw(msg: Any) -> Any:
    """The handler reads the raw records itself: a non-JSON value must reach it."""
    return None


def subscribe_intake(broker: KafkaBroker, settings: Settings,
                     intake: CommandIntake) -> StaleOffsetGuard:
    guard = StaleOffsetGuard(settings, lambda: getattr(subscriber, "consumer", None))
    subscriber = broker.subscriber(
        settings.commands_topic,
        group_id=settings.group_id("intake"),
        batch=True,
        max_records=200,
        batch_timeout_ms=20,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,  # a sender waits for the result
        auto_offset_reset="earliest",
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=_raw,
        title="intake: commands",
        listener=guard,
    )

    @subscriber
    async def take_commands(body: Any, msg: KafkaMessage) -> None:
        records: Sequence[Any] = msg.raw_message

        def failed(exc: Exception, attempt: int) -> None:
            metrics.TRANSIENT_ERRORS.labels(STAGE).inc()
            log.error("intake.batch_failed", error=type(exc).__name__, records=len(records),
                      attempt=attempt, retry_in_s=TRANSIENT_BACKOFF_S)

        await until_done(lambda: intake.handle_batch(records), failed, TRANSIENT_BACKOFF_S)

    return guard


def intake_broker(settings: Settings) -> KafkaBroker:
    return KafkaBroker(
        **faststream_broker_kwargs(settings),
        client_id="kosh-intake",
        allow_auto_create_topics=False,
        graceful_timeout=10,
        log_level=logging.DEBUG,
    )


class IntakeConsumer:
    """The intake as a runner component: start() joins the group, stop() leaves it."""

    def __init__(self, settings: Settings, app: Any, store_db: Database,
                 on_commit: Callable[[], None] = lambda: None) -> None:
        self.intake = CommandIntake(settings, app, store_db, on_commit)
        self.broker = intake_broker(settings)
        self.offset_guard = subscribe_intake(self.broker, settings, self.intake)

    async def start(self) -> None:
        await self.broker.start()
        log.info("intake.started", topic=self.intake.settings.commands_topic,
                 group=self.intake.settings.group_id("intake"))

    async def stop(self) -> None:
        try:
            await self.broker.stop()
        finally:
            await asyncio.to_thread(self.intake.close)
