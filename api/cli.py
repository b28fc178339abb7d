"""The `kosh` command line."""

from __future__ import annotations

import argparse
import sys

from api import audit_cli, erase_cli, event_loop, replay_cli, status, token_cli
from infra.logging import configure_logging
from infra.settings import Settings


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from api.runner import ROLES, run

    roles = set(ROLES) if args.role == "all" else set(args.role.split(","))
    unknown = roles - set(ROLES)
    if unknown:
        print(f"unknown role(s): {', '.join(sorted(unknown))}; choose from {ROLES}",
              file=sys.stderr)
        return 2
    event_loop.run(run(settings, roles))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kosh", description="Kosh migration case management")
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the system (or some of its parts)")
    up.add_argument("--role", default="all",
                    help="all, or a comma list of: api, publisher, projections, processes, intake")
    up.set_defaults(func=_up)
    token_cli.add_parser(sub)
    status.add_parser(sub)
    erase_cli.add_parser(sub)
    replay_cli.add_parser(sub)
    audit_cli.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    return int(args.func(args, settings))


if __name__ == "__main__":
    sys.exit(main())
