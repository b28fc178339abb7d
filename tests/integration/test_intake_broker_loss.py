"""The intake keeps answering after the broker lost its data in the middle of a batch.

The batch was read from the old broker; its results fail to go out (the new broker
knows neither the producer id nor the topics) after the group has rejoined on the new,
empty broker. A nack would seek back to the batch's old offset, past the end of the new
log, and tansu would let the consumer wait there for good: every later command unanswered.
Real broker (replaced by an empty one on the same port), real store."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from api.bootstrap import bootstrap, store_database
from api.runner import prepare_topics
from consumers.intake import IntakeConsumer
from infra.settings import Settings
from tests.conftest import make_settings
from tests.integration.test_intake_kafka import envelope, read_topic
from tests.support.auth import token
from tests.support.builders import registration_body
from tests.support.faults import ReplaceableBroker

KEY = b"one-partition"  # every command on one partition: offsets the new log never reaches
BEFORE = 20


@pytest.fixture
def broker() -> Iterator[ReplaceableBroker]:
    broker = ReplaceableBroker()
    yield broker
    broker.stop()


def send(settings: Settings, ids: list[str], first: int) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    auth = [("authorization", f"Bearer {token(settings, 'registrar')}".encode())]
    for n, cid in enumerate(ids, start=first):
        value = envelope(cid, "submit_registration", registration_body(n))
        producer.send(settings.commands_topic, key=KEY, value=value, headers=auth)
    producer.flush(10)
    producer.close()


def answered(settings: Settings, expected: int, timeout_s: float) -> dict[str, Any]:
    records = read_topic(settings.kafka_bootstrap, settings.results_topic, expected, timeout_s)
    return {r["key"].decode(): json.loads(r["value"]) for r in records}


class Running:
    """The intake consumer on an event loop of its own, as `kosh intake` runs it."""

    def __init__(self, consumer: IntakeConsumer) -> None:
        self.consumer = consumer
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(consumer.start(), self.loop).result(30)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.consumer.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_commands_sent_after_the_broker_lost_its_data_mid_batch_are_answered(
    tmp_path: Path, broker: ReplaceableBroker,
) -> None:
    settings = make_settings(tmp_path, broker.bootstrap)
    prepare_topics(settings)
    kosh = bootstrap(settings)
    consumer = IntakeConsumer(settings, kosh.app, store_database(settings))
    intake = consumer.intake
    held, release = threading.Event(), threading.Event()
    handle_batch = intake.handle_batch

    def handle_held(records: Any) -> None:
        # The batch holding the last old command waits until the broker is replaced and
        # the group has rejoined; then it runs, and producing its result fails.
        if not release.is_set() and any(r.key == KEY and b'"old-last"' in r.value
                                         for r in records):
            held.set()
            assert release.wait(60)
        handle_batch(records)

    intake.handle_batch = handle_held  # type: ignore[method-assign]
    running = Running(consumer)
    try:
        send(settings, [f"old-{n}" for n in range(BEFORE)], 0)
        assert len(answered(settings, BEFORE, timeout_s=30)) == BEFORE
        send(settings, ["old-last"], BEFORE)  # alone in its batch, at offset BEFORE
        assert held.wait(30), "the intake never read the last old command"

        broker.replace(0.3)
        prepare_topics(settings)  # what the publisher does on finding the broker empty
        time.sleep(2 * settings.kafka_session_timeout_ms / 1000 + 2)  # the group rejoins
        release.set()

        send(settings, ["new-0", "new-1", "new-2"], 100)
        results = answered(settings, 4, timeout_s=30)
        assert {"new-0", "new-1", "new-2"} <= results.keys(), (
            f"answered on the new broker: {sorted(results)}"
        )
        assert all(results[f"new-{n}"]["result"] == "accepted" for n in range(3))
        assert results.get("old-last", {}).get("result") == "accepted", (
            "the held command's result must reach the new broker too"
        )
    finally:
        running.stop()
        intake.close()
