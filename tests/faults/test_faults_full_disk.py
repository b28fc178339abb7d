"""Issue 8, a full disk under the registers, at the consumer's own level: SQLite's page
limit gives a real SQLITE_FULL wherever the test runs (the load run mounts a full file
system instead, which needs root). The consumer must stop applying, park and skip
nothing, and resume where it stopped once there is room again."""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from api.bootstrap import all_projections, build_mapper, build_projector
from consumers.parking import ParkingProjector
from consumers.projections import delivered
from domain.commands import ApproveRegistration, SubmitRegistration
from domain.context import Actor, CommandContext
from infra.application import KoshApplication
from infra.publisher import headers_for
from infra.sql import Database
from tests.conftest import make_settings
from tests.support.builders import registration_body


class PageLimitedDatabase(Database):
    """The registers' SQLite database on a disk that holds `max_pages` pages."""

    max_pages: int | None = None

    def _connect(self) -> Any:
        conn = super()._connect()
        self.apply_limit(conn)
        return conn

    def apply_limit(self, conn: Any = None) -> None:
        # 0x7FFFFFFE is SQLite's own ceiling: "no limit" here.
        pages = self.max_pages if self.max_pages is not None else 0x7FFFFFFE
        (conn or self.connection()).execute(f"PRAGMA max_page_count = {pages}")

    def pages_in_use(self) -> int:
        return int(self.connection().execute("PRAGMA page_count").fetchone()[0])


def records_of(app: KoshApplication, topic: str) -> list[SimpleNamespace]:
    """The store's events as the publisher puts them on Kafka."""
    return [
        SimpleNamespace(
            key=str(n.originator_id).encode(),
            value=n.state,
            headers=headers_for(n),
            topic=topic,
            partition=0,
            offset=i,
        )
        for i, n in enumerate(app.recorder.select_notifications(start=1, limit=10_000))
    ]


def test_registers_on_a_full_disk_stop_without_skipping_and_resume_when_space_returns(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, "127.0.0.1:1")  # no broker: nothing is dead-lettered
    app = KoshApplication(settings)
    ctx = CommandContext(
        Actor("r-1", "registrar", "akimat"), dt.date(2026, 3, 1), "corr", str(uuid.uuid4())
    )
    for n in range(120):
        case = app.submit_registration(SubmitRegistration(**registration_body(n)), ctx)
        app.approve_registration(case.case_id, ApproveRegistration(), ctx)
    records = records_of(app, settings.events_topic)
    db = PageLimitedDatabase(None, settings.data_dir / "registers.sqlite")
    consumer = ParkingProjector(build_projector(settings, db), settings, "projections")
    mapper = build_mapper(settings)

    assert consumer.apply(records[:40], delivered, mapper) == 40 * len(all_projections())
    db.max_pages = db.pages_in_use()
    db.apply_limit()
    for _ in range(3):  # each redelivery meets the same full disk
        with pytest.raises(sqlite3.OperationalError, match="full"):
            consumer.apply(records[40:], delivered, mapper)
    applied = {
        r[0]: r[1]
        for r in db.query("SELECT projection, COUNT(*) FROM projection_applied GROUP BY projection")
    }
    assert set(applied.values()) == {40}, "a batch that failed on the full disk left rows"
    assert db.query("SELECT COUNT(*) FROM projection_parked") == [(0,)], "events were parked"

    db.max_pages = None
    db.apply_limit()
    # A redelivery from an earlier offset: the 10 already applied are skipped, not doubled.
    total = len(records)
    assert consumer.apply(records[30:], delivered, mapper) == (total - 40) * len(all_projections())
    applied = {
        r[0]: r[1]
        for r in db.query("SELECT projection, COUNT(*) FROM projection_applied GROUP BY projection")
    }
    assert applied == {p.name: total for p in all_projections()}
    assert db.query("SELECT COUNT(*) FROM residents") == [(120,)]
