"""A group's committed offset from a lost log, caught when partitions are assigned.

When the broker loses its data (a memory broker restarted, a cluster replaced by an empty
one), a consumer finishing a batch read from the old log can commit that batch's offset
to the new cluster. Whoever is assigned the partition next starts from that offset, past
the end of the new, shorter log; Apache Kafka would answer OFFSET_OUT_OF_RANGE and reset
it, but tansu lets the consumer wait there silently, and every later record of the
partition goes unread (the fault suite's commands that got no answer: a committed offset
of 90 over a log of 15).

So on assignment a committed offset past the partition's end is checked by reading the
record just before it: tansu's end offset can be short by the last batch's other records
(KAFKA_NOTES), and such an offset is fine. An offset with no record before it is from a
lost log, and the partition is read from its beginning. Only for consumers whose handling
is idempotent (the intake: a command id answered once is answered again the same way).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog
from aiokafka.abc import ConsumerRebalanceListener
from kafka import KafkaConsumer, TopicPartition

from infra.kafka_security import kafka_python_config
from infra.settings import Settings

log = structlog.get_logger(__name__)
PROBE_TIMEOUT_MS = 1000


def record_before(settings: Settings, topic: str, partition: int, offset: int) -> bool:
    """Whether the log holds a record at `offset - 1` (read by a consumer of no group)."""
    probe = KafkaConsumer(**kafka_python_config(settings), group_id=None,
                          enable_auto_commit=False, client_id="kosh-offset-guard")
    try:
        tp = TopicPartition(topic, partition)
        probe.assign([tp])
        probe.seek(tp, offset - 1)
        found = probe.poll(timeout_ms=PROBE_TIMEOUT_MS, max_records=1)
        return any(r.offset == offset - 1 for records in found.values() for r in records)
    finally:
        probe.close()


class StaleOffsetGuard(ConsumerRebalanceListener):
    """`consumer` gives the subscriber's aiokafka consumer (set once it has started)."""

    def __init__(self, settings: Settings, consumer: Callable[[], Any]) -> None:
        self.settings = settings
        self.consumer = consumer
        self.reset = 0  # partitions read again from the beginning: for tests and logs

    async def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        consumer = self.consumer()
        partitions = list(assigned)
        if consumer is None or not partitions:
            return
        try:
            ends = await consumer.end_offsets(partitions)
            for tp in partitions:
                committed = await consumer.committed(tp)
                if committed is None or committed <= ends.get(tp, committed):
                    continue
                if await asyncio.to_thread(record_before, self.settings, tp.topic,
                                           tp.partition, committed):
                    continue  # the broker's end offset fell short; the offset is real
                log.warning("consumer.offset_past_end", topic=tp.topic, partition=tp.partition,
                            committed=committed, end=ends.get(tp))
                await consumer.seek_to_beginning(tp)
                self.reset += 1
        except Exception as exc:  # noqa: BLE001 - a check: the assignment stands without it
            log.warning("consumer.offset_check_failed", error=repr(exc))
