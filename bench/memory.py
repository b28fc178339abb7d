"""Peak memory of a rebuild of every register from a store of a million events, measured
in a child process that does nothing else (its peak RSS is the rebuild's)."""

from __future__ import annotations

import json
import subprocess
import time

from bench import profiling
from bench.env import BenchEnv
from bench.report import Results
from bench.store_fill import fill

TARGET_MB = 300


def run(env: BenchEnv, results: Results) -> None:
    events = 20_000 if env.quick else 1_000_000
    settings = env.settings("rss")
    started = time.perf_counter()
    held = fill(settings, events, registrations=100 if env.quick else 2000)
    filled = time.perf_counter() - started
    out = _probe(settings)
    results.add("rebuild_big_events", held, "events", "events in the store rebuilt for RSS")
    results.add(
        "rebuild_big_events_per_s",
        out["applied"] / out["seconds"],
        "events/s",
        f"rebuild of every register from a store of {held:,} events (kosh replay, one process)",
    )
    rss = results.add(
        "rebuild_big_peak_rss_mb",
        max(out["peak_rss_mb"], out["peak_tree_pss_mb"]),
        "MB",
        f"peak RSS of that rebuild ({out['start_rss_mb']:.0f} MB after imports; the larger of "
        "the process's own peak and its processes' summed PSS)",
    )
    split = _probe(settings, "split")
    results.add(
        "rebuild_big_split_events_per_s",
        split["applied"] / split["seconds"],
        "events/s",
        f"the same with kosh replay --split ({split['tree_processes']} processes)",
    )
    results.add(
        "rebuild_big_split_peak_rss_mb",
        max(split["peak_rss_mb"], split["peak_tree_pss_mb"]),
        "MB",
        "peak memory of that --split rebuild (the larger of the reader's own peak RSS and "
        "the summed PSS of the reader and its forked children, sampled every 100 ms)",
    )
    results.notes.append(
        f"RSS store: {held:,} events generated in {filled:.0f} s "
        "(real registrations copied with fresh aggregate ids)"
    )
    met = rss < TARGET_MB and held >= 1_000_000
    results.target(
        f"peak RSS < {TARGET_MB} MB for 1,000,000 events",
        met,
        f"{rss:.0f} MB for {held:,} events (kosh replay, one process; --split: "
        f"{results.value('rebuild_big_split_peak_rss_mb') or 0:.0f} MB)",
        why=""
        if met
        else f"{out['start_rss_mb']:.0f} MB are held before the first event "
        "is read (the imports and the application); the rest grows with the rebuild",
    )


def _probe(settings: object, *args: str) -> dict[str, float]:
    proc = subprocess.run(
        profiling.probe_argv("rss", *args),
        cwd=profiling.REPO,
        check=True,
        env=profiling.settings_env(settings),
        capture_output=True,
        text=True,
        timeout=900,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])
