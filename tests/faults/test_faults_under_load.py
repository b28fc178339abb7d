"""Issue 8: kill anything during a load of mixed commands, lose nothing, apply nothing
twice. The system runs as separate processes (two API instances, two intake consumers in
one group, publisher, projections, process manager, audit trail) on a broker of the
test's own; faults strike at seeded random points (KOSH_FAULT_SEED=N repeats a run).
After recovery the checker reads the store and the registers themselves; the figures
are printed (pytest -s) and kept in the test's data dir (fault-figures.txt)."""

from __future__ import annotations

import os
import random
import warnings
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI
from tests.support.faults import ROLES, FullDisk
from tests.support.faults_postgres import unavailable_reason
from tests.support.faults_scenario import Outcome, Plan, Scenario

SEED = int(os.environ.get("KOSH_FAULT_SEED") or random.randrange(10**6))
# make test's budget: little load between faults (make chaos runs the long version).
SHORT: dict[str, Any] = {"gap_s": (0.3, 1.2), "warmup_s": 1.5, "tail_s": 1.0}


def run(plan: Plan) -> Outcome:
    outcome = Scenario(plan).run()
    print(outcome.table)
    assert not outcome.problems, "\n".join(outcome.problems[:40]) + "\n" + outcome.table
    numbers = outcome.figures
    assert numbers["faults injected"] == len(plan.faults)
    # The run proves something only if the load got through on both channels, decisions
    # were raced, and rules said no (full quotas, decided cases) as well as yes.
    accepted_http, accepted_kafka = map(int, numbers["  over HTTP / Kafka"].split(" / "))
    assert accepted_http > 50 and accepted_kafka > 20, outcome.table
    assert numbers["refused (a rule said no)"] > 0 and numbers["raced decisions (groups)"] > 0
    return outcome


@pytest.mark.timeout(240)
def test_sqlite_system_through_kills_an_emptied_broker_and_a_full_disk_keeps_each_command_once(
    tmp_path: Path,
) -> None:
    faults = [
        "kill:publisher",
        "kill:projections",
        "kill:intake",
        "kill:api",
        "broker",
        "disk_full",
    ]
    if reason := FullDisk.unavailable_reason():
        # tests/faults/test_faults_full_disk.py still fills a register's database (SQLite's
        # own page limit) and proves the consumer stops without skipping and resumes.
        warnings.warn(f"full-disk fault left out of the load run: {reason}", stacklevel=1)
        faults.remove("disk_full")
    run(Plan("sqlite", faults, tmp_path / "data", seed=SEED, **SHORT))


@pytest.mark.postgres
@pytest.mark.timeout(240)
def test_postgres_system_through_server_restarts_and_kills_keeps_each_command_once(
    tmp_path: Path,
) -> None:
    if reason := unavailable_reason():
        message = f"cannot run a throwaway PostgreSQL server here: {reason}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    faults = ["postgres", "kill:processes", "kill:intake", "postgres", "kill:api"]
    if "audit" in ROLES:
        faults.append("kill:audit")
    run(Plan("postgres", faults, tmp_path / "data", seed=SEED, **SHORT))
