"""`python -m bench [--quick] [--out DIR] [--only SECTION ...]`: runs the benchmark
sections and writes RESULTS.md and results.json."""

from __future__ import annotations

import argparse
import logging
import time
import traceback
from pathlib import Path

import structlog

from bench import audit, bus, channels, freshness, host, memory, write_path
from bench.env import bench_env
from bench.report import Results
from infra.heap import freeze_startup_heap

SECTIONS = ("write", "channels", "freshness", "bus", "audit", "memory")
# Starting `kosh up` processes and waiting for consumer groups would take most of a minute.
QUICK = ("write", "bus", "audit", "memory")
# `make bench` must finish in 10 minutes; a profile is started only if it can end in time.
BUDGET_S = 570
PROFILE_RESERVE_S = 75


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke sizes (under a minute)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).parent,
        help="where RESULTS.md and results.json go (default: bench/)",
    )
    parser.add_argument(
        "--only",
        nargs="*",
        choices=SECTIONS,
        help=f"sections to run (default: all; with --quick: {', '.join(QUICK)})",
    )
    args = parser.parse_args()
    args.only = args.only or list(QUICK if args.quick else SECTIONS)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    freeze_startup_heap()  # as `kosh up` does once started
    started = time.perf_counter()
    results = Results(quick=args.quick)
    previous = host.last_run(args.out / "results.json")
    with bench_env(args.quick) as env:
        host.run(env.root, results)
        bus_settings = None
        for name in SECTIONS:
            if name not in args.only or (name == "audit" and bus_settings is None):
                continue
            print(f"[bench] {name} …", flush=True)
            t = time.perf_counter()
            try:
                if name == "write":
                    write_path.run(env, results)
                elif name == "channels":
                    channels.run(env, results)
                elif name == "freshness":
                    freshness.run(env, results)
                elif name == "bus":
                    bus_settings = bus.run(env, results)
                elif name == "audit":
                    assert bus_settings is not None  # the section is skipped without it
                    audit.run(env, results, bus_settings)
                elif name == "memory":
                    memory.run(env, results)
            except Exception as exc:  # noqa: BLE001 - reported, the other sections still run
                traceback.print_exc()
                first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                results.failures.append(f"{name}: {type(exc).__name__}: {first_line}")
            print(f"[bench] {name} done in {time.perf_counter() - t:.1f} s", flush=True)
        profile_missed_targets(results, started)
    host.compare(results, previous)
    results.write(args.out, time.perf_counter() - started)
    print(f"[bench] wrote {args.out / 'RESULTS.md'} in {time.perf_counter() - started:.0f} s")
    return 1 if results.failures else 0


def profile_missed_targets(results: Results, started: float) -> None:
    for target in results.targets:
        if target.profile_job is None:
            continue
        if time.perf_counter() - started > BUDGET_S - PROFILE_RESERVE_S:
            target.profile = ["(not profiled: the run's time budget is spent)"]
            continue
        print(f"[bench] profiling: {target.name} …", flush=True)
        try:
            target.profile = target.profile_job()
        except Exception as exc:  # noqa: BLE001 - a failed profile leaves the figures intact
            target.profile = [f"(profiling failed: {type(exc).__name__}: {exc})"]


if __name__ == "__main__":
    raise SystemExit(main())
