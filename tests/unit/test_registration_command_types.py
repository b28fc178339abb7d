"""Every command type the Kafka intake accepts has a role that may send it and a handler
on the application service; the registration and legal-act types are among them."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from api.security import ROUTE_RULES
from infra.application import KoshApplication
from infra.command_registry import COMMAND_TYPES
from infra.permissions import COMMAND_ROLES
from infra.service_base import Outcome

NEW_TYPES = {
    "extend_registration": "registrar",
    "deregister_resident": "registrar",
    "correct_registration": "registrar",
    "register_legal_act": "authorised_body",
    "enter_legal_act_publication": "authorised_body",
    "enter_legal_act_state_registration": "authorised_body",
    "repeal_legal_act": "authorised_body",
}


class Recorder:
    """Stands in for the application: remembers which method a command type calls."""

    def __init__(self) -> None:
        self.called: list[str] = []

    def __getattr__(self, name: str) -> Any:
        def method(*args: Any) -> Outcome:
            self.called.append(name)
            return Outcome(uuid.uuid4(), ())

        return method


@pytest.mark.parametrize("name", sorted(COMMAND_TYPES))
def test_every_command_type_has_a_role_and_a_handler(name: str) -> None:
    assert COMMAND_ROLES.get(name), f"{name} has no role in infra/permissions.py"
    app = Recorder()
    COMMAND_TYPES[name].handle(app, None, None, uuid.uuid4())  # type: ignore[arg-type]
    (method,) = app.called
    assert callable(getattr(KoshApplication, method, None)), f"{name} → missing {method}"


def test_the_registration_lifecycle_and_legal_act_commands_are_sent_by_their_roles() -> None:
    assert {n: sorted(COMMAND_ROLES[n]) for n in NEW_TYPES} == {
        n: [role] for n, role in NEW_TYPES.items()
    }
    assert all(COMMAND_TYPES[n].targets_case for n in NEW_TYPES if n != "register_legal_act")


def test_the_readme_lists_every_command_type_and_command_route() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme[readme.index("## Case types and commands") :]
    table = table[: table.index("\n## ")]
    missing = [f"`{n}`" for n in COMMAND_TYPES if f"`{n}`" not in table]
    routes = [
        p.replace("{case_id}", "{id}").replace("{proposal_id}", "{id}")
        for (m, p), rule in ROUTE_RULES.items()
        if m == "POST" and rule.startswith("command:")
    ]
    missing += [
        r
        for r in routes
        if f"`POST {r}`" not in table and f"…/{r.rsplit('/', 1)[-1]}`" not in table
    ]
    assert missing == []
