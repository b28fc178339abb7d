"""The relocation process manager (§6 → §9): when a relocation case records the family's
arrival, each person's permanent residence is registered through the registration
service (citizens by IIN; foreign and stateless family members by their document) —
a reaction to the Arrived event on Kafka, not a call from the relocation command.

Idempotent under redelivery and republication: the case records which registration
case each person got (MemberRegistered / MemberNotRegistered), and a person already
recorded is skipped. The registration commands carry deterministic causation ids, so a
crash between submitting a registration and recording it on the case is recovered by
finding the submitted registration after the arrival, not by submitting a second one.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.utils import get_topic
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError

from consumers.projections import RETRY_BACKOFF_S, header
from consumers.retry_in_place import until_done
from domain.commands import ApproveRegistration, SubmitRegistration
from domain.context import Actor, CommandContext
from domain.errors import DomainError
from domain.registration import RegistrationCase
from domain.relocation import RelocationCase, registration_causation_id
from infra.application import KoshApplication
from infra.kafka_security import faststream_broker_kwargs
from infra.settings import Settings

log = structlog.get_logger(__name__)

GROUP = "relocation-process"
ARRIVED = "RelocationCase.Arrived"
PROCESS_ACTOR = Actor("relocation-process", "service", "kosh")
_SCAN_PAGE = 500


def registration_person(person: dict[str, Any]) -> dict[str, Any]:
    """The person as the registration command takes it (absent fields left out)."""
    return {k: v for k, v in person.items() if v is not None}


class RelocationProcess:
    def __init__(self, app: KoshApplication, committed: Callable[[], None] = lambda: None):
        self.app = app
        self.committed = committed
        self._submitted_topic = get_topic(RegistrationCase.Submitted)  # type: ignore[attr-defined]

    def on_arrived(self, case_id: UUID, arrived_seq: int) -> int:
        """Registers everyone of the case not yet settled; returns how many it settled."""
        case = self.app.relocation_case(case_id)
        pending = case.unregistered_persons()
        for member, person in pending:
            self._settle(case, member, person, arrived_seq)
        if pending:
            self.committed()
            log.info("relocation.family_registered", case_id=str(case_id), persons=len(pending))
        return len(pending)

    def _ctx(self, case: RelocationCase, causation_id: str) -> CommandContext:
        meta = case.arrival_meta
        return CommandContext(
            actor=PROCESS_ACTOR,
            effective_date=dt.date.fromisoformat(meta["effective_date"]),
            correlation_id=meta["correlation_id"],
            causation_id=causation_id,
        )

    def _settle(self, case: RelocationCase, member: str, person: dict[str, Any],
                arrived_seq: int) -> None:
        causation = registration_causation_id(case.id, member)
        ctx = self._ctx(case, causation)
        registration_id = self._already_submitted(causation, arrived_seq)
        try:
            if registration_id is None:
                assert case.arrival is not None
                cmd = SubmitRegistration.model_validate({
                    "person": registration_person(person),
                    "address": case.arrival["address"],
                    "housing": case.arrival["housing"],
                    "kind": "permanent",
                    "effective_date": ctx.effective_date.isoformat(),
                })
                registration_id = self.app.submit_registration(cmd, ctx).case_id
            registration: RegistrationCase = self.app.repository.get(registration_id)
            if registration.status == "submitted":
                self.app.approve_registration(
                    registration_id, ApproveRegistration(effective_date=ctx.effective_date),
                    self._ctx(case, f"{causation}/approve"),
                )
        except ValidationError as exc:
            reason = "the registration service does not accept this person: " + "; ".join(
                str(e.get("msg")) for e in exc.errors()
            )
            self._failed(case, member, reason, causation)
            return
        except DomainError as exc:
            self._failed(case, member, exc.message, causation)
            return
        self.app.record_member_registration(case.id, member, registration_id,
                                            self._ctx(case, f"{causation}/recorded"))

    def _failed(self, case: RelocationCase, member: str, reason: str, causation: str) -> None:
        log.warning("relocation.member_not_registered", case_id=str(case.id), member=member,
                    reason=reason)
        self.app.record_member_not_registered(case.id, member, reason,
                                              self._ctx(case, f"{causation}/recorded"))

    def _already_submitted(self, causation_id: str, after_seq: int) -> UUID | None:
        """A registration this process submitted for the person before a crash: it was
        stored after the arrival and carries the deterministic causation id."""
        start = after_seq + 1
        while True:
            page = self.app.recorder.select_notifications(
                start=start, limit=_SCAN_PAGE, topics=[self._submitted_topic]
            )
            for n in page:
                event: Any = self.app.mapper.to_domain_event(n)
                if event.meta.get("causation_id") == causation_id:
                    return UUID(str(n.originator_id))
            if len(page) < _SCAN_PAGE:
                return None
            start = page[-1].id + 1


def subscribe_relocation_process(broker: KafkaBroker, settings: Settings,
                                 process: RelocationProcess) -> None:
    @broker.subscriber(
        settings.events_topic,
        group_id=settings.group_id(GROUP),
        batch=True,
        max_records=500,
        batch_timeout_ms=20,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title=f"{GROUP}: relocation arrivals → registrations",
    )
    async def on_events(body: Any, msg: KafkaMessage) -> None:
        records: Sequence[Any] = msg.raw_message
        for record in records:
            if header(record, "kosh-event-type") != ARRIVED:
                continue
            case_id, seq = UUID(record.key.decode()), int(header(record, "kosh-seq"))

            def failed(exc: Exception, attempt: int, case_id: UUID = case_id,
                       seq: int = seq) -> None:
                log.error("relocation.process_failed", case_id=str(case_id), seq=seq,
                          error=repr(exc), attempt=attempt, retry_in_s=RETRY_BACKOFF_S)

            await until_done(functools.partial(process.on_arrived, case_id, seq), failed,
                             RETRY_BACKOFF_S)


def relocation_process_broker(settings: Settings, app: KoshApplication,
                              committed: Callable[[], None]) -> KafkaBroker:
    broker = KafkaBroker(
        **faststream_broker_kwargs(settings),
        client_id="kosh-relocation-process",
        allow_auto_create_topics=False,
        graceful_timeout=10,
        log_level=logging.DEBUG,
    )
    subscribe_relocation_process(broker, settings, RelocationProcess(app, committed))
    return broker
