"""Command type name → its pydantic model and the application method that executes it.

The Kafka intake (and anything else that receives commands by name) looks commands up
here; the model is the same one the HTTP route validates with. A new command type is one
entry in COMMAND_TYPES:

    "approve_registration": CommandType(ApproveRegistration, on_case("approve_registration")),

`on_new_case(m)` calls `app.m(cmd, ctx)`; `on_case(m)` calls `app.m(case_id, cmd, ctx)` with
the envelope's case id (required); any other shape passes its own callable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from domain.commands import (
    ApproveRegistration,
    CorrectRegistration,
    Deregister,
    ExtendRegistration,
    RefuseRegistration,
    SubmitRegistration,
)
from domain.context import CommandContext
from domain.errors import InvalidValue
from domain.legal_act_commands import (
    EnterPublication,
    EnterStateRegistration,
    RegisterLegalAct,
    RepealLegalAct,
)
from domain.proposal_commands import (
    AcceptProposal,
    DeclineProposal,
    DraftProposal,
    SubmitProposal,
)
from domain.quota_commands import EstablishQuota
from domain.relocation_commands import (
    ApplyForRelocation,
    ApproveRelocation,
    RecordArrival,
    RefuseRelocation,
    WithdrawRelocation,
)
from infra.service_base import Outcome

Handler = Callable[[Any, Any, CommandContext, "UUID | None"], Outcome]


class UnknownCommandType(InvalidValue):
    code = "unknown_command_type"


class MissingCaseId(InvalidValue):
    code = "missing_case_id"


@dataclass(frozen=True)
class CommandType:
    model: type[BaseModel]
    handle: Handler

    @property
    def targets_case(self) -> bool:
        return bool(getattr(self.handle, "targets_case", False))


def on_new_case(method: str) -> Handler:
    def handle(app: Any, cmd: Any, ctx: CommandContext, case_id: UUID | None) -> Outcome:
        return getattr(app, method)(cmd, ctx)  # type: ignore[no-any-return, unused-ignore]

    return handle


def on_case(method: str) -> Handler:
    def handle(app: Any, cmd: Any, ctx: CommandContext, case_id: UUID | None) -> Outcome:
        if case_id is None:
            raise MissingCaseId("this command acts on an existing case: give case_id")
        return getattr(app, method)(case_id, cmd, ctx)  # type: ignore[no-any-return, unused-ignore]

    handle.targets_case = True  # type: ignore[attr-defined]
    return handle


COMMAND_TYPES: dict[str, CommandType] = {
    "submit_registration": CommandType(SubmitRegistration, on_new_case("submit_registration")),
    "approve_registration": CommandType(ApproveRegistration, on_case("approve_registration")),
    "refuse_registration": CommandType(RefuseRegistration, on_case("refuse_registration")),
    "extend_registration": CommandType(ExtendRegistration, on_case("extend_registration")),
    "deregister_resident": CommandType(Deregister, on_case("deregister")),
    "correct_registration": CommandType(CorrectRegistration, on_case("correct_registration")),
    # The legal-act registry; case_id is the act's aggregate id (GET /legal-acts: "id").
    "register_legal_act": CommandType(RegisterLegalAct, on_new_case("register_legal_act")),
    "enter_legal_act_publication": CommandType(
        EnterPublication, on_case("enter_legal_act_publication")),
    "enter_legal_act_state_registration": CommandType(
        EnterStateRegistration, on_case("enter_legal_act_state_registration")),
    "repeal_legal_act": CommandType(RepealLegalAct, on_case("repeal_legal_act")),
    # §3, §5, §6
    "establish_quota": CommandType(EstablishQuota, on_new_case("establish_quota")),
    "draft_proposal": CommandType(DraftProposal, on_new_case("draft_proposal")),
    "submit_proposal": CommandType(SubmitProposal, on_case("submit_proposal")),
    "accept_proposal": CommandType(AcceptProposal, on_case("accept_proposal")),
    "decline_proposal": CommandType(DeclineProposal, on_case("decline_proposal")),
    "apply_for_relocation": CommandType(ApplyForRelocation, on_new_case("apply_for_relocation")),
    "approve_relocation": CommandType(ApproveRelocation, on_case("approve_relocation")),
    "refuse_relocation": CommandType(RefuseRelocation, on_case("refuse_relocation")),
    "withdraw_relocation": CommandType(WithdrawRelocation, on_case("withdraw_relocation")),
    "record_arrival": CommandType(RecordArrival, on_case("record_arrival")),
}


def command_type(name: str) -> CommandType:
    try:
        return COMMAND_TYPES[name]
    except KeyError:
        known = ", ".join(sorted(COMMAND_TYPES))
        raise UnknownCommandType(f"unknown command type {name[:64]!r}; known: {known}") from None
