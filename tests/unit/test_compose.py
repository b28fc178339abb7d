"""Issue 9: the deployment files describe a runnable Kosh on Apache Kafka and PostgreSQL."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.runner import ROLES
from infra.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "compose.yaml"
DOCKERFILE = REPO / "Dockerfile"


def services() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(COMPOSE.read_text())["services"]  # type: ignore[no-any-return]


def test_every_role_of_kosh_runs_as_its_own_service() -> None:
    by_role = {
        s["command"][-1]: name for name, s in services().items()
        if s.get("command", [])[:1] == ["--role"]
    }
    assert set(ROLES) <= set(by_role), f"roles without a service: {set(ROLES) - set(by_role)}"
    assert {"api", "intake", "publisher", "projections"} <= set(by_role)


def test_every_service_has_a_health_check_and_the_api_probes_healthz() -> None:
    all_services = services()
    assert [n for n, s in all_services.items() if not s.get("healthcheck")] == []
    assert "/healthz" in " ".join(all_services["api"]["healthcheck"]["test"])


def test_kafka_is_the_official_image_in_kraft_mode_and_postgres_is_present() -> None:
    s = services()
    assert s["kafka"]["image"].startswith("apache/kafka:")
    env = s["kafka"]["environment"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"] and "zookeeper" not in str(s).lower()
    assert s["postgres"]["image"].startswith("postgres:")


def test_kosh_services_wait_for_healthy_kafka_and_postgres_and_use_them() -> None:
    for name, s in services().items():
        if name in ("kafka", "postgres"):
            continue
        assert s["depends_on"]["kafka"]["condition"] == "service_healthy", name
        assert s["depends_on"]["postgres"]["condition"] == "service_healthy", name
        assert s["environment"]["KOSH_KAFKA_BOOTSTRAP"] == "kafka:9092", name
        assert s["environment"]["KOSH_DATABASE_URL"].startswith("postgresql://"), name


def test_every_kosh_variable_in_compose_is_a_real_setting() -> None:
    known = {f"KOSH_{n.upper()}" for n in Settings.model_fields}
    used = set(re.findall(r"^\s+(KOSH_[A-Z0-9_]+):", COMPOSE.read_text(), flags=re.M))
    assert used - known == set(), "misspelt or unknown settings"


def test_publishers_run_with_a_standby_and_projections_scale_out() -> None:
    s = services()
    assert s["publisher"]["deploy"]["replicas"] >= 2
    assert s["projections"]["deploy"]["replicas"] >= 2


def test_dockerfile_is_multi_stage_and_runs_kosh_up_as_a_non_root_user() -> None:
    text = DOCKERFILE.read_text()
    assert len(re.findall(r"^FROM ", text, flags=re.M)) >= 2
    assert "COPY --from=build" in text
    users = re.findall(r"^USER (\S+)", text, flags=re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert 'ENTRYPOINT ["kosh", "up"]' in text


def compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True,
                                 timeout=30).returncode == 0:
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone else None


def test_docker_compose_accepts_the_file() -> None:
    command = compose_command()
    if command is None:
        pytest.skip("neither the docker compose plugin nor docker-compose is installed")
    result = subprocess.run([*command, "-f", str(COMPOSE), "config", "-q"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
