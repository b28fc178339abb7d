"""Session-wide real infrastructure: a tansu broker on a free port, PostgreSQL if reachable."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.broker import LocalBroker, free_port
from infra.settings import Settings

POSTGRES_URL = os.environ.get(
    "KOSH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    broker = LocalBroker().start()
    yield broker.bootstrap
    broker.stop()


def postgres_reachable() -> str | None:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        return f"{type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    problem = postgres_reachable()
    if problem:
        message = f"PostgreSQL at {POSTGRES_URL} is not reachable ({problem})"
        if IN_CI:
            pytest.fail(message + "; it is required when CI=true")
        pytest.skip(message)
    return POSTGRES_URL


def _drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def make_settings(tmp_path: Path, kafka_bootstrap: str, **overrides: object) -> Settings:
    """Settings isolated per test: own data dir, topics, groups and API port."""
    tag = uuid.uuid4().hex[:10]
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "kafka_bootstrap": kafka_bootstrap,
        "topic_prefix": f"t{tag}",
        "consumer_group_prefix": f"g{tag}",
        "api_port": free_port(),
        "publisher_idle_ms": 20,
        # Fixed per test so the test process and the system under test sign alike.
        "jwt_secret": f"test-secret-{tag}-{uuid.uuid4().hex}",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path, kafka_bootstrap: str) -> Settings:
    return make_settings(tmp_path, kafka_bootstrap)


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _backend_settings(request: pytest.FixtureRequest, path: Path,
                      kafka_bootstrap: str) -> Iterator[Settings]:
    if request.param == "sqlite":
        yield make_settings(path, kafka_bootstrap)
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"kosh_test_{uuid.uuid4().hex[:10]}"
    yield make_settings(path, kafka_bootstrap, database_url=url, database_schema=schema)
    _drop_schema(schema)


@pytest.fixture(params=BACKENDS)
def store_settings(request: pytest.FixtureRequest, tmp_path: Path,
                   kafka_bootstrap: str) -> Iterator[Settings]:
    """The same test once on SQLite files and once on PostgreSQL (own schema)."""
    yield from _backend_settings(request, tmp_path, kafka_bootstrap)


@pytest.fixture(scope="module", params=BACKENDS)
def module_store_settings(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                          kafka_bootstrap: str) -> Iterator[Settings]:
    """As store_settings, shared by a module's tests: for a history that takes seconds to
    record and that those tests only read."""
    yield from _backend_settings(request, tmp_path_factory.mktemp("shared"), kafka_bootstrap)
