"""Personal data on the real store and broker: sealed per subject in stored events and on
Kafka, erasable by a data protection officer only, while the audit trail still verifies."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator

import orjson
import pytest
from kafka import KafkaProducer

from api.bootstrap import store_database
from consumers.command_sealing import seal_payload
from infra.settings import Settings
from tests.support.auth import token
from tests.support.builders import iin_for, registration_body
from tests.support.kafka_read import topic_values
from tests.support.system import REPO, KoshProcess, settings_env, wait_until

PERSON = 41
LEGAL_BASIS = "Law of the RK on personal data, art. 18"


def kosh_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=REPO,
                          env=settings_env(settings), capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def system(settings: Settings) -> Iterator[KoshProcess]:
    kosh = KoshProcess(settings).start()
    yield kosh
    assert kosh.stop() == 0, kosh.log()[-2000:]


def test_personal_fields_never_leave_the_process_in_clear_and_erasure_keeps_the_trail(
    system: KoshProcess, settings: Settings,
) -> None:
    registrar = system.client("registrar")
    body = registration_body(PERSON, address={"district": "Medeu", "line": "Dostyk 41, flat 7"})
    family_name = body["person"]["family_name"]
    case_id = registrar.post("/registrations", json=body).json()["case_id"]
    assert registrar.post(f"/registrations/{case_id}/approve").status_code == 200
    resident = wait_until(lambda: (r := registrar.get(f"/residents/{iin_for(PERSON)}")
                                   ).status_code == 200 and r.json(),
                          what="the resident in the register")
    assert family_name in str(resident), "authorised readers see the data"

    secrets = [iin_for(PERSON).encode(), family_name.encode(), b"Dostyk 41"]
    stored = store_database(settings).query("SELECT state FROM stored_events")
    assert not [s for s in secrets if any(s in bytes(row[0]) for row in stored)], \
        "stored events hold personal fields only sealed"
    on_kafka = wait_until(lambda: (v := topic_values(settings.kafka_bootstrap,
                                                     settings.events_topic)) and v,
                          what="events on Kafka")
    assert not [s for s in secrets if any(s in value for value in on_kafka)]
    assert not [s for s in secrets if s.decode() in system.log()], "nor do the logs"

    # Only a data protection officer erases; the auditor reads everything but writes nothing.
    erasure = {"subject": iin_for(PERSON), "legal_basis": LEGAL_BASIS}
    assert system.client("auditor").post("/data-subjects/erasures",
                                          json=erasure).status_code == 403
    dpo = system.client("data_protection_officer")
    erased = dpo.post("/data-subjects/erasures", json=erasure)
    assert erased.status_code == 201, erased.text
    assert dpo.post("/data-subjects/erasures", json=erasure).status_code == 409

    auditor = system.client("auditor")
    history = auditor.get(f"/cases/{case_id}/history").json()["events"]
    person = history[0]["data"]["application"]["person"] if "application" in \
        history[0]["data"] else history[0]["data"]["person"]
    assert person["iin"].startswith("erased:") and person["family_name"] == "[erased]"
    wait_until(lambda: registrar.get(f"/residents/{iin_for(PERSON)}").status_code == 404,
               what="the IIN to leave the register")
    listed = wait_until(lambda: [r for r in registrar.get(
        "/residents", params={"district": "Medeu"}).json() if r["family_name"] == "[erased]"],
        what="the register to show the subject as erased")
    assert listed[0]["iin"].startswith("erased:")
    erasure_events = auditor.get(f"/cases/{erased.json()['case_id']}/history").json()["events"]
    assert erasure_events[0]["type"] == "Erasure.Recorded"
    assert erasure_events[0]["data"]["legal_basis"] == LEGAL_BASIS
    assert erasure_events[0]["actor"]["role"] == "data_protection_officer"

    again = registrar.post("/registrations", json=registration_body(PERSON))
    assert again.status_code == 409 and "erased" in again.json()["error"]["message"]

    verify = kosh_cli(settings, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_kosh_erase_cli_needs_a_data_protection_officer(system: KoshProcess,
                                                        settings: Settings) -> None:
    registrar = system.client("registrar")
    registrar.post("/registrations", json=registration_body(PERSON + 1))
    args = ("erase", iin_for(PERSON + 1), "--legal-basis", LEGAL_BASIS, "--token")
    refused = kosh_cli(settings, *args, token(settings, "auditor"))
    assert refused.returncode == 3 and "data_protection_officer" in refused.stderr
    done = kosh_cli(settings, *args, token(settings, "data_protection_officer"))
    assert done.returncode == 0, done.stderr
    assert "erased" in done.stdout


def test_commands_with_personal_data_travel_sealed_on_kafka(settings: Settings) -> None:
    key = os.urandom(32)
    sealed_settings = settings.model_copy(
        update={"command_key": base64.b64encode(key).decode()})
    intake = KoshProcess(sealed_settings, roles="intake,publisher,projections").start()
    try:
        auth = [("authorization", f"Bearer {token(settings, 'registrar')}".encode())]
        body = registration_body(PERSON + 2)
        sealed = {"command_id": "s-1", "command_type": "submit_registration",
                  "sealed_payload": seal_payload(key, "s-1", body)}
        clear = {"command_id": "c-1", "command_type": "submit_registration", "payload": body}
        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        for message in (sealed, clear):
            producer.send(settings.commands_topic, key=message["command_id"].encode(),
                          value=orjson.dumps(message), headers=auth)
        producer.flush(30)
        producer.close()

        def both_results() -> dict[str, dict] | None:
            values = topic_values(settings.kafka_bootstrap, settings.results_topic)
            found = {orjson.loads(v)["command_id"]: orjson.loads(v) for v in values}
            return found if len(found) == 2 else None

        results = wait_until(both_results, timeout=30, what="both results")
        assert results["s-1"]["result"] == "accepted"
        assert results["c-1"]["result"] == "rejected"
        assert results["c-1"]["refusal"]["code"] == "personal_data_in_clear"
        sealed_only = topic_values(settings.kafka_bootstrap, settings.commands_topic)[:1]
        everything_kosh_wrote = b"".join(
            v for topic in (settings.events_topic, settings.results_topic,
                            settings.dead_letter_topic)
            for v in topic_values(settings.kafka_bootstrap, topic))
        for secret in (body["person"]["iin"].encode(), body["person"]["family_name"].encode()):
            assert secret not in sealed_only[0]
            assert secret not in everything_kosh_wrote
    finally:
        assert intake.stop() == 0, intake.log()[-2000:]
