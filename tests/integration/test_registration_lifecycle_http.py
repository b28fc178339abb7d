"""The legal-act registry and the registration lifecycle over HTTP, with events travelling
store → Kafka → registers, as a client sees them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.security import ROUTE_RULES
from tests.conftest import make_settings
from tests.support.auth import EVERY_ROLE
from tests.support.builders import iin_for, registration_body
from tests.support.system import KoshProcess, wait_until

ACT_22 = "almaty-maslikhat-22-2021"


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> Iterator[KoshProcess]:
    """One system for the module: its tests use distinct people and dates."""
    kosh = KoshProcess(make_settings(tmp_path_factory.mktemp("lifecycle"), kafka_bootstrap)).start()
    yield kosh
    assert kosh.stop() == 0, kosh.log()[-2000:]


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()  # type: ignore[no-any-return]


def in_force(api: httpx.Client, on: str) -> dict[str, Any]:
    listing = ok(api.get("/legal-acts", params={"as_of": on}))
    return {
        "rules": listing["rules_in_force"]["act_id"],
        **{a["number"]: a["in_force"] for a in listing["acts"]},
    }


def test_legal_acts_are_seeded_listed_as_of_a_date_and_changed_by_the_authorised_body(
    system: KoshProcess,
) -> None:
    api = system.client()
    wait_until(lambda: len(ok(api.get("/legal-acts"))["acts"]) == 3, what="the seeded acts")
    assert in_force(api, "2021-03-20") == {
        "rules": "almaty-maslikhat-152-2017",
        "152": True,
        "22": False,
        "97": False,
    }
    none = ok(api.get("/legal-acts", params={"as_of": "2017-10-28"}))["rules_in_force"]
    assert none == {
        "act_id": None,
        "reason": "Rules: no edition of the Rules is in force on 2017-10-28",
    }

    publication = {"published_on": "2021-03-05"}
    denied = system.client("registrar").post(f"/legal-acts/{ACT_22}/publication", json=publication)
    assert denied.status_code == 403
    ok(system.client("authorised_body").post(f"/legal-acts/{ACT_22}/publication", json=publication))
    again = api.post(f"/legal-acts/{ACT_22}/publication", json=publication)
    assert again.status_code == 409 and "already recorded" in again.json()["error"]["message"]
    wait_until(lambda: in_force(api, "2021-03-15")["rules"] == ACT_22, what="22 in force")
    assert in_force(api, "2021-03-14")["rules"] == "almaty-maslikhat-152-2017"
    act = ok(api.get(f"/legal-acts/{ACT_22}", params={"as_of": "2021-03-15"}))
    assert (act["in_force_from"], act["registration_number"], act["in_force"]) == (
        "2021-03-15",
        "1691",
        True,
    )
    assert api.get("/legal-acts/no-such-act").status_code == 404

    submitted = ok(api.post("/registrations", json=registration_body(1)), 201)
    history = ok(api.get(f"/cases/{submitted['case_id']}/history"))["events"]
    assert history[0]["legal_basis"]["act_id"] == ACT_22, "commands cite the stored registry"


def test_registration_lifecycle_shows_in_the_residents_register(system: KoshProcess) -> None:
    api = system.client()
    foreigner = {
        "kind": "foreigner",
        "document_type": "passport",
        "document_number": "n-77",
        "family_name": "Smyth",
        "given_name": "Anna",
        "birth_date": "1991-04-05",
    }
    visit = ok(
        api.post(
            "/registrations",
            json=registration_body(2, person=foreigner, kind="temporary", valid_until="2099-06-30"),
        ),
        201,
    )["case_id"]
    ok(api.post(f"/registrations/{visit}/approve"))
    ok(api.post(f"/registrations/{visit}/extend", json={"valid_until": "2099-12-31"}))
    ok(
        api.post(
            f"/registrations/{visit}/corrections",
            json={"family_name": "Smith", "reason": "misspelt"},
        )
    )
    rows = wait_until(
        lambda: [
            r for r in ok(api.get("/residents/by-document/passport/N-77")) if r["corrected_fields"]
        ],
        what="the corrected foreigner",
    )
    (row,) = rows
    assert {
        k: row[k]
        for k in (
            "person_kind",
            "family_name",
            "registration_kind",
            "valid_until",
            "status",
            "corrected_fields",
            "iin",
        )
    } == {
        "person_kind": "foreigner",
        "family_name": "Smith",
        "registration_kind": "temporary",
        "valid_until": "2099-12-31",
        "status": "active",
        "corrected_fields": ["family_name"],
        "iin": None,
    }

    first = ok(
        api.post(
            "/registrations",
            json=registration_body(3, address={"district": "Medeu", "line": "Dostyk 1"}),
        ),
        201,
    )["case_id"]
    ok(api.post(f"/registrations/{first}/approve"))
    second = ok(
        api.post(
            "/registrations",
            json=registration_body(3, address={"district": "Almaly", "line": "Abay 2"}),
        ),
        201,
    )["case_id"]
    ok(api.post(f"/registrations/{second}/approve"))
    wait_until(
        lambda: ok(api.get(f"/residents/{iin_for(3)}"))["case_id"] == second,
        what="the new permanent registration",
    )
    history = ok(api.get(f"/residents/{iin_for(3)}/registrations"))
    assert [(r["case_id"], r["status"], r["end_reason"]) for r in history] == [
        (second, "active", None),
        (first, "ended", "superseded"),
    ]

    bad = api.post(f"/registrations/{second}/deregister", json={"reason": "emigrated"})
    assert bad.status_code == 422
    ok(api.post(f"/registrations/{second}/deregister", json={"reason": "left_country"}))
    wait_until(
        lambda: api.get(f"/residents/{iin_for(3)}").status_code == 404, what="the deregistration"
    )
    ended = ok(api.get("/residents", params={"district": "Almaly", "status": "ended"}))
    assert [(r["case_id"], r["end_reason"]) for r in ended] == [(second, "left_country")]


def test_s2_every_command_route_refuses_a_profile_field_as_extra_input(
    system: KoshProcess,
) -> None:
    api = system.client(*EVERY_ROLE, "data_protection_officer")
    posts = [
        path
        for (method, path), rule in ROUTE_RULES.items()
        if method == "POST" and rule.startswith("command:")
    ]
    assert "/registrations/{case_id}/corrections" in posts and "/legal-acts" in posts
    for template in posts:
        path = template.format(
            case_id=uuid.uuid4(), proposal_id=uuid.uuid4(), act_id="almaty-maslikhat-152-2017"
        )
        refused = api.post(path, json={"ethnicity": "x"})
        assert refused.status_code == 422, (path, refused.text)
        assert {"loc": ["body", "ethnicity"], "type": "extra_forbidden"} in [
            {"loc": d["loc"], "type": d["type"]} for d in refused.json()["detail"]
        ], path
