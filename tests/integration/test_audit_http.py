"""Auditors' HTTP: the public key, signed tree heads, inclusion and consistency proofs that
verify with projections/audit/proofs.py alone, and the trail's record of a case."""

from __future__ import annotations

import base64
import datetime as dt

from fastapi.testclient import TestClient

from api.bootstrap import Kosh, bootstrap
from api.http import create_app
from domain.commands import ApproveRegistration, SubmitRegistration
from domain.context import Actor, CommandContext
from infra.settings import Settings
from projections.audit.proofs import (
    decode_leaf,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
    verify_tree_head,
)
from tests.support.auth import auth_headers
from tests.support.builders import registration_body


def register(kosh: Kosh, n: int) -> str:
    ctx = CommandContext(
        Actor(f"officer-{n}", "registrar", "Almaly district akimat"),
        dt.date(2024, 5, n + 1),
        f"corr-{n}",
        f"cause-{n}",
    )
    case = kosh.app.submit_registration(SubmitRegistration(**registration_body(n)), ctx)
    kosh.app.approve_registration(case.case_id, ApproveRegistration(), ctx)
    return str(case.case_id)


def test_proofs_served_over_http_verify_offline(settings: Settings) -> None:
    kosh = bootstrap(settings)
    api = TestClient(create_app(kosh))
    auditor = auth_headers(settings, "auditor")
    first_case = register(kosh, 1)

    pem = api.get("/audit/public-key")  # public: a verifier needs nothing else
    assert pem.status_code == 200 and pem.text.startswith("-----BEGIN PUBLIC KEY-----")
    key = pem.content
    assert api.get("/audit/tree-head", headers=auditor).status_code == 404

    old = api.post("/audit/tree-heads", headers=auditor)
    assert old.status_code == 201, old.text
    old_head = old.json()
    assert verify_tree_head(old_head, key) and old_head["tree_size"] >= 2

    register(kosh, 2)
    new_head = api.post("/audit/tree-heads", headers=auditor).json()
    assert verify_tree_head(new_head, key) and new_head["tree_size"] > old_head["tree_size"]
    latest = api.get("/audit/tree-head", headers=auditor).json()
    assert {k: latest[k] for k in new_head} == new_head

    # The first event of the first case, proved under the newest signed root.
    trail = api.get("/audit/events", params={"case_id": first_case}, headers=auditor).json()
    seq = trail["events"][0]["seq"]
    proof = api.get(f"/audit/inclusion/{seq}", headers=auditor).json()
    assert proof["tree_size"] == new_head["tree_size"] and proof["tree_head"]["signature"]
    leaf = base64.b64decode(proof["leaf_b64"])
    assert decode_leaf(leaf)["sequence"] == seq  # type: ignore[index]
    assert verify_inclusion(
        proof["leaf_index"],
        new_head["tree_size"],
        leaf_hash(leaf),
        [bytes.fromhex(h) for h in proof["inclusion_proof"]],
        bytes.fromhex(new_head["root_hash"]),
    )
    older = api.get(
        f"/audit/inclusion/{seq}", params={"tree_size": old_head["tree_size"]}, headers=auditor
    ).json()
    assert verify_inclusion(
        older["leaf_index"],
        old_head["tree_size"],
        leaf_hash(leaf),
        [bytes.fromhex(h) for h in older["inclusion_proof"]],
        bytes.fromhex(old_head["root_hash"]),
    )

    # The newer head extends the older one: nothing before it was rewritten.
    sizes = {"first": old_head["tree_size"], "second": new_head["tree_size"]}
    consistency = api.get("/audit/consistency", params=sizes, headers=auditor).json()
    assert verify_consistency(
        old_head["tree_size"],
        new_head["tree_size"],
        bytes.fromhex(old_head["root_hash"]),
        bytes.fromhex(new_head["root_hash"]),
        [bytes.fromhex(h) for h in consistency["consistency_proof"]],
    )

    assert api.get("/audit/inclusion/999999", headers=auditor).status_code == 404
    too_small = {"tree_size": proof["leaf_index"]} if proof["leaf_index"] else {"tree_size": 0}
    assert api.get(f"/audit/inclusion/{seq}", params=too_small, headers=auditor).status_code == 422
    assert (
        api.get("/audit/consistency", params={"first": 5, "second": 2}, headers=auditor).status_code
        == 422
    )


def test_trail_records_who_when_and_under_which_act(settings: Settings) -> None:
    kosh = bootstrap(settings)
    api = TestClient(create_app(kosh))
    case_id = register(kosh, 3)
    auditor = auth_headers(settings, "auditor")
    assert api.post("/audit/tree-heads", headers=auditor).status_code == 201

    events = api.get("/audit/events", params={"case_id": case_id}, headers=auditor).json()
    submitted, approved = events["events"]
    assert submitted["event_type"] == "RegistrationCase.Submitted"
    assert approved["event_type"] == "RegistrationCase.Approved"
    assert {
        k: submitted[k]
        for k in (
            "actor_id",
            "role",
            "organisation",
            "effective_date",
            "clause",
            "correlation_id",
            "causation_id",
        )
    } == {
        "actor_id": "officer-3",
        "role": "registrar",
        "organisation": "Almaly district akimat",
        "effective_date": "2024-05-04",
        "clause": "§9",
        "correlation_id": "corr-3",
        "causation_id": "cause-3",
    }
    assert submitted["legal_act_id"] and submitted["legal_act"]
    assert dt.datetime.fromisoformat(submitted["recorded_at"]) <= dt.datetime.fromisoformat(
        approved["recorded_at"]
    )
    assert submitted["seq"] < approved["seq"]


def test_audit_routes_are_for_auditors_only(settings: Settings) -> None:
    api = TestClient(create_app(bootstrap(settings)))
    registrar = auth_headers(settings, "registrar")
    assert api.get("/audit/tree-head").status_code == 401
    assert api.get("/audit/tree-head", headers=registrar).status_code == 403
    assert api.post("/audit/tree-heads", headers=registrar).status_code == 403
    assert api.get("/audit/consistency", params={"first": 0}, headers=registrar).status_code == 403
