"""A committed offset past the end of the commands log (written to a broker that had lost
its data, by a consumer finishing a batch read from the old log) does not leave the
intake waiting there: the partition is read from its beginning and its commands are
answered. tansu never answers OFFSET_OUT_OF_RANGE, so without this the intake would wait
silently until the new log grew past the old offset. Real broker, real store."""

from __future__ import annotations

from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from api.bootstrap import bootstrap, store_database
from api.runner import prepare_topics
from consumers.intake import IntakeConsumer
from tests.conftest import make_settings
from tests.integration.test_intake_broker_loss import Running, answered, send

STALE = 90  # as the fault run left it: committed 90 over a log of 15


def test_commands_behind_a_committed_offset_from_a_lost_log_are_answered(
    tmp_path: Path, kafka_bootstrap: str,
) -> None:
    settings = make_settings(tmp_path, kafka_bootstrap)
    prepare_topics(settings)
    committer = KafkaConsumer(bootstrap_servers=kafka_bootstrap,
                              group_id=settings.group_id("intake"), enable_auto_commit=False)
    partitions = [TopicPartition(settings.commands_topic, p)
                  for p in sorted(committer.partitions_for_topic(settings.commands_topic))]
    committer.assign(partitions)
    committer.commit({tp: OffsetAndMetadata(STALE, "", -1) for tp in partitions})
    committer.close()

    send(settings, [f"after-loss-{n}" for n in range(3)], 0)  # offsets 0-2 of one partition
    kosh = bootstrap(settings)
    consumer = IntakeConsumer(settings, kosh.app, store_database(settings))
    running = Running(consumer)
    try:
        results = answered(settings, 3, timeout_s=30)
        assert sorted(results) == [f"after-loss-{n}" for n in range(3)]
        assert all(r["result"] == "accepted" for r in results.values())
        assert consumer.offset_guard.reset >= 1
    finally:
        running.stop()
        consumer.intake.close()
