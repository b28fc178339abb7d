"""Issue 2: a residence registration travels command → store → Kafka → register."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.settings import Settings
from tests.support.builders import iin_for, registration_body
from tests.support.system import KoshProcess, wait_until


@pytest.fixture
def system(store_settings: Settings) -> Iterator[KoshProcess]:
    kosh = KoshProcess(store_settings).start()
    yield kosh
    assert kosh.stop() == 0, kosh.log()[-2000:]


def test_approved_registration_appears_in_residents_register(system: KoshProcess) -> None:
    api = system.client(timeout=10)
    body = registration_body(1, address={"district": "Medeu", "line": "Dostyk 5, flat 2"},
                             housing={"type": "state", "useful_area_m2": 45.0,
                                      "occupants_after_registration": 3})
    submitted = api.post("/registrations", json=body, headers={"X-Correlation-ID": "corr-a"})
    assert submitted.status_code == 201, submitted.text
    case_id = submitted.json()["case_id"]
    assert api.get(f"/residents/{iin_for(1)}").status_code == 404

    approved = api.post(f"/registrations/{case_id}/approve")
    assert approved.status_code == 200, approved.text

    resident = wait_until(lambda: api.get(f"/residents/{iin_for(1)}").json().get("case_id"),
                          timeout=10, what="resident to appear")
    assert resident == case_id
    listed = api.get("/residents", params={"district": "Medeu"}).json()
    assert [r["iin"] for r in listed] == [iin_for(1)]
    assert api.get("/residents", params={"district": "Turksib"}).json() == []

    history = api.get(f"/cases/{case_id}/history").json()["events"]
    assert [e["type"] for e in history] == ["RegistrationCase.Submitted",
                                            "RegistrationCase.Approved"]
    first = history[0]
    assert first["correlation_id"] == "corr-a"
    assert first["legal_basis"]["clause"] == "§9"
    assert first["actor"]["role"]
    assert first["recorded_at"] and first["effective_date"]


def test_s10_refusal_and_invalid_iin_are_clear_422s_that_store_nothing(
    system: KoshProcess,
) -> None:
    api = system.client(timeout=10)
    seeded = api.get("/ops/projections").json()["store_head"]  # the legal-act registry
    small = registration_body(2, housing={"type": "akimat_leased", "useful_area_m2": 29.9,
                                          "occupants_after_registration": 2})
    refused = api.post("/registrations", json=small)
    assert refused.status_code == 422
    assert refused.json()["error"]["clause"] == "§10"
    assert "15 m²" in refused.json()["error"]["message"]

    bad = registration_body(3)
    iin = bad["person"]["iin"]
    cases = {
        "check digit": iin[:11] + str((int(iin[11]) + 1) % 10),
        "century digit": iin[:6] + "9" + iin[7:],
        "date": "991340" + iin[6:],
    }
    for part, wrong in cases.items():
        bad["person"]["iin"] = wrong
        r = api.post("/registrations", json=bad)
        assert r.status_code == 422, r.text
        (error,) = r.json()["detail"]
        assert error["loc"] == ["body", "person", "iin"]
        assert f"IIN {part} is wrong" in error["msg"]

    assert api.post("/registrations", json={**bad, "ethnicity": "x"}).status_code == 422
    ops = api.get("/ops/projections").json()
    assert ops["store_head"] == seeded, "refused commands must store no event"


def test_unknown_case_is_404_and_double_approval_is_409(system: KoshProcess) -> None:
    api = system.client(timeout=10)
    missing = api.post("/registrations/00000000-0000-0000-0000-000000000000/approve")
    assert missing.status_code == 404
    case_id = api.post("/registrations", json=registration_body(4)).json()["case_id"]
    assert api.post(f"/registrations/{case_id}/approve").status_code == 200
    again = api.post(f"/registrations/{case_id}/approve")
    assert again.status_code == 409
    assert "cannot approve" in again.json()["error"]["message"]
