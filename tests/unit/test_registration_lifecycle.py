"""The registration lifecycle in the aggregates (§9, §10): who can be registered, how a
registration runs, ends and is corrected, and what the occupancy of an address counts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from domain.address import AddressOccupancy, address_id, normalised_address
from domain.commands import CorrectRegistration, SubmitRegistration
from domain.errors import InvalidTransition, InvalidValue, RuleViolation
from domain.person import Person, identity_key, person_id
from domain.registration import DeregistrationReason, RegistrationCase
from tests.support.builders import iin_for, registration_body

ON = dt.date(2025, 6, 1)
META = {"effective_date": ON.isoformat()}
FOREIGNER = {
    "kind": "foreigner",
    "document_type": "Passport",
    "document_number": "n 12 345",
    "family_name": "Smith",
    "given_name": "Anna",
    "birth_date": "1990-02-03",
}


def case(
    kind: str = "permanent", valid_until: str | None = None, person: dict[str, Any] | None = None
) -> RegistrationCase:
    c = RegistrationCase(
        person=person
        or {"kind": "citizen", "iin": iin_for(1), "family_name": "A", "given_name": "B"},
        address={"district": "Medeu", "line": "Dostyk 1"},
        housing={"type": "private", "useful_area_m2": 50.0},
        registration_kind=kind,
        valid_until=valid_until,
        meta=META,
    )
    return c


def approved(
    kind: str = "permanent", valid_until: str | None = None, **kw: Any
) -> RegistrationCase:
    c = case(kind, valid_until, **kw)
    c.approve(meta=META)
    return c


# -- who is registered -------------------------------------------------------------------
def test_s9_foreigners_and_stateless_persons_register_by_document_normalised() -> None:
    cmd = SubmitRegistration.model_validate(registration_body(1, person=FOREIGNER))
    assert (cmd.person.document_type, cmd.person.document_number) == ("passport", "N12345")
    stateless = {**FOREIGNER, "kind": "stateless", "iin": iin_for(7)}
    assert SubmitRegistration.model_validate(registration_body(1, person=stateless)).person.iin
    assert identity_key(cmd.person.model_dump()) == "doc:passport:N12345"
    assert identity_key({**FOREIGNER, "iin": iin_for(7)}) == f"iin:{iin_for(7)}"


@pytest.mark.parametrize(
    ("person", "message"),
    [
        (
            {"kind": "foreigner", "family_name": "S", "given_name": "A"},
            "a foreigner person needs document_type and document_number",
        ),
        (
            {"kind": "citizen", "family_name": "S", "given_name": "A"},
            "a citizen is identified by IIN",
        ),
        (
            {
                "iin": iin_for(1),
                "document_type": "passport",
                "document_number": "1",
                "family_name": "S",
                "given_name": "A",
            },
            "a citizen is identified by IIN alone",
        ),
        ({**FOREIGNER, "document_type": "pass/port"}, "a document type is 2-40 letters"),
        ({**FOREIGNER, "document_number": "N°1"}, "a document number is 1-40 letters"),
    ],
)
def test_s9_a_person_must_be_identified_by_their_kind(person: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SubmitRegistration.model_validate(registration_body(1, person=person))


def test_s9_temporary_registration_needs_an_end_date_and_permanent_has_none() -> None:
    with pytest.raises(ValidationError, match="a temporary registration needs valid_until"):
        SubmitRegistration.model_validate(registration_body(1, kind="temporary"))
    with pytest.raises(ValidationError, match="a permanent registration has no valid_until"):
        SubmitRegistration.model_validate(registration_body(1, valid_until="2026-01-01"))


# -- while registered -------------------------------------------------------------------
def test_s9_a_temporary_registration_is_active_through_its_end_date() -> None:
    c = approved("temporary", "2025-12-31")
    assert c.active_on(dt.date(2025, 12, 31)) and not c.active_on(dt.date(2026, 1, 1))


def test_s9_extension_must_end_later_and_the_registration_must_still_run() -> None:
    c = approved("temporary", "2025-12-31")
    with pytest.raises(InvalidValue, match="must end after the current end date 2025-12-31"):
        c.extend(dt.date(2025, 12, 31), ON, META)
    c.extend(dt.date(2026, 1, 1), ON, META)
    assert c.valid_until == "2026-01-01"
    with pytest.raises(
        InvalidTransition,
        match="ended on 2026-01-01; cannot extend it on 2026-01-02 — submit a new registration",
    ):
        c.extend(dt.date(2026, 6, 1), dt.date(2026, 1, 2), META)
    with pytest.raises(InvalidTransition, match="only a temporary registration is extended"):
        approved().extend(dt.date(2030, 1, 1), ON, META)


def test_s9_deregistration_ends_an_approved_registration_once_with_its_reason() -> None:
    with pytest.raises(InvalidTransition, match="is submitted; cannot deregister it"):
        case().deregister(DeregistrationReason.MOVED_OUT, ON, META)
    c = approved()
    with pytest.raises(
        InvalidValue,
        match="took effect on 2025-06-01; cannot deregister it as of the earlier 2025-05-31",
    ):
        c.deregister(DeregistrationReason.MOVED_OUT, dt.date(2025, 5, 31), META)
    c.deregister(DeregistrationReason.LEFT_COUNTRY, ON, META)
    assert (c.status, c.end_reason, c.ended_on) == ("ended", "left_country", "2025-06-01")
    with pytest.raises(InvalidTransition, match="is ended; cannot deregister it"):
        c.deregister(DeregistrationReason.DECEASED, ON, META)


def test_s9_a_correction_is_a_new_event_and_the_old_value_stays_in_the_history() -> None:
    c = approved()
    c.correct({"family_name": "Ahmetov"}, "misspelt at the desk", META)
    events = c.collect_events()
    assert events[0].person["family_name"] == "A", "the submission is never edited"
    assert type(events[-1]).__name__ == "Corrected"
    assert (events[-1].person, events[-1].fields) == ({"family_name": "Ahmetov"}, ["family_name"])
    assert c.person["family_name"] == "Ahmetov" and c.corrected_fields == ["family_name"]


def test_s9_corrections_name_real_changes_and_never_the_identity() -> None:
    c = approved()
    with pytest.raises(InvalidValue, match="names at least one field"):
        c.correct({}, "nothing", META)
    with pytest.raises(InvalidValue, match="family_name already hold the corrected value"):
        c.correct({"family_name": "A"}, "same", META)
    with pytest.raises(InvalidValue, match="birth date of a person with an IIN is the IIN's"):
        c.correct({"birth_date": "1990-01-01"}, "wrong", META)
    with pytest.raises(InvalidValue, match="cannot correct iin"):
        c.correct({"iin": iin_for(2)}, "wrong", META)
    with pytest.raises(ValidationError, match="iin"):
        CorrectRegistration.model_validate({"iin": iin_for(2), "reason": "x"})
    foreigner = approved(person=dict(FOREIGNER))
    foreigner.correct({"birth_date": "1990-03-02"}, "day and month swapped", META)
    assert foreigner.person["birth_date"] == "1990-03-02"


# -- the person: one permanent registration ----------------------------------------------
def test_s9_a_second_permanent_registration_ends_the_first_and_temporaries_stay() -> None:
    person = Person(id=person_id({"iin": iin_for(1)}), meta=META)
    assert person.register("case-1", "permanent", META) is None
    assert person.register("case-2", "temporary", META) is None
    assert person.register("case-3", "permanent", META) == "case-1"
    assert person.active == {"case-2": "temporary", "case-3": "permanent"}


def test_s9_after_death_no_registration_is_approved() -> None:
    person = Person(id=person_id({"iin": iin_for(1)}), meta=META)
    person.register("case-1", "permanent", META)
    person.end(["case-1"], "deceased", "2025-06-01", META)
    assert person.active == {}
    with pytest.raises(InvalidTransition, match="deregistered as deceased on 2025-06-01"):
        person.register("case-2", "temporary", META)


# -- §10: the occupancy of an address ----------------------------------------------------
STATE_30 = {"type": "state", "useful_area_m2": 30.0}


def occupancy() -> AddressOccupancy:
    return AddressOccupancy(id=address_id({"district": "Medeu", "line": "Dostyk 1"}), meta=META)


def test_s10_one_address_however_it_is_typed() -> None:
    assert normalised_address("Medeu", "Dostyk 5, flat 2") == normalised_address(
        "Medeu", "  dostyk 5  FLAT 2."
    )
    assert normalised_address("Medeu", "Dostyk 5") != normalised_address("Almaly", "Dostyk 5")


def test_s10_counts_everyone_registered_after_the_decision_at_the_boundary() -> None:
    occ = occupancy()
    assert occ.admit("c1", "p1", None, STATE_30, ON, True, META) == 1
    assert occ.admit("c2", "p2", None, STATE_30, ON, True, META) == 2, "15 m² each passes"
    with pytest.raises(RuleViolation) as refused:
        occ.admit("c3", "p3", None, STATE_30, ON, True, META)
    assert refused.value.clause == "§10"
    assert "30 m² for 3 occupants is 10.00 m² per person" in refused.value.message


def test_s10_a_person_counts_once_and_an_expired_temporary_not_at_all() -> None:
    occ = occupancy()
    occ.admit("c1", "p1", dt.date(2025, 6, 30), STATE_30, ON, True, META)
    occ.admit("c2", "p2", None, STATE_30, ON, True, META)
    assert occ.occupants_after("p2", ON) == 2, "p2's second registration here is still p2"
    assert occ.occupants_after("p3", dt.date(2025, 7, 1)) == 2, "p1 ran out on 2025-06-30"
    occ.release(["c2"], META)
    assert occ.occupants_after("p3", ON) == 2


def test_s10_a_declared_larger_household_counts_and_the_norm_only_while_in_force() -> None:
    occ = occupancy()
    with pytest.raises(RuleViolation, match="for 3 occupants"):
        occ.admit("c1", "p1", None, {**STATE_30, "occupants_after_registration": 3}, ON, True, META)
    assert (
        occ.admit(
            "c1", "p1", None, {**STATE_30, "occupants_after_registration": 3}, ON, False, META
        )
        == 3
    )
