"""Durable commands per second through the write path (no HTTP), on SQLite and on
PostgreSQL, against a plain eventsourcing application appending the same events one
command at a time."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import orjson
from eventsourcing.application import Application

from bench import profiling
from bench.env import BenchEnv
from bench.report import Results
from bench.workload import WRITERS, run_pairs, submissions
from bench.write_processes import THREADS, run_processes
from infra.application import KoshApplication
from infra.eventstore import build_mapper, ensure_schema, store_env
from infra.settings import Settings

TARGET_PER_S = 5000
TARGET_RATIO = 1.8


class Baseline(Application[Any]):
    """The library used as its documentation shows, with nothing of Kosh's."""

    name = "Baseline"


def plain_app(settings: Settings) -> Baseline:
    if settings.database_url:
        ensure_schema(settings.database_url, settings.database_schema)
    return Baseline(env=store_env(settings))


def saves_after(app: KoshApplication, head: int) -> Iterator[list[Any]]:
    """The events each command saved after `head`, as domain events (personal fields
    as sealed as they are stored): one list per command."""
    mapper = build_mapper()
    group: list[Any] = []
    cause = None
    start = head + 1
    while True:
        page = app.recorder.select_notifications(start=start, limit=2000)
        for n in page:
            this = orjson.loads(n.state)["meta"]["causation_id"]
            if group and this != cause:
                yield group
                group = []
            cause = this
            group.append(mapper.to_domain_event(n))
        if len(page) < 2000:
            break
        start = page[-1].id + 1
    if group:
        yield group


def measure(env: BenchEnv, results: Results, backend: str, pairs: int) -> None:
    postgres = backend == "postgres"
    settings = env.settings(f"write{backend}", postgres=postgres)
    app = KoshApplication(settings)
    run_pairs(app, submissions(20, offset=900_000))  # tables, caches, legal acts
    head = app.recorder.max_notification_id() or 0
    warm = app.batcher.batches, app.batcher.commands
    cpu = time.process_time()
    seconds = run_pairs(app, submissions(pairs))
    cpu = time.process_time() - cpu
    kosh = results.add(
        f"write_{backend}_cmds_per_s",
        2 * pairs / seconds,
        "commands/s",
        f"durable commands, write path, {backend}, {WRITERS} threads",
    )
    batches, commands = app.batcher.batches - warm[0], app.batcher.commands - warm[1]
    saves = list(saves_after(app, head))
    app.close()

    plain = plain_app(env.settings(f"plain{backend}", postgres=postgres))
    started, base_cpu = time.perf_counter(), time.process_time()
    for events in saves:
        plain.save(*events)
    base_s, base_cpu = time.perf_counter() - started, time.process_time() - base_cpu
    plain.close()
    results.add(
        f"write_{backend}_cpu_us_per_cmd",
        cpu / (2 * pairs) * 1e6,
        "µs",
        f"CPU per command, write path, {backend} (all threads of the process)",
    )
    results.add(
        f"write_{backend}_baseline_cpu_us_per_cmd",
        base_cpu / len(saves) * 1e6,
        "µs",
        f"CPU per command, plain eventsourcing app, {backend}",
    )
    results.add(
        f"write_{backend}_baseline_cmds_per_s",
        len(saves) / base_s,
        "commands/s",
        f"plain eventsourcing app, same appends one by one, {backend}",
    )
    results.add(
        f"write_{backend}_cmds_per_s",
        kosh,
        "commands/s",
        f"durable commands, write path, {backend}, {WRITERS} threads",
        baseline=f"write_{backend}_baseline_cmds_per_s",
    )
    results.notes.append(
        f"write path {backend}: {2 * pairs} commands (submit + approve of {pairs} "
        f"registrations) saved {sum(len(s) for s in saves)} events; group commit wrote "
        f"{commands} saves in {batches} transactions ({commands / max(batches, 1):.1f} "
        "per transaction)"
    )


def group_commit_off(env: BenchEnv, results: Results, pairs: int) -> None:
    """The same commands with every save committed alone: what group commit is worth."""
    app = KoshApplication(env.settings("writealone"))
    app.batcher.max_batch = 1
    run_pairs(app, submissions(20, offset=900_000))
    seconds = run_pairs(app, submissions(pairs))
    app.close()
    results.add(
        "write_sqlite_alone_cmds_per_s",
        2 * pairs / seconds,
        "commands/s",
        "the same, group commit off (one transaction per command), sqlite",
    )


def processes(env: BenchEnv, results: Results, pairs: int, extra: int = 0) -> None:
    """Writer processes on one SQLite store, as several API or intake instances: one per
    core, or (`extra`) more, so a core whose process waits for the store's writer lock or
    a commit's flush has another to run."""
    count = max(2, min(os.cpu_count() or 2, 4)) + extra
    key = "write_sqlite_procs" if not extra else "write_sqlite_procs_extra"
    run = run_processes(env.settings(f"writeprocs{extra}"), count, pairs)
    results.add(
        f"{key}_cpu_us_per_cmd",
        run.cpu_us_per_cmd,
        "µs",
        f"CPU per command, write path, sqlite, {count} writer processes (summed)",
    )
    results.add(
        f"{key}_sys_us_per_cmd",
        run.sys_us_per_cmd,
        "µs",
        f"of which in the kernel (commits' writes and flushes, threads handing over the GIL), "
        f"{count} writer processes",
    )
    results.add(
        f"{key}_switches_per_cmd",
        run.switches_per_cmd,
        "switches",
        f"voluntary context switches per command (a thread blocked), {count} writer processes",
    )
    results.add(
        f"{key}_cmds_per_batch",
        run.cmds_per_batch,
        "commands",
        f"commands per group commit, {count} writer processes",
    )
    results.add(
        f"{key}_lock_held_share",
        run.lock_held_share * 100,
        "%",
        f"share of the run the store's writer lock was held (a batch's inserts and its "
        f"commit), {count} writer processes",
    )
    results.add(
        f"{key}_cmds_per_s",
        run.cmds_per_s,
        "commands/s",
        f"durable commands, write path, sqlite, {count} writer processes × {THREADS} threads "
        f"on one store ({os.cpu_count() or 2} cores)",
        baseline="write_sqlite_baseline_cmds_per_s",
    )


def run(env: BenchEnv, results: Results) -> None:
    pairs = 150 if env.quick else 3000
    measure(env, results, "sqlite", pairs)
    processes(env, results, pairs)
    if not env.quick:
        processes(env, results, pairs, extra=1)
        group_commit_off(env, results, 1000)
    if env.postgres_url and not env.quick:
        measure(env, results, "postgres", 2000)
    elif not env.quick:
        results.notes.append("PostgreSQL not reachable: no PostgreSQL write-path figures")
    # The deployment's figure: the best of one process, one writer process per core, and
    # one more than that; which one it was is named in the target line.
    best = max(("write_sqlite_cmds_per_s", "write_sqlite_procs_cmds_per_s",
                "write_sqlite_procs_extra_cmds_per_s"),
               key=lambda k: results.value(k) or 0)
    rate = results.value(best) or 0
    ratio = results.value(f"{best}_ratio") or 0
    met = rate >= TARGET_PER_S and ratio >= TARGET_RATIO
    why = ""
    if not met and not env.quick:
        single_cpu = results.value("write_sqlite_cpu_us_per_cmd") or 0
        best_cpu = results.value(best.replace("_cmds_per_s", "_cpu_us_per_cmd")) or 0
        base_cpu = results.value("write_sqlite_baseline_cpu_us_per_cmd") or 0
        ceiling = (os.cpu_count() or 2) * 1e6 / max(best_cpu, 1)
        best_sys = results.value(best.replace("_cmds_per_s", "_sys_us_per_cmd"))
        held = results.value(best.replace("_cmds_per_s", "_lock_held_share"))
        switches = results.value(best.replace("_cmds_per_s", "_switches_per_cmd"))
        kernel = (
            f" Of those {best_cpu:,.0f} µs, {best_sys:,.0f} are in the kernel ({switches:.1f} "
            "voluntary context switches per command: threads handing the GIL to each other "
            "around every SQLite call, and the commits' writes and flushes), and the store's "
            f"one writer lock was held {held:.0f}% of the run, so a process whose commands "
            "are all queued behind it has nothing to run."
            if best_sys is not None and held is not None and switches is not None
            else ""
        )
        why = (
            f"a command costs {single_cpu:,.0f} µs of CPU in one writing process, and most "
            "of it is Python, which runs one thread of a process at a time (the GIL), so one "
            f"process cannot pass {1e6 / max(single_cpu, 1):,.0f} commands/s; group commit "
            "removes commits, not this. In the best figure's writer processes a command "
            f"costs {best_cpu:,.0f} µs summed over them, so every core fully busy would give "
            f"{ceiling:,.0f} commands/s; they reached {rate / ceiling:.0%} of that.{kernel} The "
            f"baseline only appends ready-made events ({base_cpu:,.0f} µs each: no reads, "
            "no Rules, no sealing of personal data). Where the CPU goes, and which locks the "
            "threads queue on, is below"
        )
    results.target(
        f"durable commands ≥ {TARGET_PER_S:,}/s and ≥ {TARGET_RATIO}× baseline (SQLite)",
        met,
        f"{rate:,.0f}/s ({'met' if rate >= TARGET_PER_S else 'missed'}), {ratio:.2f}× "
        f"baseline ({'met' if ratio >= TARGET_RATIO else 'missed'}) (`{best}`)",
        why=why,
        profile_job=None
        if met or env.quick
        else lambda: profiling.profile_probe(env.root, "write", seconds=60, cpu_view=True),
    )
