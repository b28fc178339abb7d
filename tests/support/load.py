"""Sends commands the way a careful client does, over HTTP and over the Kafka command
intake, and keeps a ledger of what each command got.

A careful client retries what may not have happened (connection lost, 5xx, a 409 that
says "in progress" or "concurrent change", no result on Kafka yet) with the *same*
Idempotency-Key or command id, so the ledger's `accepted` is what the system promised,
and a retry must never make it happen twice.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from infra.permissions import COMMAND_ROLES
from infra.settings import Settings
from tests.support.auth import token

# command type → (HTTP path template, the case id goes into {id})
HTTP_ROUTES: dict[str, str] = {
    "submit_registration": "/registrations",
    "approve_registration": "/registrations/{id}/approve",
    "refuse_registration": "/registrations/{id}/refuse",
    "establish_quota": "/quotas",
    "draft_proposal": "/proposals",
    "submit_proposal": "/proposals/{id}/submit",
    "accept_proposal": "/proposals/{id}/accept",
    "decline_proposal": "/proposals/{id}/decline",
    "apply_for_relocation": "/relocations",
    "approve_relocation": "/relocations/{id}/approve",
    "refuse_relocation": "/relocations/{id}/refuse",
    "withdraw_relocation": "/relocations/{id}/withdraw",
    "record_arrival": "/relocations/{id}/arrival",
}
# Refusals that say nothing about the command: the careful client tries again.
RETRY_CODES = frozenset({"command_in_progress", "concurrent_change", "quota_busy"})


def role_for(command_type: str) -> str:
    return sorted(COMMAND_ROLES[command_type])[0]


@dataclass
class Sent:
    """One command and what the client learnt about it."""

    n: int
    channel: str  # http | kafka
    command_type: str
    correlation_id: str
    causation_id: str  # the Idempotency-Key or the Kafka command id
    target: str | None
    race: str | None = None
    result: str = "pending"  # accepted | refused | rejected | unknown
    status: int | None = None
    code: str | None = None
    case_id: str | None = None
    sequence_numbers: list[int] = field(default_factory=list)
    attempts: int = 0
    transient: Counter[str] = field(default_factory=Counter)  # what made it retry
    started: float = 0.0
    finished: float = 0.0


class Ledger:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._serial = itertools.count(1)
        self.run = uuid.uuid4().hex[:8]
        self.sent: list[Sent] = []

    def new(
        self, channel: str, command_type: str, target: str | None, race: str | None = None
    ) -> Sent:
        with self._lock:
            n = next(self._serial)
            sent = Sent(
                n,
                channel,
                command_type,
                f"load-{self.run}-{n}",
                f"{'ik' if channel == 'http' else 'kc'}-{self.run}-{n}",
                target,
                race,
                started=time.monotonic(),
            )
            self.sent.append(sent)
            return sent

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(s.result for s in self.sent)


def _error_code(reply: httpx.Response) -> str | None:
    """The `error.code` of a refusal; None for success or a body that is not ours (a bare
    500 page)."""
    if reply.status_code < 400:
        return None
    try:
        error = reply.json().get("error")
    except (ValueError, AttributeError):
        return None
    return error.get("code") if isinstance(error, dict) else None


class HttpChannel:
    """Round-robins over the API instances; a dead one is simply tried again later."""

    def __init__(
        self,
        settings: Settings,
        base_urls: Sequence[str],
        deadline_s: float = 90.0,
        timeout_s: float = 15.0,
    ) -> None:
        self.settings = settings
        self.base_urls = list(base_urls)
        self.deadline_s = deadline_s
        self.timeout_s = timeout_s
        self._local = threading.local()
        self._tokens = {
            r: token(settings, r, subject=f"load-{r}") for r in {role_for(t) for t in HTTP_ROUTES}
        }

    def _client(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = httpx.Client(timeout=self.timeout_s)
        return client

    def send(self, sent: Sent, body: dict[str, Any], via: int | None = None) -> Sent:
        path = HTTP_ROUTES[sent.command_type].format(id=sent.target)
        headers = {
            "Authorization": f"Bearer {self._tokens[role_for(sent.command_type)]}",
            "Idempotency-Key": sent.causation_id,
            "X-Correlation-ID": sent.correlation_id,
        }
        give_up = time.monotonic() + self.deadline_s
        start = via if via is not None else random.randrange(len(self.base_urls))
        while True:
            url = self.base_urls[(start + sent.attempts) % len(self.base_urls)] + path
            sent.attempts += 1
            try:
                reply = self._client().post(url, json=body, headers=headers)
            except httpx.HTTPError as exc:
                sent.transient[type(exc).__name__] += 1
            else:
                code = _error_code(reply)
                if reply.status_code < 300:
                    data = reply.json()
                    return self._done(
                        sent,
                        "accepted",
                        reply.status_code,
                        None,
                        data["case_id"],
                        data["sequence_numbers"],
                    )
                if reply.status_code < 500 and code not in RETRY_CODES:
                    return self._done(sent, "refused", reply.status_code, code)
                sent.transient[f"{reply.status_code} {code or ''}".strip()] += 1
            if time.monotonic() > give_up:
                return self._done(sent, "unknown", None, "gave_up")
            time.sleep(min(0.05 * sent.attempts, 0.5))

    @staticmethod
    def _done(
        sent: Sent,
        result: str,
        status: int | None,
        code: str | None,
        case_id: str | None = None,
        seqs: Sequence[int] = (),
    ) -> Sent:
        sent.result, sent.status, sent.code = result, status, code
        sent.case_id, sent.sequence_numbers = case_id, list(seqs)
        sent.finished = time.monotonic()
        return sent


class KafkaChannel:
    """Produces envelopes on the commands topic and reads every result from the results
    topic; a command whose result does not come is sent again under the same id."""

    def __init__(
        self, settings: Settings, deadline_s: float = 90.0, resend_after_s: float = 6.0
    ) -> None:
        self.settings = settings
        self.deadline_s = deadline_s
        self.resend_after_s = resend_after_s
        self._tokens = {
            r: token(settings, r, subject=f"load-{r}") for r in {role_for(t) for t in HTTP_ROUTES}
        }
        self._producer: KafkaProducer | None = None
        self._producer_lock = threading.Lock()
        self._results: dict[str, dict[str, Any]] = {}
        self._arrived = threading.Condition()
        self._reset = threading.Event()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read_results, name="load-results", daemon=True)
        self._reader.start()

    def broker_replaced(self) -> None:
        """The broker came back empty: positions and producer state mean nothing now."""
        self._reset.set()
        with self._producer_lock:
            self._drop_producer()

    def close(self) -> None:
        self._stop.set()
        self._reader.join(10)
        with self._producer_lock:
            self._drop_producer()

    def send(self, sent: Sent, envelope: dict[str, Any]) -> Sent:
        envelope = {
            "command_id": sent.causation_id,
            "command_type": sent.command_type,
            "correlation_id": sent.correlation_id,
            **envelope,
        }
        if sent.target is not None:
            envelope["case_id"] = sent.target
        value = orjson.dumps(envelope)
        auth = f"Bearer {self._tokens[role_for(sent.command_type)]}".encode()
        give_up = time.monotonic() + self.deadline_s
        while True:
            sent.attempts += 1
            try:
                self._produce(sent.causation_id.encode(), value, [("authorization", auth)])
            except Exception as exc:  # noqa: BLE001 - broker away: produce again later
                sent.transient[type(exc).__name__] += 1
                time.sleep(0.3)
            else:
                result = self._wait(
                    sent.causation_id, min(self.resend_after_s, give_up - time.monotonic())
                )
                if result is not None:
                    return self._done(sent, result)
                sent.transient["no result yet"] += 1
            if time.monotonic() > give_up:
                sent.result, sent.code, sent.finished = "unknown", "gave_up", time.monotonic()
                return sent

    def _done(self, sent: Sent, result: dict[str, Any]) -> Sent:
        sent.result = result["result"]
        sent.code = (result.get("refusal") or {}).get("code")
        sent.case_id = result.get("case_id")
        sent.sequence_numbers = list(result.get("sequence_numbers") or [])
        sent.finished = time.monotonic()
        return sent

    def _produce(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        with self._producer_lock:
            if self._producer is None:
                self._producer = KafkaProducer(
                    bootstrap_servers=self.settings.kafka_bootstrap,
                    acks="all",
                    linger_ms=2,
                    allow_auto_create_topics=False,
                    max_block_ms=5000,
                    request_timeout_ms=5000,
                    retries=3,
                    # The client's own retry under the same command id is what counts.
                    enable_idempotence=False,
                    client_id="load-commands",
                )
            producer = self._producer
        try:
            producer.send(self.settings.commands_topic, key=key, value=value, headers=headers).get(
                timeout=10
            )
        except Exception:
            with self._producer_lock:
                if self._producer is producer:
                    self._drop_producer()
            raise

    def _drop_producer(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=1)
            except Exception:  # noqa: BLE001 - it may be broken already
                pass
            self._producer = None

    def _wait(self, command_id: str, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + max(timeout, 0.1)
        with self._arrived:
            while command_id not in self._results:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._arrived.wait(left)
            return self._results[command_id]

    def _read_results(self) -> None:
        consumer: KafkaConsumer | None = None
        while not self._stop.is_set():
            try:
                if consumer is None or self._reset.is_set():
                    self._reset.clear()
                    if consumer is not None:
                        consumer.close()
                    consumer = self._results_consumer()
                    if consumer is None:
                        time.sleep(0.3)
                        continue
                for records in consumer.poll(timeout_ms=200).values():
                    with self._arrived:
                        for r in records:
                            self._results[r.key.decode()] = orjson.loads(r.value)
                        self._arrived.notify_all()
            except Exception:  # noqa: BLE001 - the broker went away: start over
                if consumer is not None:
                    try:
                        consumer.close()
                    except Exception:  # noqa: BLE001
                        pass
                consumer = None
                time.sleep(0.3)
        if consumer is not None:
            consumer.close()

    def _results_consumer(self) -> KafkaConsumer | None:
        consumer = KafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=None,
            enable_auto_commit=False,
            allow_auto_create_topics=False,
            client_id="load-results",
        )
        partitions = consumer.partitions_for_topic(self.settings.results_topic)
        if not partitions:
            consumer.close()
            return None
        consumer.assign([TopicPartition(self.settings.results_topic, p) for p in partitions])
        consumer.seek_to_beginning()
        return consumer
