"""The audit trail consumer (`kosh up --role projections`) keeps the trail level with the
store from the events topic, survives kill -9 and redelivery without appending an event
twice or skipping one, and signs a tree head whenever the trail has grown."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from api.bootstrap import bootstrap
from domain.commands import ApproveRegistration, SubmitRegistration
from domain.context import Actor, CommandContext
from infra.application import KoshApplication
from infra.settings import Settings
from projections.audit.heads import TreeHeads
from projections.audit.leaves import read_rows, select, store_db
from projections.audit.trail import audit_database
from projections.audit.verify import verify_store
from tests.conftest import make_settings
from tests.support.builders import registration_body
from tests.support.system import KoshProcess, wait_until


def register(app: KoshApplication, n: int) -> None:
    ctx = CommandContext(
        Actor("officer-5", "registrar", "Bostandyk district akimat"),
        dt.date(2024, 6, 1),
        f"corr-{n}",
        f"cause-{n}",
    )
    case = app.submit_registration(SubmitRegistration(**registration_body(n)), ctx)
    app.approve_registration(case.case_id, ApproveRegistration(), ctx)


def trail_level_with_store(settings: Settings, signed: bool = True) -> list[int]:
    """Store sequence numbers once the trail holds exactly them (and, if ``signed``, a head
    covers them)."""
    stored = [r.seq for r in read_rows(store_db(settings), 0)]
    audit = audit_database(settings)
    leaves = [int(r[0]) for r in select(audit, "SELECT seq FROM audit_leaves ORDER BY leaf_index")]
    head = TreeHeads(audit).latest()
    if leaves == stored and (not signed or head and head["tree_size"] == len(stored)):
        return stored
    return []


def test_trail_survives_a_killed_audit_consumer_without_duplicates_or_gaps(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    # A round (catch up from the store, sign a head) runs at start, then not again during
    # the test: events recorded while the role runs reach the trail through the topic.
    settings = make_settings(tmp_path, kafka_bootstrap, tree_head_interval_s=600)
    app = bootstrap(settings).app
    for n in range(2):
        register(app, n)
    system = KoshProcess(settings, roles="publisher,projections").start()
    try:
        first = wait_until(
            lambda: trail_level_with_store(settings),
            timeout=30,
            what="the audit consumer to append every stored event and sign",
        )
        system.kill()  # its consumer offsets may be behind: events come again
        for n in range(2, 4):
            register(app, n)
        system.start()
        second = wait_until(
            lambda: trail_level_with_store(settings),
            timeout=30,
            what="the restarted audit consumer to catch up and sign",
        )
        for n in range(4, 6):
            register(app, n)
        third = wait_until(
            lambda: trail_level_with_store(settings, signed=False),
            timeout=30,
            what="events from the topic to reach the trail",
        )
    finally:
        system.stop()

    assert first == second[: len(first)] and second == third[: len(second)]
    assert len(first) < len(second) < len(third)
    audit = audit_database(settings)
    indexes = [
        int(r[0]) for r in select(audit, "SELECT leaf_index FROM audit_leaves ORDER BY leaf_index")
    ]
    assert indexes == list(range(len(third)))
    records = [int(r[0]) for r in select(audit, "SELECT seq FROM audit_records ORDER BY seq")]
    assert records == third
    report = verify_store(settings)
    assert (report.ok, report.events_checked, report.heads_checked) == (True, len(third), 2)
