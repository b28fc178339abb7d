"""The §5/§6 command handlers on the real store (SQLite): atomic saves, causation ids,
refusals that store nothing, and the relocation process manager's idempotency."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from uuid import UUID

import pytest

from consumers.relocation_process import RelocationProcess
from domain.errors import InvalidTransition, RuleViolation
from domain.proposal_commands import AcceptProposal, DeclineProposal, DraftProposal, SubmitProposal
from domain.quota import quota_id
from domain.quota_commands import EstablishQuota
from domain.relocation_commands import (
    ApplyForRelocation,
    ApproveRelocation,
    RecordArrival,
    RefuseRelocation,
    WithdrawRelocation,
)
from infra.application import KoshApplication
from infra.idempotency import events_caused_by
from infra.settings import Settings
from tests.support.builders import iin_for
from tests.support.quota_race import BODY, OFFICER, ctx, open_almaty_for_kandases

ON = dt.date(2026, 2, 1)


@pytest.fixture
def app(settings: Settings) -> Iterator[KoshApplication]:
    application = KoshApplication(settings)
    yield application
    application.close()


def head(app: KoshApplication) -> int:
    return app.recorder.max_notification_id() or 0


def family(app: KoshApplication, size: int, first: int = 0, **overrides: object) -> UUID:
    persons = [{"iin": iin_for(first + i), "family_name": f"F{i}", "given_name": f"G{i}"}
               for i in range(size)]
    body: dict[str, object] = {"category": "kandas", "territory": "Almaty", "period": "2026",
                               "applicant": persons[0], "family_members": persons[1:]}
    body.update(overrides)
    return app.apply_for_relocation(ApplyForRelocation.model_validate(body), ctx()).case_id


def quota_state(app: KoshApplication, qid: UUID) -> tuple[int, int]:
    quota = app.find_quota(qid)
    assert quota is not None
    return quota.reserved, quota.limit


def test_s3_a_quota_is_established_once_and_only_by_the_authorised_body(
    app: KoshApplication,
) -> None:
    cmd = EstablishQuota(kind="settler", territory="Medeu", period="2026-2028", limit=40)
    with pytest.raises(RuleViolation, match="only the authorised body"):
        app.establish_quota(cmd, ctx(OFFICER))
    outcome = app.establish_quota(cmd, ctx(BODY))
    assert outcome.case_id == quota_id("settler", "Medeu", "2026-2028")
    with pytest.raises(InvalidTransition) as again:
        app.establish_quota(cmd, ctx(BODY))
    assert again.value.message == (
        "the settler quota for Medeu 2026-2028 is already established with limit 40; change it "
        "through a §5 proposal"
    )
    assert head(app) == 1


def test_s6_application_needs_a_designated_territory_and_an_established_quota(
    app: KoshApplication,
) -> None:
    with pytest.raises(RuleViolation, match="territory Almaty is not designated for settling "
                                            "kandases on 2026-02-01"):
        family(app, 1)
    open_almaty_for_kandases(app, 10)
    with pytest.raises(RuleViolation, match="no kandas quota for Almaty 2026-2027 has been "
                                            "established"):
        family(app, 1, period="2026-2027")
    with pytest.raises(RuleViolation, match="not designated for settling settlers"):
        family(app, 1, category="settler")
    stored = head(app)
    family(app, 1)
    assert head(app) == stored + 1


def test_s6_approval_reserves_all_places_or_none_in_one_atomic_save(
    app: KoshApplication,
) -> None:
    qid = open_almaty_for_kandases(app, 5)
    three, also_three = family(app, 3), family(app, 3, first=10)
    before = head(app)
    outcome = app.approve_relocation(three, ApproveRelocation(), ctx())
    assert outcome.sequence_numbers == (before + 1, before + 2)
    assert quota_state(app, qid) == (3, 5)

    with pytest.raises(RuleViolation) as refused:
        app.approve_relocation(also_three, ApproveRelocation(), ctx())
    assert "has 2 place(s) remaining of 5; 3 requested" in refused.value.message
    assert head(app) == before + 2, "a refused approval stores nothing"
    assert app.relocation_case(also_three).status == "applied"
    with pytest.raises(InvalidTransition, match="is approved; cannot approve it"):
        app.approve_relocation(three, ApproveRelocation(), ctx())


def test_s6_refusal_and_withdrawal_release_places_in_the_same_save(
    app: KoshApplication,
) -> None:
    qid = open_almaty_for_kandases(app, 5)
    a, b, c = family(app, 2), family(app, 2, first=10), family(app, 1, first=20)
    for case in (a, b):
        app.approve_relocation(case, ApproveRelocation(), ctx())
    assert quota_state(app, qid) == (4, 5)
    assert len(app.refuse_relocation(a, RefuseRelocation(reason="forged"), ctx())
               .sequence_numbers) == 2
    assert quota_state(app, qid) == (2, 5)
    app.withdraw_relocation(b, WithdrawRelocation(), ctx())
    assert quota_state(app, qid) == (0, 5)
    # An unapproved case holds nothing: its withdrawal touches only the case.
    assert len(app.withdraw_relocation(c, WithdrawRelocation(), ctx()).sequence_numbers) == 1


def test_s6_approval_is_refused_once_the_territory_is_excluded(app: KoshApplication) -> None:
    open_almaty_for_kandases(app, 5)
    case = family(app, 1)
    proposal = app.draft_proposal(DraftProposal(kind="exclude_territory", categories=["kandas"],
                                                rationale="housing shortage"), ctx()).case_id
    app.submit_proposal(proposal, SubmitProposal(), ctx())
    app.accept_proposal(proposal, AcceptProposal(), ctx(BODY))
    with pytest.raises(RuleViolation, match="not designated for settling kandases on "
                                            "2026-02-01"):
        app.approve_relocation(case, ApproveRelocation(), ctx())
    earlier = ctx(on=dt.date(2026, 1, 31))
    with pytest.raises(RuleViolation, match="is not designated"):
        app.approve_relocation(case, ApproveRelocation(), ctx(on=dt.date(2026, 2, 2)))
    app.approve_relocation(case, ApproveRelocation(), earlier)


def test_s5_accepted_quota_proposal_adjusts_the_quota_caused_by_the_acceptance(
    app: KoshApplication,
) -> None:
    qid = open_almaty_for_kandases(app, 5)
    app.approve_relocation(family(app, 4), ApproveRelocation(), ctx())
    lower = DraftProposal(kind="lower_quota", quota_kind="kandas", period="2026", change_by=2,
                          rationale="fewer homes", effective_date=dt.date(2025, 12, 1))
    with pytest.raises(RuleViolation, match="cannot be lowered to 3: 4 place"):
        app.draft_proposal(lower, ctx(on=dt.date(2025, 12, 1)))
    raise_ = DraftProposal.model_validate({**lower.model_dump(), "kind": "raise_quota",
                                           "change_by": 10})
    proposal = app.draft_proposal(raise_, ctx(on=dt.date(2025, 12, 1))).case_id
    app.submit_proposal(proposal, SubmitProposal(), ctx())
    with pytest.raises(RuleViolation, match="only the authorised body"):
        app.accept_proposal(proposal, AcceptProposal(), ctx(OFFICER))
    outcome = app.accept_proposal(proposal, AcceptProposal(reasons="agreed"), ctx(BODY))
    assert len(outcome.sequence_numbers) == 2, "acceptance and adjustment in one save"
    assert quota_state(app, qid) == (4, 15)
    accepted = app.case_history(proposal)[-1]
    adjusted = app.case_history(qid)[-1]
    assert type(adjusted).__qualname__ == "Quota.Adjusted"
    assert (adjusted.new_limit, adjusted.delta, adjusted.proposal_id) == (15, 10, str(proposal))
    assert adjusted.meta["causation_id"] == accepted.acceptance_id
    assert adjusted.meta["legal_basis"]["clause"] == "§5"
    # An executor that died before recording the outcome is answered from the store:
    # the adjustment counts as the command's, though it cites the acceptance.
    recovered = events_caused_by(app.recorder, accepted.meta["causation_id"],
                                 outcome.sequence_numbers[0] - 1)
    assert [c.seq for c in recovered] == list(outcome.sequence_numbers)


def test_s5_declined_proposal_changes_nothing(app: KoshApplication) -> None:
    qid = open_almaty_for_kandases(app, 5)
    proposal = app.draft_proposal(DraftProposal(
        kind="raise_quota", quota_kind="kandas", period="2026", change_by=5, rationale="r",
    ), ctx(on=dt.date(2025, 12, 1))).case_id
    app.submit_proposal(proposal, SubmitProposal(), ctx())
    with pytest.raises(RuleViolation, match="only the authorised body"):
        app.decline_proposal(proposal, DeclineProposal(reasons="no"), ctx(OFFICER))
    assert len(app.decline_proposal(proposal, DeclineProposal(reasons="no funds"),
                                    ctx(BODY)).sequence_numbers) == 1
    assert quota_state(app, qid) == (0, 5)
    with pytest.raises(InvalidTransition, match="is declined; cannot accept it"):
        app.accept_proposal(proposal, AcceptProposal(), ctx(BODY))


def test_s10_arrival_is_refused_when_the_home_is_too_small_for_the_family(
    app: KoshApplication,
) -> None:
    open_almaty_for_kandases(app, 5)
    case = family(app, 3)
    app.approve_relocation(case, ApproveRelocation(), ctx())
    address = {"district": "Alatau", "line": "Momyshuly 12"}
    few = RecordArrival.model_validate({"address": address, "housing": {
        "type": "private", "useful_area_m2": 80, "occupants_after_registration": 2}})
    with pytest.raises(RuleViolation, match="3 persons arrive, so at least 3 occupants"):
        app.record_arrival(case, few, ctx())
    small = RecordArrival.model_validate({"address": address, "housing": {
        "type": "state", "useful_area_m2": 44.9, "occupants_after_registration": 3}})
    with pytest.raises(RuleViolation, match="15 m²"):
        app.record_arrival(case, small, ctx())
    assert app.relocation_case(case).status == "approved"


def arrived_family(app: KoshApplication, persons: list[dict[str, str]]) -> tuple[UUID, int]:
    open_almaty_for_kandases(app, 10)
    case = app.apply_for_relocation(ApplyForRelocation.model_validate({
        "category": "kandas", "territory": "Almaty", "period": "2026",
        "applicant": persons[0], "family_members": persons[1:]}), ctx()).case_id
    app.approve_relocation(case, ApproveRelocation(), ctx())
    arrival = app.record_arrival(case, RecordArrival.model_validate({
        "address": {"district": "Turksib", "line": "Suyunbay 5"},
        "housing": {"type": "private", "useful_area_m2": 70,
                    "occupants_after_registration": len(persons)}}), ctx())
    return case, arrival.sequence_numbers[-1]


def test_s9_a_redelivered_arrival_registers_nobody_twice(app: KoshApplication) -> None:
    persons = [{"iin": iin_for(n), "family_name": "F", "given_name": f"G{n}"} for n in (1, 2)]
    case, arrived_seq = arrived_family(app, persons)
    process = RelocationProcess(app)
    assert process.on_arrived(case, arrived_seq) == 2
    stored = head(app)
    assert process.on_arrived(case, arrived_seq) == 0
    assert head(app) == stored
    registrations = app.relocation_case(case).registrations
    assert {r["status"] for r in registrations.values()} == {"registered"}
    for r in registrations.values():
        assert app.repository.get(UUID(r["registration_case_id"])).status == "approved"


def test_s9_a_crash_after_submitting_resumes_with_the_same_registration(
    app: KoshApplication,
) -> None:
    persons = [{"iin": iin_for(5), "family_name": "F", "given_name": "G"}]
    case, arrived_seq = arrived_family(app, persons)
    process = RelocationProcess(app)

    def crash(*args: object) -> None:
        raise RuntimeError("process killed after submitting")

    original = app.approve_registration
    app.approve_registration = crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        process.on_arrived(case, arrived_seq)
    app.approve_registration = original  # type: ignore[method-assign]
    assert process.on_arrived(case, arrived_seq) == 1
    (recorded,) = app.relocation_case(case).registrations.values()
    submitted = [n for n in app.recorder.select_notifications(start=arrived_seq + 1, limit=100)
                 if n.topic.endswith("RegistrationCase.Submitted")]
    assert [n.originator_id for n in submitted] == [UUID(recorded["registration_case_id"])]


def test_s9_a_person_the_registration_service_cannot_take_is_recorded_not_retried(
    app: KoshApplication,
) -> None:
    foreigner = {"kind": "foreigner", "document_type": "passport", "document_number": "N1",
                 "family_name": "F", "given_name": "G"}
    persons = [{"iin": iin_for(7), "family_name": "F", "given_name": "H"}, foreigner]
    case, arrived_seq = arrived_family(app, persons)
    RelocationProcess(app).on_arrived(case, arrived_seq)
    registrations = app.relocation_case(case).registrations
    assert registrations["0"]["status"] == "registered"
    # Until the registration service takes foreigners without an IIN, say so on the case.
    if registrations["1"]["status"] == "failed":
        assert registrations["1"]["reason"].startswith("the registration service does not")
    assert RelocationProcess(app).on_arrived(case, arrived_seq) == 0
