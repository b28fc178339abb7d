"""Proposals (§5): drafted → submitted → accepted / declined by the authorised body."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from domain.context import Actor, CommandContext
from domain.errors import InvalidTransition, RuleViolation
from domain.legal_acts import LegalActRegistry
from domain.proposal import (
    Proposal,
    acceptance_id,
    check_regional_period,
    require_authorised_body,
)
from domain.proposal_commands import DeclineProposal, DraftProposal

CTX = CommandContext(Actor("planner-1", "akimat_planner", "Almaty akimat"),
                     dt.date(2025, 12, 1), "corr-1", "cmd-1")
META = CTX.meta(LegalActRegistry().basis("§5", CTX.effective_date))


def proposal() -> Proposal:
    return Proposal(kind="include_territory",
                    target={"territory": "Almaty", "categories": ["kandas"]},
                    rationale="labour shortage", meta=META)


def test_s5_proposal_goes_drafted_submitted_accepted_with_a_deterministic_acceptance_id() -> None:
    p = proposal()
    assert p.status == "drafted"
    p.submit(META)
    accepted_as = p.accept("agreed", META)
    assert (p.status, p.reasons, accepted_as) == ("accepted", "agreed", acceptance_id(p.id))
    assert [type(e).__name__ for e in p.collect_events()] == [
        "Drafted", "Submitted", "Accepted"]


def test_s5_a_draft_cannot_be_decided_before_it_is_submitted() -> None:
    with pytest.raises(InvalidTransition, match="is drafted; cannot accept it"):
        proposal().accept(None, META)
    with pytest.raises(InvalidTransition, match="is drafted; cannot decline it"):
        proposal().decline("no", META)


def test_s5_a_decided_proposal_is_final() -> None:
    p = proposal()
    p.submit(META)
    p.decline("no budget for adaptation centres", META)
    assert (p.status, p.reasons) == ("declined", "no budget for adaptation centres")
    for action in (lambda: p.accept(None, META), lambda: p.submit(META),
                   lambda: p.decline("again", META)):
        with pytest.raises(InvalidTransition, match="is declined"):
            action()


def test_s5_declining_needs_reasons() -> None:
    p = proposal()
    p.submit(META)
    with pytest.raises(RuleViolation, match="must state the reasons"):
        p.decline("   ", META)
    with pytest.raises(ValidationError):
        DeclineProposal.model_validate({})


def test_s5_only_the_authorised_body_decides() -> None:
    require_authorised_body(Actor("m-1", "authorised_body", "Ministry"), "accept a proposal")
    with pytest.raises(RuleViolation) as refused:
        require_authorised_body(CTX.actor, "accept a proposal")
    assert refused.value.message == (
        "§5: only the authorised body (role authorised_body) may accept a proposal; the "
        "acting role is akimat_planner"
    )


@pytest.mark.parametrize("period", ["2026", "2026-2028", "2027-2029"])
def test_s5_regional_quotas_change_for_the_coming_year_or_the_medium_term(period: str) -> None:
    check_regional_period("kandas", period, dt.date(2025, 12, 31))


@pytest.mark.parametrize(("period", "message"), [
    ("2025", "coming year (2026) or the medium term"),
    ("2027", "coming year (2026) or the medium term"),
    ("2025-2027", "must start no earlier than the coming year (2026)"),
])
def test_s5_regional_quota_change_for_another_period_is_refused(period: str,
                                                                message: str) -> None:
    with pytest.raises(RuleViolation, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_regional_period("settler", period, dt.date(2025, 12, 31))


def test_s5_the_foreign_labour_quota_has_no_period_restriction() -> None:
    check_regional_period("foreign_labour", "2025", dt.date(2025, 12, 31))


def test_s5_territory_proposals_name_categories_and_quota_proposals_the_change() -> None:
    DraftProposal(kind="exclude_territory", categories=["kandas", "settler"], rationale="r")
    DraftProposal(kind="lower_quota", quota_kind="foreign_labour", period="2026",
                  change_by=100, rationale="r")
    bad = [
        ({"kind": "include_territory", "rationale": "r"}, "names at least one category"),
        ({"kind": "include_territory", "categories": ["kandas", "kandas"], "rationale": "r"},
         "listed twice"),
        ({"kind": "include_territory", "categories": ["kandas"], "change_by": 5,
          "rationale": "r"}, "takes no change_by"),
        ({"kind": "raise_quota", "quota_kind": "kandas", "period": "2026", "rationale": "r"},
         "needs change_by"),
        ({"kind": "raise_quota", "quota_kind": "kandas", "period": "2026", "change_by": 0,
          "rationale": "r"}, "greater than or equal to 1"),
        ({"kind": "raise_quota", "quota_kind": "kandas", "period": "2026", "change_by": 5,
          "categories": ["kandas"], "rationale": "r"}, "takes no categories"),
    ]
    for body, message in bad:
        with pytest.raises(ValidationError, match=message):
            DraftProposal.model_validate(body)


def test_s2_a_proposal_takes_no_origin_or_wealth_criteria() -> None:
    with pytest.raises(ValidationError, match="extra"):
        DraftProposal.model_validate({"kind": "include_territory", "categories": ["kandas"],
                                      "rationale": "r", "origin": "x"})
