"""`kosh replay` rebuilds registers equal to the live ones the running consumers built,
from the store and from the events topic; a swap replaces the live rows safely."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from api.bootstrap import all_projections, bootstrap, registers_database
from infra.settings import Settings
from infra.sql import Database
from projections.projector import applied_pairs
from projections.replay import table_names
from tests.support.builders import registration_body
from tests.support.system import REPO, KoshProcess, settings_env, wait_until


def normalised(value: Any) -> Any:
    """PostgreSQL and SQLite return the same facts in different Python types."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def contents(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    out = {t: sorted((tuple(normalised(v) for v in r) for r in db.query(f"SELECT * FROM {t}")),
                     key=repr)
           for p in all_projections() for t in table_names(p)}
    out["projection_applied"] = applied_pairs(db)
    return out


def run_replay(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.cli", "replay", *args], cwd=REPO,
                          env=settings_env(settings), capture_output=True, text=True,
                          timeout=120)


def record_city(settings: Settings) -> Settings:
    """Runs a real system (OS process, real broker) that records a small history, waits
    for its consumers to project all of it, and stops it before the rebuilds."""
    system = KoshProcess(settings).start()
    try:
        api = system.client(timeout=10)
        for n in range(12):
            day = f"2023-0{1 + n % 6}-10"
            body = registration_body(n, effective_date=day)
            case_id = api.post("/registrations", json=body).json()["case_id"]
            decision = "refuse" if n % 5 == 4 else "approve"
            payload = {"effective_date": day}
            if decision == "refuse":
                payload["reason"] = "no lease"
            reply = api.post(f"/registrations/{case_id}/{decision}", json=payload)
            assert reply.status_code == 200, reply.text
        moved = registration_body(3, address={"district": "Turksib", "line": "Suyunbay 2"},
                                  effective_date="2023-07-01")
        api.post(f"/registrations/{api.post('/registrations', json=moved).json()['case_id']}"
                 "/approve", json={"effective_date": "2023-07-01"})
        reply = api.post("/monitoring/natural-growth",
                         json={"period": "2023", "natural_growth": 2, "source": "stat"})
        assert reply.status_code == 201, reply.text
        store = bootstrap(settings).app
        head = store.recorder.max_notification_id()
        live = registers_database(settings)

        def caught_up() -> bool:
            rows = live.query("SELECT projection, max_seq FROM projection_status")
            return {r[0] for r in rows if r[1] == head} >= {p.name for p in all_projections()}

        wait_until(caught_up, timeout=30, what="the consumers to project every event")
    finally:
        assert system.stop() == 0, system.log()[-2000:]
    return settings


@pytest.fixture(scope="module")
def recorded_city(module_store_settings: Settings) -> Settings:
    """One recorded city for the tests that only rebuild from it and read its registers."""
    return record_city(module_store_settings)


@pytest.fixture
def live_city(store_settings: Settings) -> Settings:
    """A city of the test's own, for a test that alters its registers."""
    return record_city(store_settings)


def test_replay_from_the_store_equals_the_live_registers(recorded_city: Settings,
                                                         tmp_path: Path) -> None:
    target = tmp_path / "rebuilt.sqlite"
    done = run_replay(recorded_city, "--into", str(target))
    assert done.returncode == 0, done.stderr

    assert contents(Database(None, target)) == contents(registers_database(recorded_city))
    assert "events/s" in done.stderr


def test_replay_from_the_kafka_topic_equals_the_live_registers(recorded_city: Settings,
                                                               tmp_path: Path) -> None:
    target = tmp_path / "from-kafka.sqlite"
    done = run_replay(recorded_city, "--from-kafka", "--into", str(target))
    assert done.returncode == 0, done.stderr

    assert contents(Database(None, target)) == contents(registers_database(recorded_city))


@pytest.mark.parametrize("source", [[], ["--from-kafka"]], ids=["store", "kafka"])
def test_a_split_replay_equals_the_live_registers(recorded_city: Settings, tmp_path: Path,
                                                  source: list[str]) -> None:
    target = tmp_path / "split.sqlite"
    done = run_replay(recorded_city, "--split", *source, "--into", str(target))
    assert done.returncode == 0, done.stderr

    assert contents(Database(None, target)) == contents(registers_database(recorded_city))
    assert not list(tmp_path.glob("split.sqlite.part*"))  # the children's scratch files


def test_replay_without_a_target_compares_and_a_swap_restores_a_damaged_register(
    live_city: Settings,
) -> None:
    assert run_replay(live_city, "residents", "monitoring").returncode == 0
    live = registers_database(live_city)
    before = contents(live)
    with live.transaction() as cur:
        cur.execute("DELETE FROM residents WHERE district = ?", ("Medeu",))
        cur.execute("UPDATE monitoring_flows SET arrivals = arrivals + 7")

    compared = run_replay(live_city)
    assert compared.returncode == 1
    assert "residents.residents" in compared.stderr

    swapped = run_replay(live_city, "residents", "monitoring", "--swap")
    assert swapped.returncode == 0, swapped.stderr
    assert contents(live) == before


def test_replay_as_of_a_date_builds_the_past_register(recorded_city: Settings,
                                                      tmp_path: Path) -> None:
    target = tmp_path / "march.sqlite"
    done = run_replay(recorded_city, "residents", "--as-of", "2023-03-31", "--into", str(target))
    assert done.returncode == 0, done.stderr

    rows = Database(None, target).query("SELECT registered_on FROM residents")
    assert rows and all(r[0] <= "2023-03-31" for r in rows)
    assert len(rows) < len(registers_database(recorded_city).query("SELECT 1 FROM residents"))
