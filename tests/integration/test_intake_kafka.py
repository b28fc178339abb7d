"""Issue 5: internal services send commands over Kafka and read one outcome per command;
repeats change nothing, malformed messages become dead letters, a crash between executing
and committing stores nothing twice."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from api.bootstrap import bootstrap
from infra.settings import Settings
from tests.support.auth import token
from tests.support.builders import iin_for, registration_body
from tests.support.system import KoshProcess, wait_until

# ---- the client: kafka-python and the standard library only, as an outside service ----

def send_all(bootstrap_servers: str, topic: str, messages: list[tuple[str, bytes]],
             token: str, unauthenticated: frozenset[str] = frozenset()) -> None:
    """Sends as an authenticated service, except the keys in `unauthenticated`."""
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all",
                             enable_idempotence=True, linger_ms=5)
    for key, value in messages:
        headers = [] if key in unauthenticated else [("authorization", f"Bearer {token}".encode())]
        producer.send(topic, key=key.encode(), value=value, headers=headers)
    producer.flush(30)
    producer.close()


def read_topic(bootstrap_servers: str, topic: str, expected: int,
               timeout_s: float = 90) -> list[dict]:
    """Reads from the beginning until `expected` records arrived (or the deadline)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None,
                             enable_auto_commit=False, consumer_timeout_ms=500)
    partitions = consumer.partitions_for_topic(topic) or set()
    consumer.assign([TopicPartition(topic, p) for p in partitions])
    consumer.seek_to_beginning()
    out: list[dict] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < expected and time.monotonic() < deadline:
        for record in consumer:
            out.append({"key": record.key, "value": record.value,
                        "headers": {k: v.decode() for k, v in record.headers}})
    consumer.close()
    return out


def envelope(command_id: str, command_type: str, payload: dict, **extra: object) -> bytes:
    return json.dumps({"command_id": command_id, "command_type": command_type,
                       "payload": payload, **extra}).encode()

# ---- fixtures and helpers that may use the project ----


@pytest.fixture
def system(store_settings: Settings) -> Iterator[KoshProcess]:
    kosh = KoshProcess(store_settings).start()
    yield kosh
    assert kosh.stop() == 0, kosh.log()[-2000:]


def store_head(settings: Settings) -> int:
    kosh = bootstrap(settings)  # held: the store closes when its application is collected
    return kosh.app.recorder.max_notification_id() or 0


def stored_legal_act_events(settings: Settings) -> list[Any]:
    """What start-up seeded: the legal-act registry's events."""
    kosh = bootstrap(settings)  # held while reading, as in store_head
    return [n for n in kosh.app.recorder.select_notifications(start=1, limit=1000)
            if ":LegalAct." in n.topic]


def small_flat(n: int) -> dict:
    """§10: 20 m² for two occupants of akimat-leased housing is refused."""
    return registration_body(n, housing={"type": "akimat_leased", "useful_area_m2": 20.0,
                                         "occupants_after_registration": 2})


def test_thousand_commands_get_thousand_outcomes_with_repeats_and_malformed(
    system: KoshProcess,
) -> None:
    s = system.settings
    seeded = store_head(s)  # the legal-act registry, stored at start-up
    messages: list[tuple[str, bytes]] = []
    accepted_ids, s10_ids, missing_case_ids, rejected_ids = [], [], [], []
    for n in range(550):
        cid = f"submit-{n}"
        accepted_ids.append(cid)
        messages.append((cid, envelope(cid, "submit_registration", registration_body(n))))
    for n in range(550, 600):
        cid = f"small-{n}"
        s10_ids.append(cid)
        messages.append((cid, envelope(cid, "submit_registration", small_flat(n))))
    for n in range(50):
        cid = f"approve-missing-{n}"
        missing_case_ids.append(cid)
        messages.append((cid, envelope(cid, "approve_registration", {},
                                       case_id=str(uuid.uuid4()))))
    repeats = messages[:150] + messages[560:570] + messages[600:640]  # 200 repeats
    messages += repeats
    for n in range(50):
        cid = f"unknown-{n}"
        rejected_ids.append(cid)
        messages.append((cid, envelope(cid, "grant_citizenship", {})))
    for n in range(600, 650):
        cid = f"bad-iin-{n}"
        rejected_ids.append(cid)
        body = registration_body(n)
        body["person"]["iin"] = iin_for(n)[:11] + str((int(iin_for(n)[11]) + 1) % 10)
        messages.append((cid, envelope(cid, "submit_registration", body)))
    for n in range(50):
        cid = f"no-token-{n}"
        rejected_ids.append(cid)
        messages.append((cid, envelope(cid, "submit_registration", registration_body(700 + n))))
    assert len(messages) == 1000
    not_json = [(f"junk-{n}", b"\x00not json " + iin_for(900 + n).encode()) for n in range(10)]
    send_all(s.kafka_bootstrap, s.commands_topic, messages + not_json,
             token(s, "registrar", subject="crm-service"),
             unauthenticated=frozenset(f"no-token-{n}" for n in range(50)))

    outcomes = read_topic(s.kafka_bootstrap, s.results_topic, expected=1000)
    assert len(outcomes) == 1000
    by_id: dict[str, list[dict]] = {}
    for o in outcomes:
        by_id.setdefault(o["key"].decode(), []).append(json.loads(o["value"]))
    assert len(by_id) == 800

    for cid in accepted_ids:
        firsts = by_id[cid]
        assert firsts[0]["result"] == "accepted", firsts
        assert all(o == firsts[0] for o in firsts), "a repeat returns the original outcome"
    repeated = {key for key, _ in repeats}
    assert all(len(by_id[cid]) == 2 for cid in repeated)
    for cid in s10_ids:
        assert by_id[cid][0]["result"] == "refused"
        assert by_id[cid][0]["refusal"]["clause"] == "§10"
    for cid in missing_case_ids:
        assert by_id[cid][0]["refusal"]["code"] == "not_found"
    reasons = Counter(by_id[cid][0]["refusal"]["code"] for cid in rejected_ids)
    assert reasons == {"unknown_command_type": 50, "invalid_payload": 50,
                       "unauthenticated": 50}
    assert all(by_id[cid][0]["result"] == "rejected" for cid in rejected_ids)
    seqs = [seq for cid in accepted_ids for seq in by_id[cid][0]["sequence_numbers"]]
    assert sorted(seqs) == list(range(seeded + 1, seeded + 551)), \
        "one event per accepted command, no more"
    assert store_head(s) == seeded + 550

    dead = read_topic(s.kafka_bootstrap, s.dead_letter_topic, expected=160)
    assert len(dead) == 160
    assert Counter(d["headers"]["kosh-dlq-reason"] for d in dead) == {
        "unknown_command_type": 50, "invalid_payload": 50, "unauthenticated": 50,
        "not_json": 10}
    for d in dead:
        h = d["headers"]
        assert h["kosh-dlq-source-topic"] == s.commands_topic
        assert int(h["kosh-dlq-source-partition"]) >= 0
        assert int(h["kosh-dlq-source-offset"]) >= 0
    bad = [d for d in dead if d["headers"]["kosh-dlq-reason"] == "invalid_payload"]
    assert {d["headers"]["kosh-dlq-detail"] for d in bad} == {"payload.person.iin: value_error"}
    all_headers = json.dumps([d["headers"] for d in dead])
    assert not any(iin_for(n) in all_headers for n in range(1000))
    values = b"".join(d["value"] for d in dead)
    assert b'"[redacted]"' in values, "dead letters keep the command's shape"
    assert not any(iin_for(n)[:11].encode() in values for n in range(1000)), \
        "no IIN in clear on the dead-letter topic"
    assert b"Bearer" not in values

    api = system.client(timeout=10)
    text = api.get("/metrics").text
    assert 'kosh_command_outcomes{command_type="submit_registration",result="accepted"} 550.0' \
        in text
    assert 'kosh_dead_letters{reason="not_json",stage="intake"} 10.0' in text


def test_intake_killed_after_executing_stores_nothing_twice(store_settings: Settings) -> None:
    crashing = store_settings.model_copy(update={"intake_exit_after_execute": True,
                                                 "idempotency_claim_timeout_s": 1.0})
    intake = KoshProcess(crashing, roles="intake", name="intake-crash").start()
    send_all(crashing.kafka_bootstrap, crashing.commands_topic,
             [("c-1", envelope("c-1", "submit_registration", registration_body(1)))],
             token(crashing, "registrar"))
    wait_until(lambda: intake.process.poll() is not None, timeout=30, what="intake to crash")
    assert intake.process.returncode == -9
    seeded = len(stored_legal_act_events(crashing))
    assert store_head(crashing) == seeded + 1, "the command executed before the crash"
    assert read_topic(crashing.kafka_bootstrap, crashing.results_topic, 1, timeout_s=2) == []

    healthy = crashing.model_copy(update={"intake_exit_after_execute": False})
    restarted = KoshProcess(healthy, roles="intake", name="intake").start()
    try:
        (outcome,) = read_topic(healthy.kafka_bootstrap, healthy.results_topic, 1)
        body = json.loads(outcome["value"])
        assert body["result"] == "accepted"
        assert body["sequence_numbers"] == [seeded + 1]
        send_all(healthy.kafka_bootstrap, healthy.commands_topic,
                 [("c-1", envelope("c-1", "submit_registration", registration_body(1)))],
                 token(healthy, "registrar"))
        outcomes = read_topic(healthy.kafka_bootstrap, healthy.results_topic, 2)
        assert [json.loads(o["value"]) for o in outcomes] == [body, body]
        assert store_head(healthy) == seeded + 1, "no duplicate events after the restart"
    finally:
        assert restarted.stop() == 0, restarted.log()[-2000:]
