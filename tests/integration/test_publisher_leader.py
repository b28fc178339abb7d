"""Issue 9: exactly one publisher is active across instances; when it dies another takes
over within seconds and nothing is lost or published out of order per aggregate."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition

from api.bootstrap import bootstrap
from domain.commands import ApproveRegistration, SubmitRegistration
from domain.context import Actor, CommandContext
from infra.settings import Settings
from tests.support.builders import registration_body
from tests.support.system import KoshProcess, wait_until

LEADER = '"publisher.leader_acquired"'
STANDBY = '"publisher.standby"'
STARTED = '"publisher.started"'


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    aggregate: str
    seq: int
    version: int


def topic_records(bootstrap_servers: str, topic: str) -> list[Record]:
    """Every record of every partition, in offset order per partition."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False,
                             group_id=None, consumer_timeout_ms=1000)
    try:
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        out = []
        for r in consumer:
            headers = {k: v.decode() for k, v in r.headers}
            out.append(Record(r.partition, r.offset, r.key.decode(),
                              int(headers["kosh-seq"]), int(headers["kosh-version"])))
        return sorted(out, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def first_appearances(records: list[Record]) -> dict[int, list[Record]]:
    """Per partition, each seq at its first offset (a take-over may repeat some)."""
    seen: set[int] = set()
    out: dict[int, list[Record]] = defaultdict(list)
    for r in records:
        if r.seq not in seen:
            seen.add(r.seq)
            out[r.partition].append(r)
    return out


def ctx() -> CommandContext:
    return CommandContext(Actor("loader", "registrar", "test"), dt.date.today(),
                          str(uuid.uuid4()), str(uuid.uuid4()))


def write_registrations(settings: Settings, numbers: range) -> None:
    app = bootstrap(settings).app
    for n in numbers:
        outcome = app.submit_registration(SubmitRegistration(**registration_body(n)), ctx())
        app.approve_registration(outcome.case_id, ApproveRegistration(), ctx())


def stored(settings: Settings) -> set[int]:
    """Every sequence number in the store (an approval stores more than one event)."""
    return set(range(1, (bootstrap(settings).app.recorder.max_notification_id() or 0) + 1))


def test_two_publishers_one_leads_and_the_standby_takes_over_after_kill_9(
    store_settings: Settings,
) -> None:
    settings = store_settings.model_copy(update={"publisher_batch": 5})
    topic, bootstrap_servers = settings.events_topic, settings.kafka_bootstrap or ""
    a = KoshProcess(settings, roles="publisher", name="publisher-a").start()
    b = None
    try:
        wait_until(lambda: LEADER in a.log(), timeout=10, what="the first publisher to lead")
        b = KoshProcess(settings, roles="publisher", name="publisher-b").start()
        wait_until(lambda: STANDBY in b.log(), timeout=10,  # type: ignore[union-attr]
                   what="the second publisher to wait as standby")

        writer = threading.Thread(target=write_registrations, args=(settings, range(150)))
        writer.start()
        try:
            before_kill = wait_until(
                lambda: (rs := topic_records(bootstrap_servers, topic)) and len(rs) >= 40 and rs,
                timeout=30, what="the leader to publish part of the load")
            standby_log = b.log()
            a.kill()
        finally:
            writer.join()

        # While both ran only one published: the standby never started a publisher, and
        # no event went out twice.
        assert STARTED not in standby_log and LEADER not in standby_log
        seqs = [r.seq for r in before_kill]
        assert len(seqs) == len(set(seqs))

        wait_until(lambda: LEADER in b.log(), timeout=10,  # type: ignore[union-attr]
                   what="the standby to take over")
        every = stored(settings)
        records = wait_until(
            lambda: (rs := topic_records(bootstrap_servers, topic))
            and {r.seq for r in rs} >= every and rs,
            timeout=60, what="every stored event on the topic")
        assert {r.seq for r in records} == every
        assert a.log().count(LEADER) == 1 and b.log().count(LEADER) == 1

        for partition, firsts in first_appearances(records).items():
            assert [r.seq for r in firsts] == sorted(r.seq for r in firsts), partition
            versions: dict[str, list[int]] = defaultdict(list)
            for r in firsts:
                versions[r.aggregate].append(r.version)
            for aggregate, vs in versions.items():
                assert vs == sorted(vs) and len(vs) == len(set(vs)), (aggregate, vs)
        assert b.stop() == 0, b.log()[-2000:]
    finally:
        a.kill()
        if b is not None:
            b.kill()


def test_a_stopped_leader_hands_over_and_the_next_continues_from_its_position(
    store_settings: Settings,
) -> None:
    settings = store_settings
    topic, bootstrap_servers = settings.events_topic, settings.kafka_bootstrap or ""
    write_registrations(settings, range(5))
    a = KoshProcess(settings, roles="publisher", name="publisher-a").start()
    b = None
    try:
        # Start-up adds the legal-act registry to the store: read what it holds now.
        wait_until(lambda: len(topic_records(bootstrap_servers, topic)) == len(stored(settings)),
                   timeout=20,
                   what="the first leader to publish the store")
        b = KoshProcess(settings, roles="publisher", name="publisher-b").start()
        wait_until(lambda: STANDBY in b.log(), timeout=10,  # type: ignore[union-attr]
                   what="the second publisher to wait as standby")
        assert a.stop() == 0, a.log()[-2000:]
        wait_until(lambda: LEADER in b.log(), timeout=10,  # type: ignore[union-attr]
                   what="the standby to take over")
        write_registrations(settings, range(5, 10))
        records = wait_until(
            lambda: len(rs := topic_records(bootstrap_servers, topic)) >= len(stored(settings))
            and rs,
            timeout=20, what="the new events on the topic")
        # A clean hand-over republishes nothing: the new leader starts at the saved position.
        assert sorted(r.seq for r in records) == sorted(stored(settings))
        assert b.stop() == 0, b.log()[-2000:]
    finally:
        a.kill()
        if b is not None:
            b.kill()
