"""`kosh audit export CASE_ID` → `kosh audit check FILE PUBKEY`: a case file verifies offline
with nothing but itself and the public key; a tampered file, or an export of a tampered
store, fails."""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

from api.bootstrap import bootstrap
from domain.commands import ApproveRegistration, SubmitRegistration
from domain.context import Actor, CommandContext
from infra.settings import Settings
from projections.audit.heads import signing_key
from projections.audit.proofs import check_export, decode_leaf
from tests.support.builders import registration_body
from tests.support.system import REPO, settings_env


def kosh_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        cwd=REPO,
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_exported_case_checks_offline_and_a_tampered_copy_fails(
    settings: Settings, tmp_path: Path
) -> None:
    app = bootstrap(settings).app
    ctx = CommandContext(
        Actor("officer-1", "registrar", "Medeu district akimat"),
        dt.date(2024, 2, 1),
        "corr-x",
        "cause-x",
    )
    case = app.submit_registration(SubmitRegistration(**registration_body(1)), ctx)
    app.submit_registration(SubmitRegistration(**registration_body(2)), ctx)  # another case
    app.approve_registration(case.case_id, ApproveRegistration(), ctx)

    exported, key = tmp_path / "case.json", tmp_path / "key.pem"
    run = kosh_cli(settings, "audit", "export", str(case.case_id), "-o", str(exported))
    assert run.returncode == 0, run.stderr
    key.write_bytes(signing_key(settings).public_pem())
    doc = json.loads(exported.read_text())
    assert [e["summary"]["event_type"] for e in doc["events"]] == [
        "RegistrationCase.Submitted",
        "RegistrationCase.Approved",
    ]
    assert doc["tree_head"]["tree_size"] >= 3  # the other case's event is a leaf too

    checked = kosh_cli(settings, "audit", "check", str(exported), str(key))
    assert checked.returncode == 0, checked.stdout
    assert checked.stdout.strip() == (
        f"OK: 2 events verified against tree head of size {doc['tree_head']['tree_size']}"
    )

    # The checker is one file: a copy outside the project verifies the same export.
    shutil.copy(REPO / "projections" / "audit" / "proofs.py", tmp_path / "proofs.py")
    alone = subprocess.run(
        [sys.executable, "-I", "proofs.py", str(exported), str(key)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert alone.returncode == 0, alone.stdout + alone.stderr

    # One byte of the approval's stored state changed in the file.
    leaf = bytearray(base64.b64decode(doc["events"][1]["leaf_b64"]))
    at = leaf.index(b'"registrar"') + 1
    leaf[at] = ord("R")
    doc["events"][1]["leaf_b64"] = base64.b64encode(bytes(leaf)).decode()
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(doc))
    failed = subprocess.run(
        [sys.executable, "-I", "proofs.py", str(tampered), str(key)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failed.returncode == 1
    seq = doc["events"][1]["sequence"]
    assert f"event sequence {seq}: leaf bytes are not included" in failed.stdout


def test_an_export_of_a_tampered_store_fails_the_check(settings: Settings) -> None:
    from projections.audit.export import export_case
    from projections.audit.heads import TreeHeads
    from projections.audit.leaves import store_db
    from projections.audit.trail import AuditTrail

    app = bootstrap(settings).app
    ctx = CommandContext(
        Actor("officer-2", "registrar", "Auezov district akimat"),
        dt.date(2024, 2, 2),
        "corr-y",
        "cause-y",
    )
    case = app.submit_registration(SubmitRegistration(**registration_body(4)), ctx)
    trail = AuditTrail(settings)
    heads = TreeHeads(trail.db, signing_key(settings))
    honest = export_case(case.case_id, trail, heads)
    assert check_export(honest, heads.signer.public_pem()) == []  # type: ignore[union-attr]

    seq = honest["events"][0]["sequence"]
    state = decode_leaf(base64.b64decode(honest["events"][0]["leaf_b64"]))["state"]  # type: ignore[index]
    with store_db(settings).transaction() as cur:
        cur.execute(
            "UPDATE stored_events SET state = ? WHERE rowid = ?",
            (state.replace(b"2024-02-02", b"2024-01-02"), seq),
        )
    forged = export_case(case.case_id, trail, heads)
    problems = check_export(forged, heads.signer.public_pem())  # type: ignore[union-attr]
    assert problems and f"event sequence {seq}" in problems[0]
