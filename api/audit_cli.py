"""`kosh audit verify | export CASE_ID [-o FILE] | check FILE PUBKEY | public-key`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from uuid import UUID

from infra.settings import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="tamper-evident audit trail: verify, export, check")
    audit = p.add_subparsers(dest="audit_command", required=True)
    verify = audit.add_parser(
        "verify",
        help="recompute the tree from the store; exit 1 and name the first changed, "
        "removed or moved sequence number if the store no longer matches the trail",
    )
    verify.set_defaults(func=run_verify)
    export = audit.add_parser(
        "export", help="one JSON file: a case's events with inclusion proofs and a signed head"
    )
    export.add_argument("case_id", type=UUID)
    export.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    export.set_defaults(func=run_export)
    check = audit.add_parser(
        "check", help="verify an exported file offline, with nothing but it and the public key"
    )
    check.add_argument("file", type=Path)
    check.add_argument("public_key", type=Path, help="PEM (GET /audit/public-key)")
    check.set_defaults(func=run_check)
    key = audit.add_parser("public-key", help="print the public key that verifies tree heads")
    key.set_defaults(func=run_public_key)


def run_verify(args: argparse.Namespace, settings: Settings) -> int:
    from projections.audit.verify import verify_store

    report = verify_store(settings)
    if not report.ok:
        if report.first_bad_seq is None:
            print(f"NOT VERIFIED: {report.problem}")
        else:
            print(f"TAMPERED at sequence {report.first_bad_seq}: {report.problem}")
        return 1
    print(
        f"OK: {report.events_checked} stored events match the audit trail; "
        f"{report.heads_checked} signed tree heads hold; "
        f"{report.untracked} newer events not in the trail yet"
    )
    return 0


def run_export(args: argparse.Namespace, settings: Settings) -> int:
    from projections.audit.export import NotInTrail, export_case
    from projections.audit.heads import TreeHeads, signing_key
    from projections.audit.trail import AuditTrail

    trail = AuditTrail(settings)
    try:
        doc = export_case(args.case_id, trail, TreeHeads(trail.db, signing_key(settings)))
    except NotInTrail as exc:
        print(str(exc), file=sys.stderr)
        return 1
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
        print(
            f"wrote {len(doc['events'])} events of case {args.case_id} under tree head of "
            f"size {doc['tree_head']['tree_size']} to {args.output}",
            file=sys.stderr,
        )
    return 0


def run_check(args: argparse.Namespace, settings: Settings) -> int:
    # Exactly what an auditor runs on their own machine: proofs.py and nothing else of Kosh.
    from projections.audit import proofs

    return proofs.main([str(args.file), str(args.public_key)])


def run_public_key(args: argparse.Namespace, settings: Settings) -> int:
    from projections.audit.heads import signing_key

    sys.stdout.write(signing_key(settings).public_pem().decode("ascii"))
    return 0
