"""The RegistrationCase aggregate's events carry who, when, under which act and why."""

import datetime as dt

import pytest

from domain.context import Actor, CommandContext
from domain.errors import InvalidTransition, NotInForce
from domain.legal_acts import LegalActRegistry
from domain.registration import RegistrationCase

CTX = CommandContext(
    actor=Actor("registrar-7", "registrar", "Medeu district akimat"),
    effective_date=dt.date(2025, 6, 1),
    correlation_id="corr-1",
    causation_id="cmd-1",
)


def submitted_case() -> RegistrationCase:
    basis = LegalActRegistry().basis("§9", CTX.effective_date)
    return RegistrationCase(
        person={"kind": "citizen", "iin": "900517401231", "family_name": "A", "given_name": "B"},
        address={"district": "Medeu", "line": "Dostyk 1"},
        housing={"type": "private", "useful_area_m2": 50.0, "occupants_after_registration": 1},
        registration_kind="permanent",
        valid_until=None,
        meta=CTX.meta(basis),
    )


def test_submission_records_actor_effective_date_legal_basis_and_ids() -> None:
    case = submitted_case()
    (event,) = case.collect_events()
    assert type(event).__qualname__ == "RegistrationCase.Submitted"
    assert event.meta == {
        "actor": {"id": "registrar-7", "role": "registrar",
                  "organisation": "Medeu district akimat"},
        "effective_date": "2025-06-01",
        "legal_basis": {
            "act_id": "almaty-maslikhat-152-2017",
            "act": "Almaty maslikhat decision No. 152 of 15 September 2017",
            "clause": "§9",
        },
        "correlation_id": "corr-1",
        "causation_id": "cmd-1",
    }


def test_approval_is_a_new_event_and_cannot_happen_twice() -> None:
    case = submitted_case()
    case.approve(meta={"causation_id": "cmd-2"})
    events = case.collect_events()
    assert [type(e).__name__ for e in events] == ["Submitted", "Approved"]
    assert case.status == "approved"
    with pytest.raises(InvalidTransition, match="approved; cannot approve"):
        case.approve(meta={})


def test_refused_case_cannot_be_approved() -> None:
    case = submitted_case()
    case.refuse(reason="documents missing", meta={})
    with pytest.raises(InvalidTransition, match="refused"):
        case.approve(meta={})


def test_no_rules_in_force_before_the_first_edition_refuses_with_the_date() -> None:
    # Decision No. 152 was published 2017-10-19: in force from 2017-10-29.
    registry = LegalActRegistry()
    assert registry.basis("§9", dt.date(2017, 10, 29)).act_id == "almaty-maslikhat-152-2017"
    with pytest.raises(NotInForce, match="2017-10-28"):
        registry.basis("§9", dt.date(2017, 10, 28))
