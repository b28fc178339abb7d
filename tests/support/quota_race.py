"""The race of tests/integration/test_quota_race.py: OS processes, each with its own
KoshApplication on the same store, approving relocation cases against one quota."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from uuid import UUID

from domain.context import Actor, CommandContext
from domain.errors import DomainError
from domain.proposal_commands import AcceptProposal, DraftProposal, SubmitProposal
from domain.quota_commands import EstablishQuota
from domain.relocation_commands import ApplyForRelocation, ApproveRelocation
from infra.application import KoshApplication
from infra.settings import Settings
from tests.support.builders import iin_for

ON = dt.date(2026, 2, 1)
OFFICER = Actor("officer-1", "migration_officer", "Almaty akimat")
BODY = Actor("body-1", "authorised_body", "Ministry of Labour, migration committee")


def ctx(actor: Actor = OFFICER, on: dt.date = ON) -> CommandContext:
    return CommandContext(actor, on, f"corr-{uuid.uuid4()}", str(uuid.uuid4()))


def open_almaty_for_kandases(app: KoshApplication, limit: int) -> UUID:
    """An established kandas quota for Almaty 2026 and the territory designated."""
    before = dt.date(2025, 12, 1)
    quota = app.establish_quota(
        EstablishQuota(kind="kandas", territory="Almaty", period="2026", limit=limit),
        ctx(BODY, before),
    )
    proposal = app.draft_proposal(
        DraftProposal(kind="include_territory", categories=["kandas"], rationale="labour need"),
        ctx(OFFICER, before),
    ).case_id
    app.submit_proposal(proposal, SubmitProposal(), ctx(OFFICER, before))
    app.accept_proposal(proposal, AcceptProposal(), ctx(BODY, before))
    return quota.case_id


def apply_one_person_each(app: KoshApplication, count: int) -> list[str]:
    return [
        str(app.apply_for_relocation(
            ApplyForRelocation(
                category="kandas", territory="Almaty", period="2026",
                applicant={"iin": iin_for(n), "family_name": f"F{n}", "given_name": f"G{n}"},
            ),
            ctx(),
        ).case_id)
        for n in range(count)
    ]


def approve_all(settings_json: str, case_ids: list[str]) -> dict[str, int]:
    """One racer: approves its share, counting outcomes by refusal message kind."""
    app = KoshApplication(Settings.model_validate_json(settings_json))
    outcomes: Counter[str] = Counter()
    for case_id in case_ids:
        try:
            app.approve_relocation(UUID(case_id), ApproveRelocation(), ctx())
            outcomes["approved"] += 1
        except DomainError as exc:
            full = "has 0 place(s) remaining of" in exc.message
            outcomes["refused: quota full" if full else f"refused: {exc.message}"] += 1
    app.close()
    return dict(outcomes)
