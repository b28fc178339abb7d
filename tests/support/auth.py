"""Tokens for tests: every HTTP call is authenticated, as in production."""

from __future__ import annotations

from infra.auth import issue_token
from infra.settings import Settings

# A user holding every working role, for tests about something other than permissions
# (tests/integration/test_access_matrix.py checks each role alone).
EVERY_ROLE = ("registrar", "migration_officer", "akimat_planner", "authorised_body", "auditor",
              "operator")


def token(settings: Settings, *roles: str, subject: str | None = None,
          organisation: str = "test-org") -> str:
    return issue_token(settings, subject or f"test-{'-'.join(roles)}", list(roles), organisation)


def auth_headers(settings: Settings, *roles: str, subject: str | None = None) -> dict[str, str]:
    """`Authorization` header for a user holding `roles` (signed with the test's secret)."""
    return {"Authorization": f"Bearer {token(settings, *roles, subject=subject)}"}
