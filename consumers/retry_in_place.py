"""A consumer's failed batch is tried again where it stands, not nacked.

A nack seeks each partition back to the batch's first offset. When the failure came
with a broker that lost its data (a memory broker restarted, a cluster replaced), the
group's rejoin has by then reset every position to the start of the new, short log, and
the seek puts the consumer back at an old offset past its end. Apache Kafka would answer
OFFSET_OUT_OF_RANGE and reset it; tansu answers nothing and the consumer waits there for
good (measured: the intake's results producer failed with UnknownProducerId, the nack
came 0.6 s after the rejoin, and no command was answered again). The failures that come
with a broker loss are exactly those of producing (results, dead letters), so a batch is
retried in the handler: the position is never moved back, and what did execute before
the failure is found again by sequence number or command id.

An attempt that runs on for long is reported with the stacks of the process's threads:
every wait in a batch is bounded, so one that is not is a fault to find, and the
consumer, stuck on it, takes nothing more from its partitions.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from typing import Generic, TypeVar

import structlog

T = TypeVar("T")
log = structlog.get_logger(__name__)

# Longer than any bounded wait in a batch (a producer's bootstrap: 30 s).
STUCK_AFTER_S = 45.0


async def until_done(work: Callable[[], T], failed: Callable[[Exception, int], None],
                     backoff_s: float, stuck_after_s: float = STUCK_AFTER_S) -> T:
    """Runs `work` on a thread until it returns; `failed(error, attempt)` reports each
    failure before the wait. Cancelled (the subscriber stopping), the batch stays
    uncommitted and is delivered again to whoever holds the partition next."""
    attempt = 0
    while True:
        attempt += 1
        watched = _Watched(work)
        running = asyncio.ensure_future(asyncio.to_thread(watched))
        while not (await asyncio.wait({running}, timeout=stuck_after_s))[0]:
            log.error("consumer.attempt_stuck", attempt=attempt,
                      running_s=round(time.monotonic() - watched.started, 1),
                      stacks=watched.stacks())
        try:
            return running.result()
        except Exception as exc:  # noqa: BLE001 - reported, then the batch is tried again
            failed(exc, attempt)
        await asyncio.sleep(backoff_s)


class _Watched(Generic[T]):
    """`work`, remembering the thread it runs on."""

    def __init__(self, work: Callable[[], T]) -> None:
        self.work = work
        self.started = time.monotonic()
        self.thread: int | None = None

    def __call__(self) -> T:
        self.thread = threading.get_ident()
        return self.work()

    def stacks(self) -> str:
        """The attempt's thread first, then every other thread's stack once, with how
        many threads stand in it (a pool's idle workers are one entry)."""
        frames = sys._current_frames()
        own = frames.pop(self.thread, None) if self.thread is not None else None
        seen = Counter("".join(traceback.format_stack(f)) for f in frames.values())
        parts = ["attempt's thread:\n" + ("".join(traceback.format_stack(own)) if own else
                                          "(not started: the default executor is busy)\n")]
        parts += [f"{n} thread(s):\n{stack}" for stack, n in seen.most_common()]
        return "\n".join(parts)
