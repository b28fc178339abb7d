"""Territory designation (§5, §6): open or closed for settling kandases / settlers,
changed only by an accepted proposal, answerable for any past date."""

from __future__ import annotations

import datetime as dt

import pytest

from domain.context import Actor, CommandContext
from domain.errors import RuleViolation
from domain.legal_acts import LegalActRegistry
from domain.territory import TerritoryDesignation, designation_id, require_open

CTX = CommandContext(Actor("body-1", "authorised_body", "Ministry"), dt.date(2025, 12, 1),
                     "corr-1", "cmd-1")
META = CTX.meta(LegalActRegistry().basis("§5", CTX.effective_date))
D = dt.date


def designation() -> TerritoryDesignation:
    return TerritoryDesignation(territory="Almaty", meta=META)


def test_s5_a_territory_is_closed_until_a_proposal_includes_it() -> None:
    t = designation()
    assert t.id == designation_id("Almaty")
    assert not t.is_open("kandas", D(2030, 1, 1))
    assert not t.is_open("settler", D(2030, 1, 1))


def test_s5_inclusion_opens_from_its_effective_date_for_that_category_only() -> None:
    t = designation()
    t.change("kandas", True, D(2026, 1, 1), "proposal-1", META)
    assert not t.is_open("kandas", D(2025, 12, 31))
    assert t.is_open("kandas", D(2026, 1, 1))
    assert not t.is_open("settler", D(2026, 1, 1))
    included = t.collect_events()[-1]
    assert type(included).__qualname__ == "TerritoryDesignation.Included"
    assert (included.territory, included.category, included.effective_from,
            included.proposal_id) == ("Almaty", "kandas", "2026-01-01", "proposal-1")


def test_s5_exclusion_closes_from_its_date_and_the_past_stays_answerable() -> None:
    t = designation()
    t.change("settler", True, D(2026, 1, 1), "p-1", META)
    t.change("settler", False, D(2026, 7, 1), "p-2", META)
    assert t.is_open("settler", D(2026, 6, 30))
    assert not t.is_open("settler", D(2026, 7, 1))
    t.change("settler", True, D(2027, 1, 1), "p-3", META)
    assert [t.is_open("settler", d) for d in (D(2025, 1, 1), D(2026, 3, 1), D(2026, 9, 1),
                                               D(2027, 2, 1))] == [False, True, False, True]


def test_s5_including_an_open_territory_is_refused() -> None:
    t = designation()
    t.change("kandas", True, D(2026, 1, 1), "p-1", META)
    with pytest.raises(RuleViolation) as refused:
        t.change("kandas", True, D(2026, 2, 1), "p-2", META)
    assert refused.value.message == (
        "§5: territory Almaty is already open for settling kandases on 2026-02-01"
    )


def test_s5_excluding_a_closed_territory_is_refused() -> None:
    with pytest.raises(RuleViolation, match="already closed for settling settlers"):
        designation().change("settler", False, D(2026, 1, 1), "p-1", META)


def test_s5_a_change_cannot_take_effect_before_the_last_one() -> None:
    t = designation()
    t.change("kandas", True, D(2026, 3, 1), "p-1", META)
    t.change("kandas", False, D(2026, 3, 1), "p-2", META)  # the same day is allowed
    with pytest.raises(RuleViolation, match="cannot take effect earlier, on 2026-02-28"):
        t.change("kandas", True, D(2026, 2, 28), "p-3", META)


def test_s6_settling_requires_the_territory_open_for_the_category_on_the_date() -> None:
    t = designation()
    t.change("kandas", True, D(2026, 1, 1), "p-1", META)
    require_open(t, "Almaty", "kandas", D(2026, 1, 1))
    with pytest.raises(RuleViolation) as refused:
        require_open(t, "Almaty", "kandas", D(2025, 12, 31))
    assert refused.value.message == (
        "§6: territory Almaty is not designated for settling kandases on 2025-12-31; an "
        "accepted §5 proposal must include it first"
    )
    with pytest.raises(RuleViolation, match="not designated for settling settlers"):
        require_open(t, "Almaty", "settler", D(2026, 6, 1))
    with pytest.raises(RuleViolation, match="territory Medeu is not designated"):
        require_open(None, "Medeu", "kandas", D(2026, 6, 1))
