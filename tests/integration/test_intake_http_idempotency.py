"""Issue 5: a command sent over HTTP with an Idempotency-Key executes once; a repeat gets
the first response and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from infra.settings import Settings
from tests.support.builders import registration_body
from tests.support.system import KoshProcess


@pytest.fixture
def api(store_settings: Settings) -> Iterator[httpx.Client]:
    kosh = KoshProcess(store_settings, roles="api").start()
    yield kosh.client(timeout=10)
    assert kosh.stop() == 0, kosh.log()[-2000:]


def head(api: httpx.Client) -> int:
    return int(api.get("/ops/projections").json()["store_head"])


def test_same_key_and_body_returns_the_first_response_and_stores_once(
    api: httpx.Client,
) -> None:
    key = {"Idempotency-Key": "crm-7f1c"}
    seeded = head(api)  # the legal-act registry, stored at start-up
    first = api.post("/registrations", json=registration_body(1), headers=key)
    assert first.status_code == 201, first.text
    again = api.post("/registrations", json=registration_body(1), headers=key)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert head(api) == seeded + 1

    case_id = first.json()["case_id"]
    approve = {"Idempotency-Key": "crm-approve-1"}
    approved = api.post(f"/registrations/{case_id}/approve", headers=approve)
    assert approved.status_code == 200
    assert api.post(f"/registrations/{case_id}/approve", headers=approve).json() == \
        approved.json(), "a repeated approval is not a 409: it is the same approval"
    history = api.get(f"/cases/{case_id}/history").json()["events"]
    assert [e["type"] for e in history] == ["RegistrationCase.Submitted",
                                            "RegistrationCase.Approved"]


def test_same_key_with_a_different_body_is_refused_clearly(api: httpx.Client) -> None:
    key = {"Idempotency-Key": "crm-reused"}
    seeded = head(api)
    assert api.post("/registrations", json=registration_body(2), headers=key).status_code == 201
    other = api.post("/registrations", json=registration_body(3), headers=key)
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert "already used for a different command" in other.json()["error"]["message"]
    assert head(api) == seeded + 1


def test_s10_refusal_is_replayed_and_stores_nothing(api: httpx.Client) -> None:
    key = {"Idempotency-Key": "crm-small-flat"}
    seeded = head(api)
    small = registration_body(4, housing={"type": "state", "useful_area_m2": 10.0,
                                          "occupants_after_registration": 1})
    first = api.post("/registrations", json=small, headers=key)
    assert first.status_code == 422 and first.json()["error"]["clause"] == "§10"
    again = api.post("/registrations", json=small, headers=key)
    assert (again.status_code, again.json()) == (422, first.json())
    assert head(api) == seeded


def test_requests_without_a_key_are_not_deduplicated(api: httpx.Client) -> None:
    a = api.post("/registrations", json=registration_body(5))
    b = api.post("/registrations", json=registration_body(5))
    assert a.status_code == b.status_code == 201
    assert a.json()["case_id"] != b.json()["case_id"]
    bad = api.post("/registrations", json=registration_body(6),
                   headers={"Idempotency-Key": "x" * 300})
    assert bad.status_code == 400
