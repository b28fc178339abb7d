"""Offline auditor checks: signed tree heads and verification of an exported case file."""

from __future__ import annotations

import base64
import copy
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from projections.audit.merkle import MerkleTree, TreeHeadSigner, load_or_create_signing_key
from projections.audit.proofs import (
    check_export,
    decode_leaf,
    encode_leaf,
    main,
    verify_tree_head,
)

TS = 1_700_000_000_000


@pytest.fixture(scope="module")
def signer() -> TreeHeadSigner:
    return TreeHeadSigner.generate()


CASE = "7d4c1a52-0c3e-4bb5-9a43-0a4f2f1c9e11"
OTHER = "0b9f4a3e-5d1c-4c8e-8f7a-2e6d1b3c4a5f"
# Store sequence numbers skip 3, as PostgreSQL does after a rolled-back write.
SEQUENCES = (1, 2, 4, 5, 6, 7)


def leaf(seq: int) -> bytes:
    owner = CASE if seq % 2 else OTHER
    state = json.dumps({"seq": seq, "type": "Registered"}).encode()
    return encode_leaf(
        seq, owner.replace("-", ""), seq, "domain.registration:Case.Registered", state
    )


def export(signer: TreeHeadSigner, sequences: tuple[int, ...] = (1, 5, 7)) -> dict[str, Any]:
    tree = MerkleTree(leaf(s) for s in SEQUENCES)
    return {
        "format": "kosh-audit-export/1",
        "case_id": CASE,
        "tree_head": signer.sign(tree.size, tree.root(), TS),
        "events": [
            {
                "sequence": s,
                "leaf_index": SEQUENCES.index(s),
                "leaf_b64": base64.b64encode(leaf(s)).decode(),
                "inclusion_proof": [h.hex() for h in tree.inclusion_proof(SEQUENCES.index(s))],
                "summary": {"type": "Registered"},
            }
            for s in sequences
        ],
    }


def test_leaf_encoding_round_trips_and_is_canonical() -> None:
    data = encode_leaf(12, "ab" * 16, 3, "t:a\nb", b'{"x":1}\n')
    assert data == (b"kosh-event-v1\n12\n3\n32:" + b"ab" * 16 + b"\n5:t:a\nb\n" + b'{"x":1}\n')
    assert decode_leaf(data) == {
        "sequence": 12,
        "originator_id": "ab" * 16,
        "originator_version": 3,
        "topic": "t:a\nb",
        "state": b'{"x":1}\n',
    }
    for bad in (
        data.replace(b"\n12\n", b"\n012\n"),
        data.replace(b"\n5:", b"\n4:"),
        data.replace(b"kosh-event-v1", b"kosh-event-v2"),
        b"",
        data[:20],
    ):
        assert decode_leaf(bad) is None, bad


def test_a_newline_in_the_topic_cannot_pass_for_part_of_the_state() -> None:
    assert encode_leaf(1, "id", 1, "t\nx", b"s") != encode_leaf(1, "id", 1, "t", b"x\ns")


def test_signed_tree_head_verifies_with_the_signers_public_key(signer: TreeHeadSigner) -> None:
    sth = signer.sign(3, bytes(32), TS)
    assert set(sth) == {"tree_size", "root_hash", "timestamp_ms", "signature"}
    assert verify_tree_head(sth, signer.public_pem())


def test_tampered_tree_head_fails(signer: TreeHeadSigner) -> None:
    sth = signer.sign(3, bytes(32), TS)
    sig = bytearray(base64.b64decode(str(sth["signature"])))
    sig[0] ^= 1
    for change in (
        {"signature": base64.b64encode(bytes(sig)).decode()},
        {"tree_size": 4},
        {"timestamp_ms": TS + 1},
        {"root_hash": "11" * 32},
        {"signature": "not base64!"},
        {"tree_size": True},
    ):
        assert not verify_tree_head({**sth, **change}, signer.public_pem()), change


def test_tree_head_fails_with_another_key_or_garbage_key(signer: TreeHeadSigner) -> None:
    sth = signer.sign(3, bytes(32), TS)
    assert not verify_tree_head(sth, TreeHeadSigner.generate().public_pem())
    assert not verify_tree_head(sth, b"not a pem")


def test_signer_round_trips_through_pem(signer: TreeHeadSigner) -> None:
    again = TreeHeadSigner.from_pem(signer.private_pem())
    assert verify_tree_head(again.sign(1, bytes(32), TS), signer.public_pem())


def test_signing_key_is_created_owner_only_and_then_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "sth.pem"
    first = load_or_create_signing_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_signing_key(path).public_pem() == first.public_pem()


def test_untampered_export_has_no_problems(signer: TreeHeadSigner) -> None:
    assert check_export(export(signer), signer.public_pem()) == []


def test_altered_stored_byte_is_reported_with_its_sequence(signer: TreeHeadSigner) -> None:
    doc = export(signer)
    raw = bytearray(base64.b64decode(doc["events"][1]["leaf_b64"]))
    raw[-2] ^= 1
    doc["events"][1]["leaf_b64"] = base64.b64encode(bytes(raw)).decode()
    problems = check_export(doc, signer.public_pem())
    assert len(problems) == 1 and "sequence 5" in problems[0]


def test_altered_proof_element_is_reported_with_its_sequence(signer: TreeHeadSigner) -> None:
    doc = export(signer)
    proof = doc["events"][2]["inclusion_proof"]
    proof[1] = ("0" if proof[1][0] != "0" else "1") + proof[1][1:]
    problems = check_export(doc, signer.public_pem())
    assert len(problems) == 1 and "sequence 7" in problems[0]


def test_altered_tree_size_breaks_the_signature_and_the_proofs(signer: TreeHeadSigner) -> None:
    doc = export(signer)
    doc["tree_head"]["tree_size"] = 5
    problems = check_export(doc, signer.public_pem())
    assert any("signature" in p for p in problems)
    assert any("sequence 7" in p for p in problems)  # leaf 5 is outside a tree of 5


def test_relabelled_sequence_or_leaf_index_is_reported(signer: TreeHeadSigner) -> None:
    doc = export(signer)
    doc["events"][0]["sequence"] = 2  # claims event 1's bytes are event 2
    problems = check_export(doc, signer.public_pem())
    assert problems == ["event sequence 2: the leaf holds sequence 1, not 2"]
    doc = export(signer)
    doc["events"][1]["leaf_index"] = 2  # claims event 5 sits where event 4 does
    problems = check_export(doc, signer.public_pem())
    assert len(problems) == 1 and "sequence 5" in problems[0] and "leaf 2" in problems[0]


def test_events_of_another_aggregate_are_reported(signer: TreeHeadSigner) -> None:
    problems = check_export(export(signer, (1, 2)), signer.public_pem())
    assert len(problems) == 1 and "sequence 2" in problems[0] and "not to case" in problems[0]


def test_reordered_events_are_reported(signer: TreeHeadSigner) -> None:
    tree = MerkleTree([leaf(5), leaf(1)])  # a log that put event 5 before event 1
    doc = {**export(signer), "tree_head": signer.sign(2, tree.root(), TS)}
    doc["events"] = [
        {
            "sequence": s,
            "leaf_index": i,
            "leaf_b64": base64.b64encode(leaf(s)).decode(),
            "inclusion_proof": [h.hex() for h in tree.inclusion_proof(i)],
        }
        for i, s in enumerate((5, 1))
    ]
    problems = check_export(doc, signer.public_pem())
    assert len(problems) == 1 and "store order" in problems[0]


def test_wrong_public_key_is_reported(signer: TreeHeadSigner) -> None:
    problems = check_export(export(signer), TreeHeadSigner.generate().public_pem())
    assert problems == ["tree head: signature does not verify with the given public key"]


def test_malformed_export_reports_problems_instead_of_raising(signer: TreeHeadSigner) -> None:
    doc = export(signer)
    bad = copy.deepcopy(doc)
    bad["events"][0]["inclusion_proof"] = ["zz"]
    bad["events"][1]["leaf_b64"] = None
    bad["events"].append({"summary": {}})
    problems = check_export(bad, signer.public_pem())
    assert len(problems) == 3
    assert check_export({"format": "other"}, signer.public_pem())  # no crash
    assert check_export([], signer.public_pem()) == ["export is not a JSON object"]  # type: ignore[arg-type]


def write_inputs(tmp_path: Path, doc: dict[str, Any], signer: TreeHeadSigner) -> list[str]:
    (tmp_path / "export.json").write_text(json.dumps(doc))
    (tmp_path / "key.pem").write_bytes(signer.public_pem())
    return [str(tmp_path / "export.json"), str(tmp_path / "key.pem")]


def test_main_prints_ok_and_exits_0_for_a_valid_export(
    tmp_path: Path, signer: TreeHeadSigner, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(write_inputs(tmp_path, export(signer), signer)) == 0
    assert capsys.readouterr().out.strip() == ("OK: 3 events verified against tree head of size 6")


def test_main_prints_each_problem_and_exits_1_for_a_tampered_export(
    tmp_path: Path, signer: TreeHeadSigner, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = export(signer)
    doc["events"][0]["leaf_b64"] = base64.b64encode(b"rewritten").decode()
    assert main(write_inputs(tmp_path, doc, signer)) == 1
    assert "sequence 1" in capsys.readouterr().out


def test_main_exits_1_on_unreadable_input_and_2_on_bad_usage(tmp_path: Path) -> None:
    assert main([str(tmp_path / "missing.json"), str(tmp_path / "missing.pem")]) == 1
    assert main([]) == 2
