"""Reads the events topic for `kosh replay --from-kafka`, in store order.

The topic is read by aiokafka (about twice kafka-python's rate here) in a child process,
so fetching and parsing records runs on one core while the replay decodes and applies on
another; the child hands over plain tuples, the rows the store itself would give.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

from infra.kafka_security import kafka_python_config, ssl_context
from infra.settings import Settings
from projections.replay import Row, StoreReader

_IDLE: list[Row] = []  # an empty page: the topic has nothing more for now


def topic_rows(
    settings: Settings,
    reader: StoreReader,
    head: int,
    progress: Callable[[int], None],
    timeout_s: float = 600.0,
    wanted: Callable[[str], bool] | None = None,
) -> Iterator[list[Row]]:
    """Pages of every event up to `head` from the events topic, read from the beginning
    by a consumer without a group (nothing committed), in store order: a page ends where
    the next sequence number has not arrived yet. Stops once every sequence number up
    to the head the store holds has been seen. With `wanted` (a test of the stored
    topic, as for `decoded`), the rows of events it refuses come without their state:
    nothing decodes it, so neither process copies it."""
    # Forked, the child starts at once (a spawned one imports Kosh anew: a second or so).
    fork = "fork" in multiprocessing.get_all_start_methods()
    context: Any = multiprocessing.get_context("fork" if fork else "spawn")
    ours, theirs = context.Pipe(duplex=False)
    # A spawned child gets its arguments pickled, and `wanted` is a closure.
    child = context.Process(target=_consume, args=(settings, theirs, wanted if fork else None),
                            daemon=True, name="kosh-replay-topic")
    child.start()
    theirs.close()
    pending: dict[int, Row] = {}
    gaps: set[int] = set()
    next_seq, seen = 1, 0
    deadline = time.monotonic() + timeout_s
    try:
        while next_seq <= head:
            page = ours.recv()
            if isinstance(page, BaseException):
                raise page
            for row in page:
                if next_seq <= row[0] <= head and row[0] not in pending:
                    pending[row[0]] = row
                    seen += 1
            ready = []
            while next_seq <= head:
                if next_seq in pending:
                    ready.append(pending.pop(next_seq))
                elif next_seq in gaps:
                    gaps.discard(next_seq)
                else:
                    break
                next_seq += 1
            progress(seen)
            if ready:
                yield ready
            elif not page:
                gaps |= store_gaps(reader, next_seq, head, pending)
                if time.monotonic() > deadline and next_seq not in gaps:
                    missing = head - next_seq + 1 - len(pending)
                    raise TimeoutError(
                        f"the topic lacks {missing} events of the store "
                        f"after {timeout_s:.0f} s; is the publisher running?"
                    )
    finally:
        ours.close()
        # A consumer without a group has nothing to commit or hand back: no need to wait
        # for its fetch in flight.
        child.terminate()
        child.join(timeout=10)


def store_gaps(
    reader: StoreReader, start: int, head: int, pending: dict[int, Row], most: int = 1000
) -> set[int]:
    """Sequence numbers up to the head that the store never used (a rolled-back insert
    on PostgreSQL leaves one): no topic will ever carry them. While many are missing the
    publisher is simply behind, and nothing is asked of the store."""
    missing = [s for s in range(start, head + 1) if s not in pending]
    if len(missing) > most:
        return set()
    return {
        s for s in missing if not reader.recorder.select_notifications(start=s, limit=1, stop=s)
    }


def _consume(settings: Settings, out: Connection,
             wanted: Callable[[str], bool] | None = None) -> None:
    """The child: sends pages of rows until the parent closes its end."""
    try:
        asyncio.run(_pages(settings, out, wanted))
    except (BrokenPipeError, EOFError, OSError):
        pass  # the parent has all it needs and stopped listening
    except Exception as exc:  # noqa: BLE001 - the parent raises it, with its own traceback
        try:
            out.send(RuntimeError(f"reading {settings.events_topic}: {exc!r}"))
        except OSError:
            pass
    finally:
        out.close()


async def _pages(settings: Settings, out: Connection,
                 wanted: Callable[[str], bool] | None = None) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    config = kafka_python_config(settings)
    config.pop("ssl_cafile", None)
    consumer = AIOKafkaConsumer(
        **config,
        ssl_context=ssl_context(settings),
        group_id=None,
        enable_auto_commit=False,
        client_id="kosh-replay",
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(settings.events_topic)
        if partitions is None:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(settings.events_topic)
        if not partitions:
            raise RuntimeError(f"topic {settings.events_topic} does not exist")
        consumer.assign([TopicPartition(settings.events_topic, p) for p in partitions])
        await consumer.seek_to_beginning()
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            rows = [_row(r) for records in batches.values() for r in records]
            if wanted is not None:
                rows = [r if wanted(r[3]) else (*r[:4], b"") for r in rows]
            out.send(rows or _IDLE)
    finally:
        await consumer.stop()


def _row(record: Any) -> Row:
    headers = dict(record.headers or ())
    return (
        int(headers["kosh-seq"]),
        record.key.decode(),
        int(headers["kosh-version"]),
        headers["kosh-topic"].decode(),
        record.value,
    )
