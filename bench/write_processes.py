"""The write path as a deployment runs it on one SQLite store: a writer process per core
(several API or intake instances), each with its threads and its own group commit, all
queueing on the store's one writer lock. Python runs one thread of a process at a time,
so a second process is how the second core takes commands at all."""

from __future__ import annotations

import logging
import multiprocessing as mp
import resource
import time
from dataclasses import dataclass
from typing import Any

from bench.workload import WRITERS
from infra.settings import Settings

# Threads per process: each writer process stands for one API instance and its pool.
THREADS = WRITERS


@dataclass(frozen=True)
class Share:
    settings: Settings
    offset: int
    pairs: int
    threads: int = THREADS


def _writer(share: Share, ready: Any, results: Any) -> None:
    import structlog

    from bench.workload import run_pairs, submissions
    from infra.application import KoshApplication
    from infra.heap import freeze_startup_heap

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    app = KoshApplication(share.settings)
    run_pairs(app, submissions(10, offset=800_000 + share.offset), share.threads)  # caches, tables
    cmds = submissions(share.pairs, offset=share.offset)
    freeze_startup_heap()  # as `kosh up` does once started
    ready.wait()
    before, batches, held = resource.getrusage(resource.RUSAGE_SELF), app.batcher.batches, \
        app.batcher.lock_held_s
    cpu, started = time.process_time(), time.monotonic()
    run_pairs(app, cmds, share.threads)
    ended, cpu = time.monotonic(), time.process_time() - cpu
    after = resource.getrusage(resource.RUSAGE_SELF)
    results.put(_Done(started, ended, cpu, after.ru_stime - before.ru_stime,
                      after.ru_nvcsw - before.ru_nvcsw, 2 * share.pairs,
                      app.batcher.batches - batches, app.batcher.lock_held_s - held))
    app.close()


@dataclass(frozen=True)
class _Done:
    started: float
    ended: float
    cpu_s: float
    sys_s: float
    switches: int  # voluntary context switches: a thread blocked (the GIL, a lock, I/O)
    commands: int
    batches: int
    lock_held_s: float


@dataclass(frozen=True)
class ProcessesRun:
    """What the writer processes did, together, over the span of the run."""

    cmds_per_s: float
    cpu_us_per_cmd: float  # summed over the processes
    sys_us_per_cmd: float
    switches_per_cmd: float
    cmds_per_batch: float
    lock_held_share: float  # of the span, the store's writer lock was held this much


def run_processes(
    settings: Settings, processes: int, pairs: int, threads: int = THREADS
) -> ProcessesRun:
    """Commands/s over the span from the first writer's start to the last one's end, and
    per command what it cost, summed over the writers."""
    from infra.application import KoshApplication

    KoshApplication(settings).close()  # tables and the seeded legal acts, made once
    ctx = mp.get_context("spawn")  # no SQLite connection or lock crosses a fork
    ready, results = ctx.Barrier(processes + 1), ctx.Queue()
    each = pairs // processes
    workers = [
        ctx.Process(target=_writer, args=(Share(settings, i * each, each, threads), ready, results))
        for i in range(processes)
    ]
    for w in workers:
        w.start()
    ready.wait(timeout=120)
    done = [results.get(timeout=600) for _ in workers]
    for w in workers:
        w.join(30)
        if w.exitcode != 0:
            raise RuntimeError(f"a writer process exited with {w.exitcode}")
    span = max(d.ended for d in done) - min(d.started for d in done)
    commands = sum(d.commands for d in done)
    return ProcessesRun(
        cmds_per_s=commands / span,
        cpu_us_per_cmd=sum(d.cpu_s for d in done) / commands * 1e6,
        sys_us_per_cmd=sum(d.sys_s for d in done) / commands * 1e6,
        switches_per_cmd=sum(d.switches for d in done) / commands,
        cmds_per_batch=commands / max(sum(d.batches for d in done), 1),
        lock_held_share=sum(d.lock_held_s for d in done) / span,
    )
