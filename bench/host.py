"""How fast this host is today, so that a figure can be read against the host it ran on.

The targets are absolute (events/s on 2 cores), but the same tree on the same kind of
machine has run at half its speed on another day (a shared host). Two probes of the
machine alone, no Kosh code: a fixed loop of the interpreter's everyday work (what most
of a command or an event costs) and a small durable write (what a commit waits for).
The last committed run's figures (bench/results.json, read before it is overwritten)
give these probes and the baselines (code that is not Kosh's) then, so a reader sees
how much of a change is the host's.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from bench.report import Results

_LOOPS = 200_000
_FSYNCS = 200


def python_loops_per_s(rounds: int = 5) -> float:
    """The best of `rounds` runs of a loop of dict, string and call work."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        table: dict[str, int] = {}
        for i in range(_LOOPS):
            key = f"k{i % 512}"
            table[key] = table.get(key, 0) + len(key)
        best = min(best, time.perf_counter() - started)
    return _LOOPS / best


def fsync_us(directory: Path) -> float:
    """Median of appending 200 bytes to a file and fsyncing it, in µs."""
    took = []
    with tempfile.NamedTemporaryFile(dir=directory) as f:
        for _ in range(_FSYNCS):
            started = time.perf_counter()
            f.write(b"x" * 200)
            f.flush()
            os.fsync(f.fileno())
            took.append(time.perf_counter() - started)
    took.sort()
    return took[len(took) // 2] * 1e6


def last_run(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def run(root: Path, results: Results) -> None:
    results.add("host_python_loops_per_s", python_loops_per_s(), "loops/s",
                "host: a fixed loop of dict, string and call work, best of 5")
    results.add("host_fsync_us", fsync_us(root), "µs",
                "host: append 200 bytes and fsync, median of 200")


# Figures of code that does not change with Kosh's: how fast the host ran them is how
# fast it was.
GAUGES = {
    "host_python_loops_per_s": "the interpreter loop",
    "write_sqlite_baseline_cmds_per_s": "the plain eventsourcing app",
    "hashlib_events_per_s": "hashlib SHA-256",
    "raw_consume_aiokafka_events_per_s": "raw aiokafka consume",
}


def compare(results: Results, previous: dict[str, float]) -> None:
    """A note of this run's gauges against the last committed run's."""
    said = []
    for key, what in GAUGES.items():
        now, then = results.value(key), previous.get(key)
        if now and then:
            said.append(f"{what} {now / then:.2f}× ({now:,.0f} vs {then:,.0f})")
    now, then = results.value("host_fsync_us"), previous.get("host_fsync_us")
    if now and then:
        said.append(f"an fsync took {now / then:.2f}× as long ({now:,.0f} vs {then:,.0f} µs)")
    if said:
        results.notes.append(
            "this host against the last committed run (bench/results.json, same probes and "
            "baselines): " + "; ".join(said) + ". The absolute figures move with these; the "
            "ratios to same-run baselines much less"
        )
