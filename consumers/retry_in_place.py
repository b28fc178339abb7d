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
the failure is found again by sequence number or command id."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def until_done(work: Callable[[], T], failed: Callable[[Exception, int], None],
                     backoff_s: float) -> T:
    """Runs `work` on a thread until it returns; `failed(error, attempt)` reports each
    failure before the wait. Cancelled (the subscriber stopping), the batch stays
    uncommitted and is delivered again to whoever holds the partition next."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await asyncio.to_thread(work)
        except Exception as exc:  # noqa: BLE001 - reported, then the batch is tried again
            failed(exc, attempt)
        await asyncio.sleep(backoff_s)
