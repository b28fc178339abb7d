"""Issue 9: production Kafka settings reach every client, kafka-python and faststream alike."""

from __future__ import annotations

from pathlib import Path

import certifi
import pytest
from faststream.kafka.security import parse_security

from infra.kafka_security import (
    KafkaSecurityError,
    faststream_broker_kwargs,
    kafka_python_config,
)
from infra.settings import Settings
from infra.topics import kafka_client_config

SCRAM = {
    "kafka_bootstrap": "k1.example:9093, k2.example:9093,k3.example:9093",
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_mechanism": "SCRAM-SHA-512",
    "kafka_username": "kosh",
    "kafka_password": "s3cret",
    "kafka_ssl_cafile": Path(certifi.where()),
}


def test_plaintext_by_default_with_the_bootstrap_list() -> None:
    config = kafka_client_config(Settings(kafka_bootstrap="a:1,b:2"))
    assert config == {"bootstrap_servers": ["a:1", "b:2"], "security_protocol": "PLAINTEXT"}
    kwargs = faststream_broker_kwargs(Settings(kafka_bootstrap="a:1,b:2"))
    assert kwargs == {"bootstrap_servers": ["a:1", "b:2"], "security": None}


def test_sasl_scram_over_tls_reaches_kafka_python_clients() -> None:
    config = kafka_client_config(Settings(**SCRAM))
    assert config == {
        "bootstrap_servers": ["k1.example:9093", "k2.example:9093", "k3.example:9093"],
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "kosh",
        "sasl_plain_password": "s3cret",
        "ssl_cafile": certifi.where(),
    }


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_scram_over_tls_reaches_the_faststream_broker(mechanism: str) -> None:
    kwargs = faststream_broker_kwargs(Settings(**{**SCRAM, "kafka_sasl_mechanism": mechanism}))
    aiokafka = parse_security(kwargs["security"])
    assert aiokafka["security_protocol"] == "SASL_SSL"
    assert aiokafka["sasl_mechanism"] == mechanism
    assert (aiokafka["sasl_plain_username"], aiokafka["sasl_plain_password"]) == ("kosh", "s3cret")
    assert aiokafka["ssl_context"].get_ca_certs(), "the CA file is loaded"


def test_tls_without_sasl_uses_an_ssl_context() -> None:
    settings = Settings(kafka_bootstrap="k:9093", kafka_security_protocol="SSL")
    assert parse_security(faststream_broker_kwargs(settings)["security"])[
        "security_protocol"] == "SSL"
    assert kafka_python_config(settings)["security_protocol"] == "SSL"


def test_sasl_without_credentials_is_refused_naming_what_is_missing() -> None:
    settings = Settings(kafka_bootstrap="k:9093", kafka_security_protocol="SASL_SSL",
                        kafka_sasl_mechanism="SCRAM-SHA-256")
    with pytest.raises(KafkaSecurityError, match="KOSH_KAFKA_USERNAME, KOSH_KAFKA_PASSWORD"):
        kafka_python_config(settings)


def test_a_ca_file_on_a_plaintext_connection_is_refused() -> None:
    settings = Settings(kafka_bootstrap="k:9092", kafka_ssl_cafile=Path(certifi.where()))
    with pytest.raises(KafkaSecurityError, match="use SSL or SASL_SSL"):
        kafka_python_config(settings)
