"""A batch of intake commands: executed side by side, claimed and recorded together, yet
each at most once, repeats within the batch answered as their first copy, and commands
on one case applied in the order they came. Real store (SQLite and PostgreSQL), real
broker for the results."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from api.bootstrap import Kosh, bootstrap, store_database
from api.runner import prepare_topics
from consumers.intake import CommandIntake
from infra.settings import Settings
from tests.integration.test_intake_kafka import envelope, read_topic
from tests.support.auth import token
from tests.support.builders import registration_body


@dataclass
class Record:
    """What the intake reads of a Kafka record."""

    value: bytes
    key: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    topic: str = "commands"
    partition: int = 0
    offset: int = 0


@pytest.fixture
def kosh(store_settings: Settings) -> Iterator[tuple[Kosh, CommandIntake]]:
    prepare_topics(store_settings)
    kosh = bootstrap(store_settings)
    intake = CommandIntake(store_settings, kosh.app, store_database(store_settings))
    yield kosh, intake
    intake.close()


def _records(settings: Settings, commands: list[tuple[str, str, dict, dict]]) -> list[Record]:
    auth = [("authorization", f"Bearer {token(settings, 'registrar')}".encode())]
    return [Record(envelope(cid, ctype, payload, **extra), cid.encode(), auth, offset=i)
            for i, (cid, ctype, payload, extra) in enumerate(commands)]


def _results(settings: Settings, expected: int) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in read_topic(settings.kafka_bootstrap, settings.results_topic, expected):
        out.setdefault(r["key"].decode(), []).append(json.loads(r["value"]))
    return out


def test_a_batch_runs_each_command_once_and_answers_repeats_as_the_first(
    kosh: tuple[Kosh, CommandIntake], store_settings: Settings,
) -> None:
    app, intake = kosh[0].app, kosh[1]
    head = app.recorder.max_notification_id() or 0
    batch = _records(store_settings, [
        *[(f"new-{n}", "submit_registration", registration_body(n), {}) for n in range(5)],
        ("new-0", "submit_registration", registration_body(0), {}),   # a repeat
        ("new-1", "submit_registration", registration_body(77), {}),  # the id reused
    ])

    intake.handle_batch(batch)
    intake.handle_batch(batch)  # redelivered whole: nothing runs again

    results = _results(store_settings, 14)
    for n in range(5):
        assert results[f"new-{n}"][0]["result"] == "accepted"
    assert [r == results["new-0"][0] for r in results["new-0"]] == [True, True, True, True]
    refused = [r for r in results["new-1"] if r["result"] == "refused"]
    assert [r["refusal"]["code"] for r in refused] == ["idempotency_key_reused"] * 2
    assert all(r == results["new-1"][0] for r in results["new-1"] if r["result"] == "accepted")
    assert (app.recorder.max_notification_id() or 0) == head + 5, "one event a submission"


def test_commands_on_one_case_in_one_batch_apply_in_the_order_sent(
    kosh: tuple[Kosh, CommandIntake], store_settings: Settings,
) -> None:
    intake = kosh[1]
    submissions = [(f"s-{n}", "submit_registration", registration_body(100 + n), {})
                   for n in range(6)]
    intake.handle_batch(_records(store_settings, submissions))
    cases = {cid: rs[0]["case_id"] for cid, rs in _results(store_settings, 6).items()}

    # Each case approved, then deregistered, in one batch whose records have keys of
    # their own: only the shared case id keeps them in order.
    later = []
    for n in range(6):
        case = cases[f"s-{n}"]
        later.append((f"a-{n}", "approve_registration", {}, {"case_id": case}))
        later.append((f"d-{n}", "deregister_resident", {"reason": "moved_out"},
                      {"case_id": case}))
    intake.handle_batch(_records(store_settings, later))

    results = _results(store_settings, 18)
    for n in range(6):
        assert results[f"a-{n}"][0]["result"] == "accepted", results[f"a-{n}"]
        assert results[f"d-{n}"][0]["result"] == "accepted", results[f"d-{n}"]
