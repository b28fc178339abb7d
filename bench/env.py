"""What every benchmark section runs in: a scratch directory, one local broker, settings
isolated per store (own data dir, topics and groups), and PostgreSQL when reachable."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.broker import LocalBroker, free_port
from infra.settings import Settings

POSTGRES_URL = os.environ.get(
    "KOSH_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@dataclass
class BenchEnv:
    quick: bool
    root: Path
    bootstrap: str
    postgres_url: str | None
    schemas: list[str] = field(default_factory=list)

    def settings(self, name: str, postgres: bool = False, **overrides: Any) -> Settings:
        tag = f"{name}{uuid.uuid4().hex[:8]}"
        values: dict[str, Any] = {
            "data_dir": self.root / tag,
            "kafka_bootstrap": self.bootstrap,
            "topic_prefix": f"b{tag}",
            "consumer_group_prefix": f"b{tag}",
            "api_port": free_port(),
            "jwt_secret": f"bench-{uuid.uuid4().hex}",
        }
        if postgres:
            assert self.postgres_url is not None
            schema = f"bench_{tag.lower()}"
            self.schemas.append(schema)
            values.update(database_url=self.postgres_url, database_schema=schema)
        values.update(overrides)
        return Settings(**values)


def postgres_reachable(url: str) -> bool:
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3):
            return True
    except Exception:  # noqa: BLE001 - any failure means: no PostgreSQL figures
        return False


@contextmanager
def bench_env(quick: bool) -> Iterator[BenchEnv]:
    root = Path(tempfile.mkdtemp(prefix="kosh-bench-"))
    broker = LocalBroker().start()
    env = BenchEnv(
        quick, root, broker.bootstrap, POSTGRES_URL if postgres_reachable(POSTGRES_URL) else None
    )
    try:
        yield env
    finally:
        broker.stop()
        shutil.rmtree(root, ignore_errors=True)
        if env.postgres_url and env.schemas:
            import psycopg

            with psycopg.connect(env.postgres_url, autocommit=True) as conn:
                for schema in env.schemas:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
