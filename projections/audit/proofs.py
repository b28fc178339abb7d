"""Offline verification of Kosh audit proofs (RFC 6962 / RFC 9162 Merkle trees).

This module is what an auditor runs on their own machine, so it imports only the standard
library and ``cryptography`` and nothing from the Kosh project. Copy the file and run::

    python -m projections.audit.proofs EXPORT.json PUBLIC_KEY.pem    # or: python proofs.py ...

Hashing (RFC 6962 §2.1): leaves are ``SHA-256(0x00 || bytes)`` and interior nodes
``SHA-256(0x01 || left || right)``; the distinct prefixes stop a leaf being passed off as a node
(second-preimage attack). The root of the empty tree is ``SHA-256(b"")``.

Signed tree head (STH): a JSON object
``{"tree_size": int, "root_hash": hex str, "timestamp_ms": int, "signature": base64 str}``.
The Ed25519 signature covers exactly the bytes of :func:`tree_head_message`::

    b"kosh-sth-v1\\n" + f"{tree_size}\\n{root_hash_hex_lowercase}\\n{timestamp_ms}".encode()

Export document (``format`` = ``"kosh-audit-export/1"``), one case file::

    {
      "format": "kosh-audit-export/1",
      "case_id": str,
      "tree_head": {STH as above},
      "events": [
        {
          "sequence": int,            # 1-based event-store sequence number
          "leaf_index": int,          # == sequence - 1 (leaf i of the log is event i+1)
          "stored_bytes_b64": str,    # standard base64 of the exact bytes that were hashed
          "inclusion_proof": [hex str, ...],  # RFC 6962 §2.1.1 PATH, leaf upwards
          "summary": any JSON         # human-readable; NOT covered by any proof
        }, ...
      ]
    }

Only ``stored_bytes_b64`` is authenticated: the auditor must read the facts from those bytes, not
from ``summary``, which the exporter may render however it likes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeGuard

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

EXPORT_FORMAT = "kosh-audit-export/1"
HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()  # RFC 6962 §2.1: MTH({}) = SHA-256()


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 §2.1: MTH({d}) = SHA-256(0x00 || d)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 §2.1: interior node = SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_int(value: object) -> TypeGuard[int]:
    # bool is an int subclass; a JSON `true` must not pass for a size or index.
    return isinstance(value, int) and not isinstance(value, bool)


def verify_inclusion(
    leaf_index: int, tree_size: int, leaf_hash: bytes, proof: list[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` put ``leaf_hash`` at ``leaf_index`` under ``root``?"""
    if not (_is_int(leaf_index) and _is_int(tree_size) and 0 <= leaf_index < tree_size):
        return False
    if not (_is_hash(leaf_hash) and _is_hash(root) and all(_is_hash(p) for p in proof)):
        return False
    fn, sn, r = leaf_index, tree_size - 1, leaf_hash
    for p in proof:
        if sn == 0:  # proof longer than the path to the root
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # fn == sn on the right edge: skip levels where this node has no right sibling.
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: is the tree (size2, root2) an append-only extension of (size1, root1)?"""
    if not (_is_int(size1) and _is_int(size2) and 0 <= size1 <= size2):
        return False
    if not (_is_hash(root1) and _is_hash(root2) and all(_is_hash(p) for p in proof)):
        return False
    if size1 == size2:  # RFC 6962 §2.1.2: the proof for equal sizes is empty
        return not proof and root1 == root2
    if size1 == 0:  # every tree extends the empty tree; the proof is empty
        return not proof
    if not proof:
        return False
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # old tree is a perfect subtree: its root starts the path
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == root1 and sr == root2 and sn == 0


def tree_head_message(size: int, root: bytes, timestamp_ms: int) -> bytes:
    """The exact bytes an STH signature covers (versioned so the encoding can change later)."""
    return b"kosh-sth-v1\n" + f"{size}\n{root.hex()}\n{timestamp_ms}".encode()


def _parse_tree_head(sth: object) -> tuple[int, bytes, int, bytes] | str:
    """Return (size, root, timestamp_ms, signature) or a description of what is malformed."""
    if not isinstance(sth, dict):
        return "tree head is not an object"
    size, root_hex, ts, sig_b64 = (
        sth.get(k) for k in ("tree_size", "root_hash", "timestamp_ms", "signature")
    )
    if not (_is_int(size) and size >= 0):
        return "tree head: tree_size must be a non-negative integer"
    if not _is_int(ts):
        return "tree head: timestamp_ms must be an integer"
    root = _hex_hash(root_hex)
    if root is None:
        return "tree head: root_hash must be 64 hex characters"
    sig = _b64(sig_b64)
    if sig is None:
        return "tree head: signature must be base64"
    return size, root, ts, sig


def _b64(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        return None


def _hex_hash(value: object) -> bytes | None:
    if not isinstance(value, str) or len(value) != 2 * HASH_SIZE:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


def verify_tree_head(sth: dict[str, Any], public_key_pem: bytes) -> bool:
    """Check an STH's Ed25519 signature; malformed input is invalid rather than an error."""
    parsed = _parse_tree_head(sth)
    if isinstance(parsed, str):
        return False
    size, root, ts, sig = parsed
    try:
        key = load_pem_public_key(public_key_pem)
    except (ValueError, TypeError):
        return False
    if not isinstance(key, Ed25519PublicKey):
        return False
    try:
        key.verify(sig, tree_head_message(size, root, ts))
    except InvalidSignature:
        return False
    return True


def _check_event(event: object, position: int, size: int, root: bytes) -> list[str]:
    if not isinstance(event, dict) or not _is_int(event.get("sequence")):
        return [f"event #{position + 1} in the file: missing or non-integer sequence"]
    seq = event["sequence"]
    where = f"event sequence {seq}"
    if seq < 1:
        return [f"{where}: sequence must be >= 1"]
    problems = []
    index = event.get("leaf_index")
    if index != seq - 1 or not _is_int(index):
        problems.append(f"{where}: leaf_index {index!r} is not sequence - 1 = {seq - 1}")
    data = _b64(event.get("stored_bytes_b64"))
    if data is None:
        return [*problems, f"{where}: stored_bytes_b64 is missing or not valid base64"]
    raw_proof = event.get("inclusion_proof")
    parsed = [_hex_hash(p) for p in raw_proof] if isinstance(raw_proof, list) else [None]
    proof = [p for p in parsed if p is not None]
    if len(proof) != len(parsed):
        return [*problems, f"{where}: inclusion_proof must be a list of 64-hex-char hashes"]
    # Check the position the store's sequence implies, so a relabelled index cannot pass.
    if seq - 1 >= size:
        problems.append(f"{where}: not covered by the tree head (size {size})")
    elif not verify_inclusion(seq - 1, size, leaf_hash(data), proof, root):
        problems.append(
            f"{where}: stored bytes are not included at leaf {seq - 1} "
            f"of the tree of size {size} (bytes or proof altered)"
        )
    return problems


def check_export(doc: dict[str, Any], public_key_pem: bytes) -> list[str]:
    """Verify an exported case file offline; return human-readable problems ([] = valid)."""
    if not isinstance(doc, dict):
        return ["export is not a JSON object"]
    problems: list[str] = []
    if doc.get("format") != EXPORT_FORMAT:
        problems.append(f"format is {doc.get('format')!r}, expected {EXPORT_FORMAT!r}")
    if not isinstance(doc.get("case_id"), str):
        problems.append("case_id is missing or not a string")
    parsed = _parse_tree_head(doc.get("tree_head"))
    if isinstance(parsed, str):
        return [*problems, parsed + "; events cannot be checked"]
    size, root, _, _ = parsed
    if not verify_tree_head(doc["tree_head"], public_key_pem):
        problems.append("tree head: signature does not verify with the given public key")
    events = doc.get("events")
    if not isinstance(events, list):
        return [*problems, "events is missing or not a list"]
    seen: set[int] = set()
    for position, event in enumerate(events):
        problems += _check_event(event, position, size, root)
        seq = event.get("sequence") if isinstance(event, dict) else None
        if _is_int(seq) and seq in seen:
            problems.append(f"event sequence {seq}: appears more than once")
        if _is_int(seq):
            seen.add(seq)
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``proofs EXPORT.json PUBLIC_KEY.pem``; exit 0 when valid, 1 on problems, 2 on usage."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m projections.audit.proofs EXPORT.json PUBLIC_KEY.pem",
              file=sys.stderr)
        return 2
    try:
        doc = json.loads(Path(args[0]).read_text(encoding="utf-8"))
        key_pem = Path(args[1]).read_bytes()
    except (OSError, ValueError) as exc:
        print(f"cannot read input: {exc}")
        return 1
    problems = check_export(doc, key_pem)
    if problems:
        for problem in problems:
            print(problem)
        return 1
    print(f"OK: {len(doc['events'])} events verified against tree head of size "
          f"{doc['tree_head']['tree_size']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
