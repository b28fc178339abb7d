"""Connection and security settings for every Kafka client, from one set of settings.

kafka-python (publisher, admin, tools) and faststream/aiokafka (consumers) spell the same
things differently; both are derived here so a production cluster with SASL/SCRAM and TLS
is configured once, through KOSH_KAFKA_* variables, and no client is left on PLAINTEXT.
"""

from __future__ import annotations

import ssl
from typing import Any

from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)

from infra.settings import Settings


class KafkaSecurityError(ValueError):
    """The security settings contradict each other; raised at start-up, not mid-run."""


def bootstrap_servers(settings: Settings) -> list[str]:
    if not settings.kafka_bootstrap:
        raise KafkaSecurityError("KOSH_KAFKA_BOOTSTRAP is not set and no local broker runs")
    return [s.strip() for s in settings.kafka_bootstrap.split(",") if s.strip()]


def _uses_sasl(settings: Settings) -> bool:
    return settings.kafka_security_protocol.startswith("SASL_")


def _uses_tls(settings: Settings) -> bool:
    return settings.kafka_security_protocol in ("SSL", "SASL_SSL")


def _check(settings: Settings) -> None:
    if _uses_sasl(settings):
        missing = [
            name
            for name, value in (
                ("KOSH_KAFKA_SASL_MECHANISM", settings.kafka_sasl_mechanism),
                ("KOSH_KAFKA_USERNAME", settings.kafka_username),
                ("KOSH_KAFKA_PASSWORD", settings.kafka_password),
            )
            if not value
        ]
        if missing:
            raise KafkaSecurityError(
                f"KOSH_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} "
                f"needs {', '.join(missing)}"
            )
    if settings.kafka_ssl_cafile is not None and not _uses_tls(settings):
        raise KafkaSecurityError(
            "KOSH_KAFKA_SSL_CAFILE is set but the protocol is "
            f"{settings.kafka_security_protocol}; use SSL or SASL_SSL"
        )


def kafka_python_config(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for KafkaProducer, KafkaConsumer and KafkaAdminClient."""
    _check(settings)
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers(settings),
        "security_protocol": settings.kafka_security_protocol,
    }
    if _uses_sasl(settings):
        config["sasl_mechanism"] = settings.kafka_sasl_mechanism
        config["sasl_plain_username"] = settings.kafka_username
        config["sasl_plain_password"] = settings.kafka_password
    if _uses_tls(settings) and settings.kafka_ssl_cafile is not None:
        config["ssl_cafile"] = str(settings.kafka_ssl_cafile)
    return config


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if not _uses_tls(settings):
        return None
    # With no CA file the system trust store verifies the brokers (a public CA).
    cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    return ssl.create_default_context(cafile=cafile)


def faststream_security(settings: Settings) -> BaseSecurity | None:
    """The `security=` argument of faststream's KafkaBroker (aiokafka underneath)."""
    _check(settings)
    context = ssl_context(settings)
    use_ssl = context is not None
    if not _uses_sasl(settings):
        return BaseSecurity(ssl_context=context, use_ssl=True) if use_ssl else None
    user, password = settings.kafka_username or "", settings.kafka_password or ""
    kind = {
        "SCRAM-SHA-256": SASLScram256,
        "SCRAM-SHA-512": SASLScram512,
        "PLAIN": SASLPlaintext,
    }[settings.kafka_sasl_mechanism or ""]
    return kind(user, password, ssl_context=context, use_ssl=use_ssl)


def faststream_broker_kwargs(settings: Settings) -> dict[str, Any]:
    """Bootstrap list and security for `KafkaBroker(**faststream_broker_kwargs(s), ...)`."""
    return {
        "bootstrap_servers": bootstrap_servers(settings),
        "security": faststream_security(settings),
    }
