"""Who may do what: one table for HTTP routes and Kafka commands alike.

A command type names the roles that may send it; reads are grouped in scopes. A route or
command type with no rule is denied (and the role-matrix test fails until it gets one).
"""

from __future__ import annotations

from infra.auth import Principal
from infra.settings import Settings

# Registers without personal data: every role that works with cases, and the auditor.
_CASEWORK = frozenset({"registrar", "migration_officer", "akimat_planner", "authorised_body"})

READ_SCOPES: dict[str, frozenset[str]] = {
    # names, IINs, documents, addresses
    "personal": frozenset({"registrar", "migration_officer", "auditor", "service"}),
    "registers": _CASEWORK | {"auditor", "service"},
    "audit": frozenset({"auditor"}),
    "ops": frozenset({"operator", "auditor"}),
}

COMMAND_ROLES: dict[str, frozenset[str]] = {
    "submit_registration": frozenset({"registrar"}),
    "approve_registration": frozenset({"registrar"}),
    "refuse_registration": frozenset({"registrar"}),
    "extend_registration": frozenset({"registrar"}),
    "deregister_resident": frozenset({"registrar"}),
    "correct_registration": frozenset({"registrar"}),
    # The legal-act registry: acts, their publication and state registration, repeals.
    "register_legal_act": frozenset({"authorised_body"}),
    "enter_legal_act_publication": frozenset({"authorised_body"}),
    "enter_legal_act_state_registration": frozenset({"authorised_body"}),
    "repeal_legal_act": frozenset({"authorised_body"}),
    # §3, §5: the authorised body sets quotas and decides the akimat's proposals.
    "establish_quota": frozenset({"authorised_body"}),
    "draft_proposal": frozenset({"akimat_planner"}),
    "submit_proposal": frozenset({"akimat_planner"}),
    "accept_proposal": frozenset({"authorised_body"}),
    "decline_proposal": frozenset({"authorised_body"}),
    # §6
    "apply_for_relocation": frozenset({"migration_officer"}),
    "approve_relocation": frozenset({"migration_officer"}),
    "refuse_relocation": frozenset({"migration_officer"}),
    "withdraw_relocation": frozenset({"migration_officer"}),
    "record_arrival": frozenset({"migration_officer"}),
    # §7: the planning side enters the natural-growth figure migration is judged by.
    "record_natural_growth": frozenset({"akimat_planner", "authorised_body"}),
    "erase_subject": frozenset({"data_protection_officer"}),
}


def command_role(principal: Principal, command_type: str, settings: Settings) -> str | None:
    """The role under which `principal` may send `command_type`, or None."""
    allowed = COMMAND_ROLES.get(command_type, frozenset())
    for role in principal.roles:
        if role in allowed:
            return role
        if role == "service" and command_type in settings.service_grants.get(
            principal.subject, ()
        ):
            return role
    return None


class NotPermitted(Exception):
    """The principal holds no role that may send this command type (HTTP 403, dead letter)."""


def require_command_role(principal: Principal, command_type: str, settings: Settings) -> str:
    role = command_role(principal, command_type, settings)
    if role is None:
        raise NotPermitted(f"role(s) {', '.join(principal.roles)} may not send {command_type}")
    return role


def read_role(principal: Principal, scope: str) -> str | None:
    allowed = READ_SCOPES.get(scope, frozenset())
    return next((r for r in principal.roles if r in allowed), None)
