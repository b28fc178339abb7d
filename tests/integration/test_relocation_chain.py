"""§5 → §6 → §9 end to end on the real broker: a proposal opens the city for kandases,
a family applies and is approved against the quota, arrives, and the relocation process
manager (reacting to the Arrived event on Kafka) registers each person's residence."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from infra.settings import Settings
from tests.support.builders import iin_for
from tests.support.system import KoshProcess, wait_until

BODY = {"X-Actor-Role": "authorised_body", "X-Actor-Id": "ministry-1"}
AKIMAT = {"X-Actor-Role": "akimat_planner", "X-Actor-Id": "planner-1"}
OFFICER = {"X-Actor-Role": "migration_officer", "X-Actor-Id": "officer-1"}


@pytest.fixture
def system(settings: Settings) -> Iterator[KoshProcess]:
    kosh = KoshProcess(settings).start()
    yield kosh
    assert kosh.stop() == 0, kosh.log()[-2000:]


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()  # type: ignore[no-any-return]


def person(n: int) -> dict[str, str]:
    return {"iin": iin_for(n), "family_name": f"Family{n}", "given_name": f"Given{n}"}


def test_s6_relocation_arrival_registers_the_family_through_the_process_manager(
    system: KoshProcess,
) -> None:
    api = system.client(timeout=10)
    quota_id = ok(api.post("/quotas", headers=BODY, json={
        "kind": "kandas", "territory": "Almaty", "period": "2026", "limit": 10,
        "effective_date": "2025-11-01"}), 201)["case_id"]
    closed = api.post("/relocations", headers=OFFICER, json={
        "category": "kandas", "territory": "Almaty", "period": "2026",
        "applicant": person(100), "effective_date": "2025-11-01"})
    assert closed.status_code == 422, closed.text
    assert closed.json()["error"]["clause"] == "§6"
    assert "not designated for settling kandases" in closed.json()["error"]["message"]
    proposal = ok(api.post("/proposals", headers=AKIMAT, json={
        "kind": "include_territory", "categories": ["kandas"], "rationale": "labour shortage",
        "effective_date": "2025-11-02"}), 201)["case_id"]
    ok(api.post(f"/proposals/{proposal}/submit", headers=AKIMAT,
                json={"effective_date": "2025-11-03"}))
    ok(api.post(f"/proposals/{proposal}/accept", headers=BODY,
                json={"effective_date": "2025-11-10", "reasons": "agreed"}))
    refused = api.post(f"/proposals/{proposal}/accept", headers=BODY)
    assert refused.status_code == 409, "a decided proposal is final"
    territory = wait_until(lambda: api.get("/territories/Almaty",
                                           params={"on": "2025-11-10"}).json()["history"],
                           what="the designation in the territories register")
    assert territory == [{"category": "kandas", "open": True, "effective_from": "2025-11-10",
                          "proposal_id": proposal}]
    before = api.get("/territories/Almaty", params={"on": "2025-11-09"}).json()
    assert before["categories"]["kandas"]["open"] is False
    assert [p["status"] for p in api.get("/proposals").json()] == ["accepted"]

    case_id = ok(api.post("/relocations", headers=OFFICER, json={
        "category": "kandas", "territory": "Almaty", "period": "2026",
        "applicant": person(101), "family_members": [person(102), person(103)],
        "effective_date": "2026-01-15"}, ), 201)["case_id"]
    ok(api.post(f"/relocations/{case_id}/approve", headers=OFFICER,
                json={"effective_date": "2026-01-20"}))
    ledger = wait_until(lambda: (q := api.get(f"/quotas/{quota_id}").json())
                        and q.get("reserved") == 3 and q, what="3 places in the ledger")
    assert (ledger["limit"], ledger["remaining"]) == (10, 7)

    ok(api.post(f"/relocations/{case_id}/arrival", headers=OFFICER, json={
        "address": {"district": "Alatau", "line": "Momyshuly 12, flat 4"},
        "housing": {"type": "state", "useful_area_m2": 60.0, "occupants_after_registration": 3},
        "effective_date": "2026-03-01"}))

    for n in (101, 102, 103):
        resident = wait_until(lambda n=n: api.get(f"/residents/{iin_for(n)}").json()
                              .get("registration_kind"), timeout=20,
                              what=f"person {n} in the residents register")
        assert resident == "permanent"
        row = api.get(f"/residents/{iin_for(n)}").json()
        assert (row["district"], row["address_line"]) == ("Alatau", "Momyshuly 12, flat 4")
        assert row["registered_on"] == "2026-03-01"

    relocation = wait_until(
        lambda: (r := api.get(f"/relocations/{case_id}").json())
        and len(r["registrations"]) == 3 and r, what="registrations recorded on the case")
    assert relocation["status"] == "arrived"
    assert {v["status"] for v in relocation["registrations"].values()} == {"registered"}
    history = ok(api.get(f"/cases/{case_id}/history"))["events"]
    types = [e["type"] for e in history]
    assert types[:3] == ["RelocationCase.Applied", "RelocationCase.Approved",
                         "RelocationCase.Arrived"]
    assert types.count("RelocationCase.MemberRegistered") == 3
    arrival_correlation = history[2]["correlation_id"]
    registration_id = relocation["registrations"]["0"]["registration_case_id"]
    registration = ok(api.get(f"/cases/{registration_id}/history"))["events"]
    assert registration[0]["correlation_id"] == arrival_correlation
    assert registration[0]["actor"]["id"] == "relocation-process"
