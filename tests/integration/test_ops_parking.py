"""Issue 5: an event a projection cannot apply is parked with its reason and the others go
on; a transient failure (database locked) parks nothing and skips nothing."""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from api.bootstrap import bootstrap, build_mapper, registers_database, store_database
from consumers.ops_monitor import OpsMonitor
from consumers.parking import ParkingProjector
from consumers.projections import delivered
from domain.commands import SubmitRegistration
from domain.context import Actor, CommandContext
from infra.publisher import headers_for
from infra.settings import Settings
from infra.sql import Cursor
from infra.topics import admin_client, ensure_topics
from projections.projector import Projector
from tests.support.builders import iin_for, registration_body
from tests.support.kafka_read import topic_headers


@dataclass
class Record:
    """A consumed record as the projection consumer sees one (topic, offset, key, value)."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


class Counting:
    name = "counting"
    ddl = ["CREATE TABLE IF NOT EXISTS counted (seq BIGINT PRIMARY KEY)"]

    def apply(self, cur: Cursor, seq: int, event: Any) -> None:
        cur.execute("INSERT INTO counted (seq) VALUES (?)", (seq,))


class ChokesOnSecond:
    """A register with a bug: it cannot handle the second event."""

    name = "choking"
    ddl: list[str] = []

    def apply(self, cur: Cursor, seq: int, event: Any) -> None:
        if seq == 2:
            raise KeyError(f"no row for {event.person['iin']}")


class Locked:
    name = "locked"
    ddl: list[str] = []
    locked = True

    def apply(self, cur: Cursor, seq: int, event: Any) -> None:
        if self.locked:
            raise sqlite3.OperationalError("database is locked")


def stored_records(settings: Settings, n: int) -> tuple[Any, list[Record]]:
    kosh = bootstrap(settings)
    ctx = CommandContext(Actor("t", "registrar", "t"), dt.date.today(), "c", str(uuid.uuid4()))
    for i in range(n):
        kosh.app.submit_registration(SubmitRegistration(**registration_body(i)), ctx)
    notes = kosh.app.recorder.select_notifications(start=1, limit=n)
    return kosh, [Record(settings.events_topic, 0, i, str(x.originator_id).encode(), x.state,
                         headers_for(x)) for i, x in enumerate(notes)]


@pytest.fixture
def topics(settings: Settings) -> Settings:
    admin = admin_client(settings)
    ensure_topics(admin, settings)
    admin.close()
    return settings


def test_a_failing_projection_parks_the_event_and_the_others_keep_going(
    topics: Settings,
) -> None:
    settings = topics
    kosh, records = stored_records(settings, 3)
    db = registers_database(settings)
    parking = ParkingProjector(Projector(db, [Counting(), ChokesOnSecond()]), settings,
                               "projections")
    try:
        parking.apply(records, delivered, build_mapper())
        parking.apply(records, delivered, build_mapper())  # redelivered: parked once
    finally:
        parking.close()

    assert [r[0] for r in db.query("SELECT seq FROM counted ORDER BY seq")] == [1, 2, 3]
    (parked,) = parking.parked.listing()
    assert (parked["projection"], parked["seq"], parked["reason"]) == ("choking", 2, "KeyError")
    assert parked["event_type"] == "RegistrationCase.Submitted"
    (stored_detail,) = db.query("SELECT detail FROM projection_parked")
    assert iin_for(1) not in stored_detail[0], "digits are masked even in the database"

    (letter,) = topic_headers(settings.kafka_bootstrap, settings.dead_letter_topic)
    assert letter["kosh-dlq-reason"] == "projection_failed"
    assert letter["kosh-dlq-stage"] == "projection:choking"
    assert letter["kosh-dlq-source-topic"] == settings.events_topic
    assert (letter["kosh-dlq-source-offset"], letter["kosh-seq"]) == ("1", "2")
    assert letter["kosh-dlq-detail"] == "KeyError"

    monitor = OpsMonitor(settings, store_database(settings), db,
                         kosh.app.recorder, ["counting", "choking"])
    snapshot = monitor.snapshot()
    choking = next(c for c in snapshot.components if c.component == "projection:choking")
    assert (choking.failed, choking.lag, choking.last_error) == (1, 0, "KeyError")


def test_a_locked_database_parks_nothing_and_the_batch_applies_once_it_clears(
    topics: Settings,
) -> None:
    settings = topics
    _, records = stored_records(settings, 2)
    db = registers_database(settings)
    locked = Locked()
    parking = ParkingProjector(Projector(db, [Counting(), locked]), settings, "projections")
    try:
        with pytest.raises(sqlite3.OperationalError):
            parking.apply(records, delivered, build_mapper())
        assert db.query("SELECT COUNT(*) FROM counted") == [(0,)], "nothing half-applied"
        assert parking.parked.counts() == {}
        locked.locked = False
        assert parking.apply(records, delivered, build_mapper()) == 4
    finally:
        parking.close()
    assert topic_headers(settings.kafka_bootstrap, settings.dead_letter_topic, 0.5) == []
