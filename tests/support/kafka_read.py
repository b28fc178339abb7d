"""Reads a whole topic with plain kafka-python, no consumer group."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, TopicPartition


def topic_headers(bootstrap: str, topic: str, idle_s: float = 1.0) -> list[dict[str, str]]:
    """Every record's headers, from the beginning of every partition."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             group_id=None, consumer_timeout_ms=int(idle_s * 1000))
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        consumer.seek_to_beginning()
        out = []
        deadline = time.monotonic() + 30
        for record in consumer:
            out.append({k: v.decode() for k, v in record.headers})
            if time.monotonic() > deadline:
                break
        return out
    finally:
        consumer.close()


def topic_values(bootstrap: str, topic: str, idle_s: float = 1.5) -> list[bytes]:
    """Every record's value, from the beginning of every partition."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             group_id=None, consumer_timeout_ms=int(idle_s * 1000))
    try:
        consumer.assign([TopicPartition(topic, p)
                         for p in consumer.partitions_for_topic(topic) or set()])
        consumer.seek_to_beginning()
        return [r.value or b"" for r in consumer]
    finally:
        consumer.close()


def published_seqs(bootstrap: str, topic: str) -> list[int]:
    return sorted(int(h["kosh-seq"]) for h in topic_headers(bootstrap, topic))
