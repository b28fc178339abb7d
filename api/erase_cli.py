"""`kosh erase SUBJECT --legal-basis ... --token T`: erasure from the command line, under
the same rule as HTTP (only a data_protection_officer may erase)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import uuid

from domain.context import Actor, CommandContext
from domain.errors import DomainError
from infra.auth import AuthenticationError, verify_token
from infra.permissions import NotPermitted, require_command_role
from infra.settings import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("erase", help="erase a data subject's personal data")
    p.add_argument("subject", help="IIN, or document_type:number")
    p.add_argument("--legal-basis", required=True, help="the law and article requiring it")
    p.add_argument("--token", required=True, help="a data_protection_officer's token")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from api.bootstrap import bootstrap

    try:
        principal = verify_token(settings, args.token)
    except AuthenticationError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 3
    try:
        role = require_command_role(principal, "erase_subject", settings)
    except NotPermitted as exc:
        print(f"refused: {exc}; only a data_protection_officer may erase personal data",
              file=sys.stderr)
        return 3
    ctx = CommandContext(Actor(principal.subject, role, principal.organisation), dt.date.today(),
                         str(uuid.uuid4()), str(uuid.uuid4()))
    try:
        outcome = bootstrap(settings).app.erase_subject(args.subject, args.legal_basis, ctx)
    except DomainError as exc:
        print(f"refused: {exc.message}", file=sys.stderr)
        return 1
    print(f"erased: erasure {outcome.case_id}, events {list(outcome.sequence_numbers)}")
    return 0
