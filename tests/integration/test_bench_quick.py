"""`make bench-quick` as a smoke check: the benchmark suite runs and writes its figures.
No speed is asserted here (speed is what `make bench` reports, not what tests judge)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_quick_runs_and_writes_every_figure(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    figures = json.loads((tmp_path / "results.json").read_text())
    for key in (
        "cores",
        "write_sqlite_cmds_per_s",
        "write_sqlite_baseline_cmds_per_s",
        "write_sqlite_cmds_per_s_ratio",
        "publisher_events_per_s",
        "rebuild_store_events_per_s",
        "rebuild_kafka_events_per_s",
        "audit_verify_events_per_s",
        "hashlib_events_per_s",
        "rebuild_big_peak_rss_mb",
        "host_python_loops_per_s",
        "host_fsync_us",
    ):
        assert isinstance(figures.get(key), int | float) and figures[key] > 0, key
    report = (tmp_path / "RESULTS.md").read_text()
    assert "write_sqlite_cmds_per_s" in report and "## Targets" in report
