"""Explicit topic creation, and detecting a broker that lost everything."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from infra.kafka_security import kafka_python_config
from infra.settings import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int


def topic_specs(settings: Settings) -> list[TopicSpec]:
    return [
        TopicSpec(settings.events_topic, settings.events_partitions),
        TopicSpec(settings.commands_topic, settings.commands_partitions),
        TopicSpec(settings.results_topic, settings.commands_partitions),
        TopicSpec(settings.dead_letter_topic, 1),
    ]


def kafka_client_config(settings: Settings) -> dict[str, Any]:
    """Settings shared by every kafka-python client: bootstrap list, SASL, TLS."""
    return kafka_python_config(settings)


def admin_client(settings: Settings) -> KafkaAdminClient:
    return KafkaAdminClient(
        **kafka_client_config(settings), client_id="kosh-admin", request_timeout_ms=10_000
    )


def ensure_topics(admin: KafkaAdminClient, settings: Settings) -> list[str]:
    """Creates missing topics (marker last); returns the names it created.

    The marker is created after the data topics, so "marker present" implies the data
    topics were created explicitly with the configured partition counts."""
    existing = set(admin.list_topics())
    wanted = [*topic_specs(settings), TopicSpec(settings.marker_topic, 1)]
    created = []
    for spec in wanted:
        if spec.name in existing:
            continue
        try:
            admin.create_topics(
                [NewTopic(spec.name, spec.partitions, settings.replication_factor)]
            )
            created.append(spec.name)
        except TopicAlreadyExistsError:
            pass
    if created:
        log.info("topics.created", topics=created)
    return created


def broker_lost_data(admin: KafkaAdminClient, settings: Settings) -> bool:
    """True when the marker topic is gone: the broker restarted empty or was replaced."""
    return settings.marker_topic not in set(admin.list_topics())
