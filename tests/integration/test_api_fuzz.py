"""schemathesis against the OpenAPI schema, in process on a real SQLite store: whatever the
generated input, no 5xx and every documented response matches its schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.bootstrap import bootstrap
from api.http import create_app
from api.runner import prepare_topics
from tests.conftest import make_settings
from tests.support.auth import EVERY_ROLE, auth_headers


@pytest.fixture(scope="module")
def kosh_app(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> object:
    # Commands are stored for real; the broker only answers /readyz (nothing publishes).
    config = make_settings(Path(tmp_path_factory.mktemp("fuzz")), kafka_bootstrap)
    prepare_topics(config)
    return create_app(bootstrap(config))


def test_no_input_makes_the_api_fail_or_break_its_contract(kosh_app: object) -> None:
    api = schemathesis.openapi.from_asgi("/openapi.json", kosh_app)
    headers = auth_headers(kosh_app.state.kosh.settings, *EVERY_ROLE,  # type: ignore[attr-defined]
                           "data_protection_officer")
    failures: list[str] = []
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) > 40, "every route is in the schema"
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def exercise(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers,
                                   checks=[not_a_server_error, response_schema_conformance])

        try:
            exercise()
        except Exception as exc:  # noqa: BLE001 - collected, reported together below
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
