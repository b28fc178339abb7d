"""`kosh token issue`: mints a signed token (or an API key) for a deployment's user."""

from __future__ import annotations

import argparse

from infra.auth import ROLES, ApiKeyStore, issue_token
from infra.settings import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    token = sub.add_parser("token", help="issue tokens and API keys")
    actions = token.add_subparsers(dest="token_command", required=True)
    issue = actions.add_parser("issue", help="print a new token for a subject and role")
    issue.add_argument("--role", required=True, action="append", choices=ROLES,
                       help="repeat for several roles")
    issue.add_argument("--subject", required=True, help="who the token identifies")
    issue.add_argument("--organisation", default="", help="the subject's organisation")
    issue.add_argument("--ttl", type=int, default=None, help="lifetime in seconds")
    issue.add_argument("--api-key", action="store_true",
                       help="create a revocable API key (stored only as a hash) instead")
    issue.set_defaults(func=run_issue)


def run_issue(args: argparse.Namespace, settings: Settings) -> int:
    if args.api_key:
        from api.bootstrap import store_database

        print(ApiKeyStore(store_database(settings)).create(args.subject, args.role,
                                                           args.organisation))
    else:
        print(issue_token(settings, args.subject, args.role, args.organisation, args.ttl))
    return 0
