"""Relocation cases (§6): one place per person; refusal and withdrawal release them;
arrival settles the case; people are referred to by their place in the case."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from domain.context import Actor, CommandContext
from domain.errors import InvalidTransition, RuleViolation
from domain.legal_acts import LegalActRegistry
from domain.relocation import RelocationCase, registration_causation_id, require_period_open
from domain.relocation_commands import ApplyForRelocation, RecordArrival
from tests.support.builders import iin_for

CTX = CommandContext(Actor("officer-1", "migration_officer", "Almaty akimat"),
                     dt.date(2026, 1, 10), "corr-1", "cmd-1")
META = CTX.meta(LegalActRegistry().basis("§6", CTX.effective_date))
FOREIGNER = {"kind": "foreigner", "document_type": "passport", "document_number": "N123",
             "family_name": "Nurlanov", "given_name": "Aibek"}


def citizen(n: int) -> dict[str, str]:
    return {"kind": "citizen", "iin": iin_for(n), "family_name": f"F{n}", "given_name": f"G{n}"}


def case(members: int = 2) -> RelocationCase:
    return RelocationCase(category="kandas", applicant=FOREIGNER,
                          family_members=[citizen(n) for n in range(members)],
                          territory="Almaty", period="2026", quota_id="q-1", meta=META)


def test_s6_the_applicant_and_each_family_member_take_one_place() -> None:
    assert case(0).places == 1
    assert case(3).places == 4
    c = case(2)
    c.approve(META)
    assert c.collect_events()[-1].places == 3


def test_s6_refusal_of_an_approved_case_releases_its_places() -> None:
    c = case(2)
    c.approve(META)
    c.refuse("documents forged", META)
    refused = c.collect_events()[-1]
    assert (c.status, refused.reason, refused.places_released) == (
        "refused", "documents forged", 3)


def test_s6_withdrawal_before_approval_releases_nothing() -> None:
    c = case(2)
    c.withdraw("family stays abroad", META)
    assert (c.status, c.collect_events()[-1].places_released) == ("withdrawn", 0)


def test_s6_arrival_needs_an_approved_case_and_is_final() -> None:
    c = case(1)
    with pytest.raises(InvalidTransition, match="is applied; cannot record the arrival of it"):
        c.arrive({"district": "Alatau", "line": "x"}, {}, META)
    c.approve(META)
    c.arrive({"district": "Alatau", "line": "x"}, {}, META)
    assert c.arrival_meta == META
    for action in (lambda: c.withdraw(None, META), lambda: c.refuse("late", META),
                   lambda: c.approve(META)):
        with pytest.raises(InvalidTransition, match="is arrived"):
            action()


def test_s6_arrived_persons_are_settled_once_each_by_their_place_in_the_case() -> None:
    c = case(1)
    c.approve(META)
    c.arrive({"district": "Alatau", "line": "x"}, {}, META)
    assert [m for m, _ in c.unregistered_persons()] == ["0", "1"]
    c.record_registration("1", "reg-1", META)
    c.record_registration_failure("0", "no IIN yet", META)
    assert c.unregistered_persons() == []
    with pytest.raises(InvalidTransition, match="already settled person 1"):
        c.record_registration("1", "reg-2", META)
    assert registration_causation_id(c.id, "1") == registration_causation_id(c.id, "1")
    assert registration_causation_id(c.id, "1") != registration_causation_id(c.id, "0")


def test_s6_a_quota_period_admits_decisions_until_its_last_day() -> None:
    require_period_open("2026", dt.date(2026, 12, 31))
    require_period_open("2026-2028", dt.date(2028, 12, 31))
    with pytest.raises(RuleViolation) as refused:
        require_period_open("2026", dt.date(2027, 1, 1))
    assert refused.value.message == (
        "§6: the quota period 2026 ended on 2026-12-31; nothing can be decided under it on "
        "2027-01-01"
    )


def application(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {"category": "settler", "territory": "Almaty", "period": "2026",
                               "applicant": citizen(1), "family_members": [FOREIGNER]}
    body.update(overrides)
    return body


def test_s6_applicants_are_kandases_or_settlers_with_citizen_or_foreign_family() -> None:
    cmd = ApplyForRelocation.model_validate(application())
    assert [p.kind for p in [cmd.applicant, *cmd.family_members]] == ["citizen", "foreigner"]
    stateless = {**FOREIGNER, "kind": "stateless", "iin": iin_for(9)}
    ApplyForRelocation.model_validate(application(family_members=[stateless]))
    with pytest.raises(ValidationError):
        ApplyForRelocation.model_validate(application(category="tourist"))


def test_s6_a_person_listed_twice_is_refused() -> None:
    with pytest.raises(ValidationError, match=f"the person with iin {iin_for(1)} is listed"):
        ApplyForRelocation.model_validate(application(family_members=[citizen(1)]))
    with pytest.raises(ValidationError, match="the person with passport N123 is listed twice"):
        ApplyForRelocation.model_validate(application(family_members=[FOREIGNER, FOREIGNER]))


def test_s6_a_foreigner_needs_a_document_and_a_citizen_a_valid_iin() -> None:
    with pytest.raises(ValidationError, match="document_number"):
        ApplyForRelocation.model_validate(application(
            family_members=[{k: v for k, v in FOREIGNER.items() if k != "document_number"}]))
    with pytest.raises(ValidationError, match="IIN check digit is wrong"):
        bad = citizen(2)
        bad["iin"] = bad["iin"][:11] + str((int(bad["iin"][11]) + 1) % 10)
        ApplyForRelocation.model_validate(application(applicant=bad))


@pytest.mark.parametrize("field", ["ethnicity", "religion", "origin", "income", "wealth"])
def test_s2_relocation_takes_no_ethnicity_religion_origin_or_wealth(field: str) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ApplyForRelocation.model_validate(application(**{field: "x"}))
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ApplyForRelocation.model_validate(application(applicant={**citizen(1), field: "x"}))


def test_s10_arrival_names_the_address_and_the_housing() -> None:
    RecordArrival.model_validate({
        "address": {"district": "Alatau", "line": "Momyshuly 12"},
        "housing": {"type": "state", "useful_area_m2": 45, "occupants_after_registration": 3}})
    with pytest.raises(ValidationError):
        RecordArrival.model_validate({"address": {"district": "Alatau", "line": "x"}})
