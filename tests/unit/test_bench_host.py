"""The bench's note on the host: this run's probes and baselines against the last
committed run's, so a reader can tell a slower host from a slower Kosh."""

from __future__ import annotations

import json
from pathlib import Path

from bench import host
from bench.report import Results


def test_the_note_gives_each_gauge_against_the_last_run() -> None:
    results = Results(quick=False)
    results.add("host_python_loops_per_s", 1_000_000, "loops/s", "loop")
    results.add("host_fsync_us", 300, "µs", "fsync")
    results.add("write_sqlite_baseline_cmds_per_s", 1_200, "commands/s", "plain app")
    previous = {"host_python_loops_per_s": 2_000_000.0, "host_fsync_us": 150.0,
                "write_sqlite_baseline_cmds_per_s": 2_400.0, "hashlib_events_per_s": 9.0}

    host.compare(results, previous)

    (note,) = results.notes
    assert "the interpreter loop 0.50× (1,000,000 vs 2,000,000)" in note
    assert "the plain eventsourcing app 0.50× (1,200 vs 2,400)" in note
    assert "an fsync took 2.00× as long (300 vs 150 µs)" in note
    assert "hashlib" not in note  # not measured in this run: nothing to compare


def test_no_note_without_a_last_run(tmp_path: Path) -> None:
    results = Results(quick=False)
    results.add("host_python_loops_per_s", 1_000_000, "loops/s", "loop")
    host.compare(results, host.last_run(tmp_path / "results.json"))
    (tmp_path / "results.json").write_text("not json")
    host.compare(results, host.last_run(tmp_path / "results.json"))
    assert results.notes == []


def test_last_run_reads_the_figures_written(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps({"host_fsync_us": 120.5}))
    assert host.last_run(tmp_path / "results.json") == {"host_fsync_us": 120.5}


def test_the_probes_measure_something(tmp_path: Path) -> None:
    assert host.python_loops_per_s(rounds=1) > 0
    assert host.fsync_us(tmp_path) > 0
