"""The write path as a deployment runs it on one SQLite store: a writer process per core
(several API or intake instances), each with its threads and its own group commit, all
queueing on the store's one writer lock. Python runs one thread of a process at a time,
so a second process is how the second core takes commands at all."""

from __future__ import annotations

import logging
import multiprocessing as mp
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
    cpu, started = time.process_time(), time.monotonic()
    run_pairs(app, cmds, share.threads)
    ended, cpu = time.monotonic(), time.process_time() - cpu
    results.put((started, ended, cpu, 2 * share.pairs, app.batcher.batches))
    app.close()


def run_processes(
    settings: Settings, processes: int, pairs: int, threads: int = THREADS
) -> tuple[float, float]:
    """Commands/s over the span from the first writer's start to the last one's end, and
    CPU µs per command summed over the writers."""
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
    span = max(d[1] for d in done) - min(d[0] for d in done)
    commands = sum(d[3] for d in done)
    return commands / span, sum(d[2] for d in done) / commands * 1e6
