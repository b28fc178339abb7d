"""The legal-act registry: entry into force, editions of the Rules, repeal, clauses."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from pydantic import ValidationError

from domain.errors import InvalidTransition, InvalidValue, NotInForce
from domain.legal_act import LegalAct, legal_act_id, registry_facts
from domain.legal_act_commands import RegisterLegalAct
from domain.legal_acts import RULES_CLAUSES, SEED_ACTS, LegalActRegistry

ACT_152, ACT_22, ACT_97 = (a.act_id for a in SEED_ACTS)
META = {"effective_date": "2025-01-01"}


def published(registry: LegalActRegistry, act_id: str, on: dt.date) -> LegalActRegistry:
    return registry.with_publication(act_id, on)


def test_seed_acts_are_as_the_text_gives_them() -> None:
    by_id = {a.act_id: a for a in SEED_ACTS}
    first, second, repeal = by_id[ACT_152], by_id[ACT_22], by_id[ACT_97]
    assert (first.number, first.adopted_on, first.registration_number, first.published_on) == (
        "152",
        dt.date(2017, 9, 15),
        "1410",
        dt.date(2017, 10, 19),
    )
    assert (
        second.number,
        second.adopted_on,
        second.registration_number,
        second.registered_on,
        second.published_on,
    ) == ("22", dt.date(2021, 2, 19), "1691", dt.date(2021, 3, 1), None)
    assert (repeal.number, repeal.adopted_on, repeal.repeals) == (
        "97",
        dt.date(2024, 3, 29),
        (ACT_22,),
    )
    assert first.edition_of_rules and second.edition_of_rules and not repeal.edition_of_rules


def test_an_act_enters_into_force_ten_calendar_days_after_first_publication() -> None:
    registry = LegalActRegistry()
    assert registry.rules_in_force(dt.date(2017, 10, 29)).act_id == ACT_152
    with pytest.raises(NotInForce, match="no edition of the Rules is in force on 2017-10-28"):
        registry.rules_in_force(dt.date(2017, 10, 28))


def test_an_unpublished_edition_is_not_in_force_until_its_publication_is_entered() -> None:
    registry = LegalActRegistry()
    assert registry.rules_in_force(dt.date(2025, 1, 1)).act_id == ACT_152
    later = published(registry, ACT_22, dt.date(2021, 3, 5))
    assert later.rules_in_force(dt.date(2021, 3, 14)).act_id == ACT_152
    assert later.rules_in_force(dt.date(2021, 3, 15)).act_id == ACT_22
    assert later.basis("§10", dt.date(2021, 3, 15)).as_dict() == {
        "act_id": ACT_22,
        "act": later.get(ACT_22).title,
        "clause": "§10",
    }


def test_a_stated_date_of_entry_into_force_wins_over_publication() -> None:
    stated = replace(
        LegalActRegistry().get(ACT_22),
        published_on=dt.date(2021, 3, 5),
        in_force_on_stated=dt.date(2021, 6, 1),
    )
    registry = LegalActRegistry().with_act(stated)
    assert registry.rules_in_force(dt.date(2021, 5, 31)).act_id == ACT_152
    assert registry.rules_in_force(dt.date(2021, 6, 1)).act_id == ACT_22


def test_a_repeal_takes_effect_when_the_repealing_act_enters_into_force() -> None:
    registry = published(
        published(LegalActRegistry(), ACT_22, dt.date(2021, 3, 5)), ACT_97, dt.date(2024, 4, 10)
    )
    assert registry.rules_in_force(dt.date(2024, 4, 19)).act_id == ACT_22
    with pytest.raises(NotInForce) as refused:
        registry.basis("§9", dt.date(2024, 4, 20))
    assert refused.value.message == (
        f"Rules: the Rules of {registry.get(ACT_22).title} were repealed by "
        f"{registry.get(ACT_97).title} from 2024-04-20; nothing is in force on 2024-04-20"
    )
    assert registry.is_in_force(ACT_97, dt.date(2024, 4, 20))
    assert not registry.is_in_force(ACT_22, dt.date(2024, 4, 20))


def test_a_clause_missing_from_the_edition_in_force_is_refused_by_name() -> None:
    partial = replace(
        LegalActRegistry().get(ACT_22),
        published_on=dt.date(2021, 3, 5),
        clauses=RULES_CLAUSES - {"§10"},
    )
    registry = LegalActRegistry().with_act(partial)
    on = dt.date(2021, 4, 1)
    with pytest.raises(
        NotInForce,
        match=r"clause §10 is not part of the Rules in force on "
        r"2021-04-01 \(Almaty maslikhat decision No. 22",
    ):
        registry.basis("§10", on)
    assert registry.clause_in_force("§9", on) and not registry.clause_in_force("§10", on)


def registered(act_id: str = ACT_22) -> LegalAct:
    return LegalAct.register(LegalActRegistry().get(act_id), META)


def test_a_legal_act_aggregate_has_one_id_per_act_and_gives_back_its_facts() -> None:
    act = registered()
    assert act.id == legal_act_id(ACT_22)
    assert act.facts == LegalActRegistry().get(ACT_22)


def test_publication_is_entered_once_and_corrected_only_with_a_reason() -> None:
    act = registered()
    with pytest.raises(InvalidValue, match="cannot precede its adoption on 2021-02-19"):
        act.enter_publication(dt.date(2021, 2, 18), None, META)
    act.enter_publication(dt.date(2021, 3, 5), None, META)
    with pytest.raises(InvalidTransition, match="already recorded as first published"):
        act.enter_publication(dt.date(2021, 3, 5), None, META)
    with pytest.raises(InvalidTransition, match="give correction_reason to correct it"):
        act.enter_publication(dt.date(2021, 3, 6), None, META)
    act.enter_publication(dt.date(2021, 3, 6), "misprint in the gazette date", META)
    events = act.collect_events()
    assert [type(e).__name__ for e in events] == [
        "Registered",
        "PublicationEntered",
        "PublicationEntered",
    ]
    assert events[-1].previous == "2021-03-05"
    assert act.facts.in_force_from == dt.date(2021, 3, 16)


def test_state_registration_may_be_entered_later_but_not_changed() -> None:
    act = registered(ACT_97)
    act.enter_state_registration("2050", dt.date(2024, 4, 5), META)
    with pytest.raises(InvalidTransition, match="already registered under No. 2050"):
        act.enter_state_registration("2051", dt.date(2024, 4, 6), META)


def test_a_repeal_is_by_another_act_adopted_no_earlier() -> None:
    old, new = registered(ACT_152), registered(ACT_22)
    with pytest.raises(InvalidValue, match="cannot repeal itself"):
        old.repeal(old, META)
    with pytest.raises(InvalidValue, match="cannot repeal the later"):
        new.repeal(old, META)
    old.repeal(new, META)
    with pytest.raises(InvalidTransition, match="already repealed"):
        old.repeal(new, META)
    facts = {f.act_id: f for f in registry_facts([old, new])}
    assert facts[ACT_22].repeals == (ACT_152,), "the registry reads repeals from the repealer"


def test_register_command_gives_an_edition_all_clauses_unless_listed() -> None:
    base = {
        "act_id": "almaty-maslikhat-5-2030",
        "title": "Decision No. 5",
        "number": "5",
        "adopted_on": "2030-01-10",
    }
    edition = RegisterLegalAct.model_validate({**base, "edition_of_rules": True})
    assert edition.facts().clauses == RULES_CLAUSES
    listed = RegisterLegalAct.model_validate(
        {**base, "edition_of_rules": True, "clauses": ["§9", "§10"]}
    )
    assert listed.facts().clauses == {"§9", "§10"}
    with pytest.raises(ValidationError, match="only an edition of the Rules has clauses"):
        RegisterLegalAct.model_validate({**base, "clauses": ["§9"]})
    with pytest.raises(ValidationError, match="cannot repeal itself"):
        RegisterLegalAct.model_validate({**base, "repeals": [base["act_id"]]})
