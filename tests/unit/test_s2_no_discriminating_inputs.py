"""§2: free choice of residence, no discrimination by origin, social or property status.

No command — by Kafka (infra/command_registry.py) or by HTTP (every request body of every
router) — has a field for ethnicity, religion, origin, nationality in the sense of
ethnicity, or wealth and income; and every command model refuses unknown fields, so such
a value cannot slip in as a decision input either.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ValidationError

from api.http import ROUTERS
from infra.command_registry import COMMAND_TYPES
from tests.support.builders import registration_body

# Field names that would make origin, belief or wealth a decision input. Citizenship as a
# legal status (§9: citizen / foreigner / stateless) is not among them; "nationality" is,
# since in Kazakh and Russian usage (национальность) it names ethnicity.
FORBIDDEN = re.compile(
    r"ethni|nationalit|natsional|race|racial|relig|faith|confession|belief|origin|descent|"
    r"ancestr|tribe|clan|caste|wealth|income|salary|wage|asset|propert|social_status|"
    r"class_status|poverty|rich",
    re.IGNORECASE,
)


def properties(schema: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, field name) of every property anywhere in a JSON schema."""
    if isinstance(schema, dict):
        for name, sub in (schema.get("properties") or {}).items():
            yield path, name
            yield from properties(sub, f"{path}.{name}")
        for key, sub in schema.items():
            if key != "properties":
                yield from properties(sub, path)
    elif isinstance(schema, list):
        for sub in schema:
            yield from properties(sub, path)


def objects(schema: Any) -> Iterator[dict[str, Any]]:
    if isinstance(schema, dict):
        if schema.get("properties"):
            yield schema
        for sub in schema.values():
            yield from objects(sub)
    elif isinstance(schema, list):
        for sub in schema:
            yield from objects(sub)


def http_schema() -> dict[str, Any]:
    routes = [r for router in ROUTERS for r in router.routes]
    return get_openapi(title="kosh", version="test", routes=routes)


def http_request_bodies() -> list[tuple[str, dict[str, Any]]]:
    schema = http_schema()
    bodies = []
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            if "requestBody" in op:
                bodies.append((f"{method.upper()} {path}", op["requestBody"]))
    return bodies


COMMAND_MODELS = sorted(
    {(name, spec.model) for name, spec in COMMAND_TYPES.items()}, key=lambda kv: kv[0]
)


@pytest.mark.parametrize(("name", "model"), COMMAND_MODELS, ids=[n for n, _ in COMMAND_MODELS])
def test_s2_no_kafka_command_takes_origin_belief_or_wealth(
    name: str, model: type[BaseModel]
) -> None:
    found = [f"{p}.{f}" for p, f in properties(model.model_json_schema()) if FORBIDDEN.search(f)]
    assert found == [], f"{name} takes {found}"


def test_s2_no_http_request_body_takes_origin_belief_or_wealth() -> None:
    schema = http_schema()
    bodies = http_request_bodies()
    assert len(bodies) >= len({n for n, _ in COMMAND_MODELS}) - 1, "every command has a route"
    found = [f"{p}.{f}" for p, f in properties(schema["components"]) if FORBIDDEN.search(f)]
    found += [
        f"{route}{p}.{f}"
        for route, body in bodies
        for p, f in properties(body)
        if FORBIDDEN.search(f)
    ]
    assert found == []


def test_s2_every_command_model_refuses_unknown_fields() -> None:
    open_models = [
        name
        for name, model in COMMAND_MODELS
        for obj in objects(model.model_json_schema())
        if obj.get("additionalProperties") is not False
    ]
    assert open_models == []
    components = http_schema()["components"]["schemas"]
    bodies = {
        ref.rsplit("/", 1)[-1]
        for _, body in http_request_bodies()
        for ref in re.findall(r"'\$ref': '([^']+)'", str(body))
    }
    assert "SubmitRegistration" in bodies and len(bodies) >= len(COMMAND_MODELS)
    open_bodies = [
        n
        for n in sorted(bodies)
        for obj in objects(components[n])
        if obj.get("additionalProperties") is not False
    ]
    assert open_bodies == []


@pytest.mark.parametrize(("name", "model"), COMMAND_MODELS, ids=[n for n, _ in COMMAND_MODELS])
def test_s2_an_ethnicity_field_is_refused_as_extra_input(name: str, model: type[BaseModel]) -> None:
    with pytest.raises(ValidationError) as refused:
        model.model_validate({"ethnicity": "x"})
    assert {"type": "extra_forbidden", "loc": ("ethnicity",)} in [
        {"type": e["type"], "loc": e["loc"]} for e in refused.value.errors()
    ]


@pytest.mark.parametrize("field", ["religion", "origin", "nationality", "income", "wealth"])
def test_s2_a_person_with_a_profile_field_is_refused(field: str) -> None:
    body = registration_body(1)
    body["person"] = {**body["person"], field: "x"}
    with pytest.raises(ValidationError) as refused:
        COMMAND_TYPES["submit_registration"].model.model_validate(body)
    (error,) = refused.value.errors()
    assert (error["type"], error["loc"]) == ("extra_forbidden", ("person", field))
