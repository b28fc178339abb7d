"""Issue 8, bad input everywhere: hypothesis-made command payloads over HTTP and over the
Kafka command intake. Each is accepted, or refused with a 4xx / a dead letter; never a
5xx, a crash, or an intake that stops taking commands."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from infra.settings import Settings
from tests.conftest import make_settings
from tests.support.auth import token
from tests.support.builders import registration_body
from tests.support.load import HTTP_ROUTES, role_for
from tests.support.load_garbage import VALID, bodies, json_values
from tests.support.load_mix import LoadMix
from tests.support.system import KoshProcess

COMMANDS = sorted(HTTP_ROUTES)
HYPOTHESIS = settings(
    deadline=None, database=None, max_examples=150, suppress_health_check=list(HealthCheck)
)


@pytest.fixture(scope="module")
def running(
    tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str
) -> Iterator[tuple[KoshProcess, dict[str, str]]]:
    """One process with the API, the intake and the pipeline (shared by both tests); cases
    of every kind exist, so commands on a real case are tried too."""
    system_settings = make_settings(
        tmp_path_factory.mktemp("bad-input"), kafka_bootstrap, idempotency_claim_timeout_s=3.0
    )
    system = KoshProcess(system_settings, roles="api,intake,publisher,projections").start()
    load = LoadMix(system_settings, [system.base_url], seed=1)
    try:
        load.setup()
        rng = __import__("random").Random(1)
        cases = {
            "registration": load.send(
                rng, "submit_registration", registration_body(1), channel="http"
            ).case_id,
            "relocation": load.send(
                rng, "apply_for_relocation", VALID["apply_for_relocation"], channel="http"
            ).case_id,
            "proposal": next(
                s.case_id for s in load.ledger.sent if s.command_type == "draft_proposal"
            ),
        }
        assert all(cases.values()), load.ledger.sent
        yield system, {k: str(v) for k, v in cases.items()}
    finally:
        load.close()
        system.kill()


def encode(value: Any) -> bytes:
    """JSON as any sender might write it: big integers, unicode, nothing refused."""
    return json.dumps(value).encode()


def case_kind(command_type: str) -> str:
    """The kind of case a command acts on, from its route (/relocations/{id}/arrival)."""
    return HTTP_ROUTES[command_type].split("/")[1].rstrip("s")


def test_hypothesis_payloads_over_http_get_an_answer_or_a_4xx_never_a_5xx(
    running: tuple[KoshProcess, dict[str, str]],
) -> None:
    system, cases = running
    client = httpx.Client(base_url=system.base_url, timeout=15)
    tokens = {t: token(system.settings, role_for(t)) for t in COMMANDS}
    answered: list[int] = []

    @HYPOTHESIS
    @given(
        command_type=st.sampled_from(COMMANDS),
        data=st.data(),
        target=st.sampled_from(["real", "unknown", "garbage"]),
        auth=st.sampled_from(["right", "right", "right", "none", "forged", "wrong role"]),
        raw=st.none() | st.binary(max_size=200),
    )
    def post(
        command_type: str, data: st.DataObject, target: str, auth: str, raw: bytes | None
    ) -> None:
        case = {
            "real": cases[case_kind(command_type)] if "{id}" in HTTP_ROUTES[command_type] else "",
            "unknown": str(uuid.uuid4()),
            "garbage": "not-a-case",
        }[target]
        path = HTTP_ROUTES[command_type].format(id=case)
        headers = {"Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json"}
        if auth != "none":
            other = "auditor" if auth == "wrong role" else role_for(command_type)
            signed = token(system.settings, other) if auth != "right" else tokens[command_type]
            headers["Authorization"] = f"Bearer {signed}{'x' if auth == 'forged' else ''}"
        content = raw if raw is not None else encode(data.draw(bodies(command_type)))
        reply = client.post(path, content=content, headers=headers)
        answered.append(reply.status_code)
        assert reply.status_code < 500, (
            f"{command_type} {path} {content[:300]!r}: {reply.status_code} {reply.text[:500]}"
        )
        if reply.status_code >= 400:
            assert reply.json().get("error") or reply.json().get("detail"), reply.text

    post()
    print(f"http: {len(answered)} requests, statuses {dict(Counter(answered))}")
    # Now and then a mutation is still a valid command: accepted, and that is fine.
    assert any(s >= 400 for s in answered)
    assert system.process is not None and system.process.poll() is None, "the API died"
    ok = client.post(
        "/registrations",
        json=registration_body(4242),
        headers={"Authorization": f"Bearer {tokens['submit_registration']}"},
    )
    assert ok.status_code == 201, ok.text


class Topics:
    """Everything on the results and dead-letter topics, read from the beginning."""

    def __init__(self, settings: Settings) -> None:
        self.consumer = KafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False
        )
        parts = [
            TopicPartition(t, p)
            for t in (settings.results_topic, settings.dead_letter_topic)
            for p in self.consumer.partitions_for_topic(t) or ()
        ]
        self.consumer.assign(parts)
        self.consumer.seek_to_beginning()
        self.settings = settings
        self.results: dict[str, dict[str, Any]] = {}
        self.dead: set[tuple[int, int]] = set()

    def poll(self) -> None:
        for records in self.consumer.poll(timeout_ms=200).values():
            for r in records:
                if r.topic == self.settings.results_topic:
                    self.results[r.key.decode()] = orjson.loads(r.value)
                else:
                    h = {k: v.decode() for k, v in r.headers}
                    self.dead.add(
                        (int(h["kosh-dlq-source-partition"]), int(h["kosh-dlq-source-offset"]))
                    )


def test_hypothesis_commands_on_kafka_each_get_a_result_or_a_dead_letter_and_the_intake_goes_on(
    running: tuple[KoshProcess, dict[str, str]],
) -> None:
    system, cases = running
    settings_ = system.settings
    producer = KafkaProducer(bootstrap_servers=settings_.kafka_bootstrap, acks="all")
    sent: list[tuple[str | None, int, int, bytes]] = []  # command id, partition, offset, value

    def envelope(command_type: str, payload: Any, case: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "command_id": f"hyp-{uuid.uuid4().hex}",
            "command_type": command_type,
            "payload": payload,
        }
        if case is not None:
            out["case_id"] = case
        return out

    @HYPOTHESIS
    @given(
        command_type=st.sampled_from(COMMANDS),
        data=st.data(),
        shape=st.sampled_from(["broken payload", "broken envelope", "any json", "bytes"]),
        auth=st.sampled_from(["right", "right", "none", "forged", "wrong role"]),
        key=st.none() | st.binary(max_size=20),
    )
    def produce(
        command_type: str, data: st.DataObject, shape: str, auth: str, key: bytes | None
    ) -> None:
        case = cases[case_kind(command_type)] if "{id}" in HTTP_ROUTES[command_type] else None
        good = envelope(command_type, VALID[command_type], case)
        if shape == "broken payload":
            value: Any = envelope(command_type, data.draw(bodies(command_type)), case)
        elif shape == "broken envelope":
            from tests.support.load_garbage import broken

            value = data.draw(broken(good))
        elif shape == "any json":
            value = data.draw(json_values)
        else:
            value = data.draw(st.binary(max_size=300))
        raw = value if isinstance(value, bytes) else encode(value)
        headers = []
        if auth != "none":
            role = "auditor" if auth == "wrong role" else role_for(command_type)
            signed = token(settings_, role) + ("x" if auth == "forged" else "")
            headers.append(("authorization", f"Bearer {signed}".encode()))
        meta = producer.send(settings_.commands_topic, key=key, value=raw, headers=headers).get(
            timeout=10
        )
        cid = value.get("command_id") if isinstance(value, dict) else None
        sent.append((cid if isinstance(cid, str) else None, meta.partition, meta.offset, raw))

    produce()
    # A valid command after all of that: the intake still takes commands.
    check_id = f"after-{uuid.uuid4().hex}"
    producer.send(
        settings_.commands_topic,
        key=check_id.encode(),
        value=orjson.dumps(
            {
                "command_id": check_id,
                "command_type": "submit_registration",
                "payload": registration_body(4343),
            }
        ),
        headers=[("authorization", f"Bearer {token(settings_, 'registrar')}".encode())],
    ).get(timeout=10)
    producer.close()

    topics = Topics(settings_)

    def unanswered() -> list[tuple[str | None, int, int, bytes]]:
        topics.poll()
        return [s for s in sent if not (s[0] in topics.results or (s[1], s[2]) in topics.dead)]

    deadline = time.monotonic() + 90
    while (left := unanswered()) or check_id not in topics.results:
        assert time.monotonic() < deadline, (
            f"{len(left)} of {len(sent)} records got neither a result nor a dead letter, "
            f"e.g. {left[:3]}; check command answered: {check_id in topics.results}"
        )
    assert topics.results[check_id]["result"] == "accepted", topics.results[check_id]
    failures = [
        r
        for r in topics.results.values()
        if (r.get("refusal") or {}).get("code") == "execution_failed"
    ]
    assert not failures, f"commands that broke the intake's executor: {failures[:3]}"
    assert system.process is not None and system.process.poll() is None, "the intake died"
    outcomes = Counter(
        topics.results[s[0]]["result"] if s[0] in topics.results else "dead letter only"
        for s in sent
    )
    print(f"kafka: {len(sent)} records: {dict(outcomes)}, {len(topics.dead)} dead letters")
    assert outcomes["rejected"] > 0 and outcomes["dead letter only"] > 0, outcomes
