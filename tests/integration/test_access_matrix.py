"""Who may do what, walked exhaustively: every HTTP route and every Kafka command type
against every role. The expectations are written out here, independently of
api/security.py and infra/permissions.py, so a new route or command type without a rule
(or with a rule nobody agreed to) fails this test."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import structlog
from fastapi.testclient import TestClient

from api.bootstrap import Kosh, bootstrap, store_database
from api.http import ROUTERS, create_app
from consumers.intake import CommandIntake, Malformed
from infra.auth import ROLES, ApiKeyStore
from infra.command_registry import COMMAND_TYPES
from infra.settings import Settings
from tests.conftest import make_settings
from tests.support.auth import auth_headers, token
from tests.support.builders import iin_for

PUBLIC = "public"
CASEWORK = {"registrar", "migration_officer", "akimat_planner", "authorised_body"}
PERSONAL = {"registrar", "migration_officer", "auditor", "service"}
REGISTERS = CASEWORK | {"auditor", "service"}
AUDIT = {"auditor"}
OPS = {"operator", "auditor"}
SERVICE_GRANTS = {"crm": ["submit_registration"]}  # the service in this test may send only this

# Command type -> roles that may send it (the service role only by grant).
COMMANDS: dict[str, set[str]] = {
    "submit_registration": {"registrar", "service"},
    "approve_registration": {"registrar"},
    "refuse_registration": {"registrar"},
    "extend_registration": {"registrar"},
    "deregister_resident": {"registrar"},
    "correct_registration": {"registrar"},
    "establish_quota": {"authorised_body"},
    "draft_proposal": {"akimat_planner"},
    "submit_proposal": {"akimat_planner"},
    "accept_proposal": {"authorised_body"},
    "decline_proposal": {"authorised_body"},
    "apply_for_relocation": {"migration_officer"},
    "approve_relocation": {"migration_officer"},
    "refuse_relocation": {"migration_officer"},
    "withdraw_relocation": {"migration_officer"},
    "record_arrival": {"migration_officer"},
    "record_natural_growth": {"akimat_planner", "authorised_body"},
    "register_legal_act": {"authorised_body"},
    "enter_legal_act_publication": {"authorised_body"},
    "enter_legal_act_state_registration": {"authorised_body"},
    "repeal_legal_act": {"authorised_body"},
    "erase_subject": {"data_protection_officer"},
}


def command(name: str) -> set[str]:
    return COMMANDS[name]


ROUTES: dict[tuple[str, str], set[str] | str] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/asyncapi.json"): PUBLIC,
    ("GET", "/asyncapi"): PUBLIC,
    ("GET", "/metrics"): OPS,
    ("GET", "/ops/projections"): OPS,
    ("GET", "/ops/components"): OPS,
    ("GET", "/ops/dead-letters"): OPS,
    ("GET", "/ops/parked"): OPS,
    ("POST", "/registrations"): command("submit_registration"),
    ("POST", "/registrations/{case_id}/approve"): command("approve_registration"),
    ("POST", "/registrations/{case_id}/refuse"): command("refuse_registration"),
    ("POST", "/registrations/{case_id}/extend"): command("extend_registration"),
    ("POST", "/registrations/{case_id}/deregister"): command("deregister_resident"),
    ("POST", "/registrations/{case_id}/corrections"): command("correct_registration"),
    ("GET", "/cases/{case_id}/history"): PERSONAL,
    ("GET", "/cases/{case_id}/timeline"): PERSONAL,
    ("GET", "/residents"): PERSONAL,
    ("GET", "/residents/{iin}"): PERSONAL,
    ("GET", "/residents/{iin}/registrations"): PERSONAL,
    ("GET", "/residents/by-document/{document_type}/{document_number}"): PERSONAL,
    ("GET", "/as-of"): REGISTERS,
    ("GET", "/as-of/{register}"): PERSONAL,
    ("POST", "/quotas"): command("establish_quota"),
    ("GET", "/quotas"): REGISTERS,
    ("GET", "/quotas/{quota_id}"): REGISTERS,
    ("POST", "/relocations"): command("apply_for_relocation"),
    ("POST", "/relocations/{case_id}/approve"): command("approve_relocation"),
    ("POST", "/relocations/{case_id}/refuse"): command("refuse_relocation"),
    ("POST", "/relocations/{case_id}/withdraw"): command("withdraw_relocation"),
    ("POST", "/relocations/{case_id}/arrival"): command("record_arrival"),
    ("GET", "/relocations"): REGISTERS,
    ("GET", "/relocations/{case_id}"): REGISTERS,
    ("POST", "/proposals"): command("draft_proposal"),
    ("POST", "/proposals/{proposal_id}/submit"): command("submit_proposal"),
    ("POST", "/proposals/{proposal_id}/accept"): command("accept_proposal"),
    ("POST", "/proposals/{proposal_id}/decline"): command("decline_proposal"),
    ("GET", "/proposals"): REGISTERS,
    ("GET", "/proposals/{proposal_id}"): REGISTERS,
    ("GET", "/territories"): REGISTERS,
    ("GET", "/territories/{territory}"): REGISTERS,
    ("POST", "/monitoring/natural-growth"): command("record_natural_growth"),
    ("GET", "/monitoring/flows"): REGISTERS,
    ("GET", "/monitoring/age-bands"): REGISTERS,
    ("GET", "/monitoring/signals"): REGISTERS,
    ("GET", "/legal-acts"): REGISTERS,
    ("GET", "/legal-acts/{act_id}"): REGISTERS,
    ("POST", "/legal-acts"): command("register_legal_act"),
    ("POST", "/legal-acts/{act_id}/publication"): command("enter_legal_act_publication"),
    ("POST", "/legal-acts/{act_id}/state-registration"):
        command("enter_legal_act_state_registration"),
    ("POST", "/legal-acts/{act_id}/repeal"): command("repeal_legal_act"),
    ("GET", "/audit/public-key"): PUBLIC,
    ("GET", "/audit/tree-head"): AUDIT,
    ("POST", "/audit/tree-heads"): AUDIT,
    ("GET", "/audit/inclusion/{seq}"): AUDIT,
    ("GET", "/audit/consistency"): AUDIT,
    ("GET", "/audit/events"): AUDIT,
    ("POST", "/data-subjects/erasures"): command("erase_subject"),
}

PARAMS = {"iin": iin_for(1), "document_type": "passport", "document_number": "N1234567",
          "register": "residents", "seq": "1", "territory": "almaty"}


def app_routes() -> set[tuple[str, str]]:
    return {(m, r.path) for router in ROUTERS for r in router.routes
            for m in r.methods - {"HEAD"}}  # type: ignore[attr-defined]


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PARAMS.get(m[1], str(uuid.uuid4())), path)


@pytest.fixture(scope="module")
def kosh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kosh]:
    # No broker needed: the check is on the HTTP edge and the intake's authorisation.
    settings = make_settings(tmp_path_factory.mktemp("matrix"), "127.0.0.1:1",
                             service_grants=SERVICE_GRANTS)
    yield bootstrap(settings)


def headers_for(settings: Settings, role: str) -> dict[str, str]:
    # The service's subject is the one SERVICE_GRANTS names.
    return auth_headers(settings, role, subject="crm" if role == "service" else f"user-{role}")


def test_every_route_has_an_agreed_rule() -> None:
    routes = app_routes()
    assert not routes - ROUTES.keys(), "routes without an expectation in this table"
    assert not ROUTES.keys() - routes, "expectations for routes that no longer exist"


def test_every_command_type_has_an_agreed_rule() -> None:
    assert set(COMMAND_TYPES) <= COMMANDS.keys(), "command types without an expectation"


@pytest.mark.parametrize("route", sorted(ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
def test_route_allows_exactly_the_expected_roles(kosh: Kosh, route: tuple[str, str]) -> None:
    method, template = route
    expected = ROUTES[route]
    client = TestClient(create_app(kosh))
    path = concrete(template)
    body = {"json": {}} if method == "POST" else {}

    anonymous = client.request(method, path, **body)
    if expected == PUBLIC:
        assert anonymous.status_code not in (401, 403), anonymous.text
        return
    assert anonymous.status_code == 401, anonymous.text
    assert "authentication required" in anonymous.json()["error"]["message"]
    for role in ROLES:
        reply = client.request(method, path, headers=headers_for(kosh.settings, role), **body)
        if role in expected:
            assert reply.status_code not in (401, 403), f"{role}: {reply.text}"
            assert reply.status_code < 500, f"{role}: {reply.text}"
        else:
            assert reply.status_code == 403, f"{role} should be refused: {reply.text}"
            assert role in reply.json()["error"]["message"]


def test_refusals_are_logged_for_audit_without_the_token(kosh: Kosh) -> None:
    client = TestClient(create_app(kosh))
    bad = "Bearer " + token(kosh.settings, "operator")[:-4] + "AAAA"
    with structlog.testing.capture_logs() as logs:
        assert client.get("/residents", headers={"Authorization": bad}).status_code == 401
        assert client.get("/residents", headers=headers_for(kosh.settings, "operator")
                          ).status_code == 403
    denied = [e for e in logs if e["event"] == "auth.denied"]
    assert [e["status"] for e in denied] == [401, 403]
    assert denied[1]["subject"] == "user-operator"
    assert bad[7:] not in repr(logs), "no token is ever logged"


@pytest.mark.parametrize("command_type", sorted(COMMANDS))
def test_kafka_command_types_allow_exactly_the_expected_roles(kosh: Kosh,
                                                             command_type: str) -> None:
    intake = CommandIntake(kosh.settings, kosh.app, store_database(kosh.settings))

    def record(headers: list[tuple[str, bytes]]) -> SimpleNamespace:
        return SimpleNamespace(headers=headers)

    with pytest.raises(Malformed) as anonymous:
        intake.authorise(record([]), command_type)
    assert anonymous.value.reason == "unauthenticated"
    for role in ROLES:
        auth = [("authorization", headers_for(kosh.settings, role)["Authorization"].encode())]
        if role in COMMANDS[command_type]:
            principal, acting_as = intake.authorise(record(auth), command_type)
            assert acting_as == role
        else:
            with pytest.raises(Malformed) as refused:
                intake.authorise(record(auth), command_type)
            assert refused.value.reason == "forbidden", role


def test_an_api_key_authenticates_like_a_token_and_is_stored_only_as_a_hash(
    kosh: Kosh,
) -> None:
    keys = ApiKeyStore(store_database(kosh.settings))
    secret = keys.create("crm-batch", ["registrar"], "Almaty akimat")
    client = TestClient(create_app(kosh))
    assert client.get("/quotas", headers={"X-API-Key": secret}).status_code == 200
    assert client.get("/quotas", headers={"X-API-Key": secret + "x"}).status_code == 401
    stored = store_database(kosh.settings).query("SELECT * FROM kosh_api_keys")
    assert secret not in repr(stored)
