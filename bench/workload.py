"""The commands every section sends: a registration submitted, then approved — the
Rules' everyday pair — each for a different person."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from api.threads import WORKERS
from domain.commands import ApproveRegistration, SubmitRegistration
from domain.context import Actor, CommandContext
from tests.support.builders import registration_body

ACTOR = Actor("bench", "registrar", "bench")
# Threads calling the write path at once: one API process's worker pool. A command
# mostly waits for its group commit, and threads deciding meanwhile fill the next batch.
WRITERS = WORKERS


def context() -> CommandContext:
    return CommandContext(ACTOR, dt.date.today(), str(uuid.uuid4()), str(uuid.uuid4()))


def bodies(count: int, offset: int = 0) -> list[dict[str, Any]]:
    return [registration_body(offset + i) for i in range(count)]


@dataclass(frozen=True)
class Pair:
    """A registration's submission and approval, with their callers' contexts made
    before any clock starts: ids and dates are the caller's work, not the write path's
    (the baseline, too, is handed ready-made events)."""

    submit: SubmitRegistration
    submitted: CommandContext
    approved: CommandContext


def pairs_of(cmds: Sequence[SubmitRegistration]) -> list[Pair]:
    return [Pair(cmd, context(), context()) for cmd in cmds]


def submissions(count: int, offset: int = 0) -> list[Pair]:
    return pairs_of([SubmitRegistration.model_validate(b) for b in bodies(count, offset)])


def submit_and_approve(app: Any) -> Callable[[Pair], UUID]:
    approve = ApproveRegistration()

    def pair(work: Pair) -> UUID:
        case_id: UUID = app.submit_registration(work.submit, work.submitted).case_id
        app.approve_registration(case_id, approve, work.approved)
        return case_id

    return pair


def run_pairs(app: Any, cmds: Sequence[Pair], writers: int = WRITERS) -> float:
    """Seconds to submit and approve every registration, from `writers` threads.

    Each thread takes the next pair itself (a list iterator hands each item to one
    thread), as a pool's worker takes the next request: handing them out through an
    executor instead, a future and a condition a pair, was a tenth of the process's
    CPU, spent on the load generator rather than on the write path (the baseline's
    loop has no such cost)."""
    pair = submit_and_approve(app)
    pending = iter(cmds)
    failures: list[BaseException] = []

    def writer() -> None:
        try:
            for work in pending:
                pair(work)
        except BaseException as exc:  # noqa: BLE001 - raised in the calling thread
            failures.append(exc)

    threads = [threading.Thread(target=writer, name=f"bench-writer-{i}") for i in range(writers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if failures:
        raise failures[0]
    return seconds
