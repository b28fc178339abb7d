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

Leaf (one per stored event, in store sequence order; leaf i is the (i+1)-th stored event): the
stored row of the event store (table ``stored_events`` on SQLite, ``<application>_events``
on PostgreSQL), in this exact encoding (see :func:`encode_leaf`)::

    b"kosh-event-v1\n"
    + f"{sequence}\n{originator_version}\n".encode()      # decimal, no leading zeros
    + f"{len(id)}:".encode() + id + b"\n"                    # originator id as stored, UTF-8
    + f"{len(topic)}:".encode() + topic + b"\n"              # event topic, UTF-8
    + state                                                  # the stored state bytes, verbatim

``sequence`` is the store's notification id (the SQLite rowid, the PostgreSQL
``notification_id``), ``id`` the originator id as the store holds it (32 hex digits on SQLite,
the canonical dashed UUID on PostgreSQL), lengths count bytes. The state is the JSON the store
wrote; personal fields in it are AES-GCM sealed, so erasing a data subject (deleting their key)
leaves the leaf unchanged. Sequence numbers increase with the leaf index but may skip values
(PostgreSQL can burn a number on a rolled-back write), so the leaf index is not sequence - 1.

Export document (``format`` = ``"kosh-audit-export/1"``), one case file::

    {
      "format": "kosh-audit-export/1",
      "case_id": str,                 # the case's aggregate id (a UUID)
      "tree_head": {STH as above},
      "events": [
        {
          "sequence": int,            # event-store sequence number, also inside the leaf
          "leaf_index": int,          # position of the event in the log, 0-based
          "leaf_b64": str,            # standard base64 of the leaf bytes that were hashed
          "inclusion_proof": [hex str, ...],  # RFC 6962 §2.1.1 PATH, leaf upwards
          "summary": any JSON         # human-readable; NOT covered by any proof
        }, ...
      ]
    }

Only ``leaf_b64`` is authenticated: the auditor must read the facts from those bytes (the state
JSON at their end), not from ``summary``, which the exporter may render however it likes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeGuard, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

EXPORT_FORMAT = "kosh-audit-export/1"
HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()  # RFC 6962 §2.1: MTH({}) = SHA-256()
LEAF_MAGIC = b"kosh-event-v1\n"


def encode_leaf(
    sequence: int, originator_id: str, originator_version: int, topic: str, state: bytes
) -> bytes:
    """The leaf of one stored event. Strings carry their byte length so that no two different
    rows encode alike (a topic holding a newline cannot pass for part of the state)."""
    oid, top = originator_id.encode("utf-8"), topic.encode("utf-8")
    return b"".join(
        (
            LEAF_MAGIC,
            f"{int(sequence)}\n{int(originator_version)}\n{len(oid)}:".encode(),
            oid,
            f"\n{len(top)}:".encode(),
            top,
            b"\n",
            bytes(state),
        )
    )


def decode_leaf(data: bytes) -> dict[str, Any] | None:
    """The fields of a leaf (``sequence``, ``originator_id``, ``originator_version``,
    ``topic``, ``state``), or None when the bytes are not a canonical leaf."""
    try:
        if not data.startswith(LEAF_MAGIC):
            return None
        rest = data[len(LEAF_MAGIC) :]
        seq_text, version_text, rest = rest.split(b"\n", 2)
        fields = []
        for _ in range(2):
            length_text, rest = rest.split(b":", 1)
            length = int(length_text)
            if rest[length : length + 1] != b"\n":
                return None
            fields.append(rest[:length].decode("utf-8"))
            rest = rest[length + 1 :]
        leaf = {
            "sequence": int(seq_text),
            "originator_id": fields[0],
            "originator_version": int(version_text),
            "topic": fields[1],
            "state": rest,
        }
    except (ValueError, UnicodeDecodeError):
        return None
    # Only the canonical spelling counts (no "+1", "01", spaces), so one row has one leaf.
    if encode_leaf(**cast(dict[str, Any], leaf)) != data:
        return None
    return leaf


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


def _check_event(
    event: object, position: int, size: int, root: bytes, case_id: str | None
) -> list[str]:
    if not isinstance(event, dict) or not _is_int(event.get("sequence")):
        return [f"event #{position + 1} in the file: missing or non-integer sequence"]
    seq = event["sequence"]
    where = f"event sequence {seq}"
    index = event.get("leaf_index")
    if not (_is_int(index) and index >= 0):
        return [f"{where}: leaf_index {index!r} is not a non-negative integer"]
    data = _b64(event.get("leaf_b64"))
    if data is None:
        return [f"{where}: leaf_b64 is missing or not valid base64"]
    leaf = decode_leaf(data)
    if leaf is None:
        return [f"{where}: leaf_b64 is not a kosh-event-v1 leaf"]
    problems = []
    # The sequence is read from the authenticated bytes, so a relabelled one cannot pass.
    if leaf["sequence"] != seq:
        problems.append(f"{where}: the leaf holds sequence {leaf['sequence']}, not {seq}")
    if case_id is not None and _uuid(leaf["originator_id"]) != case_id:
        problems.append(
            f"{where}: the leaf belongs to {leaf['originator_id']}, not to case {case_id}"
        )
    raw_proof = event.get("inclusion_proof")
    parsed = [_hex_hash(p) for p in raw_proof] if isinstance(raw_proof, list) else [None]
    proof = [p for p in parsed if p is not None]
    if len(proof) != len(parsed):
        return [*problems, f"{where}: inclusion_proof must be a list of 64-hex-char hashes"]
    # The proof's shape depends on the index, so it also proves the event's position.
    if index >= size:
        problems.append(f"{where}: leaf {index} is not covered by the tree head (size {size})")
    elif not verify_inclusion(index, size, leaf_hash(data), proof, root):
        problems.append(
            f"{where}: leaf bytes are not included at leaf {index} "
            f"of the tree of size {size} (bytes, index or proof altered)"
        )
    return problems


def _uuid(value: object) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def _check_order(events: list[Any]) -> list[str]:
    """Store order: a later leaf always holds a larger sequence number."""
    placed = sorted(
        (e["leaf_index"], e["sequence"])
        for e in events
        if isinstance(e, dict) and _is_int(e.get("leaf_index")) and _is_int(e.get("sequence"))
    )
    return [
        f"event sequence {b[1]}: at leaf {b[0]} after sequence {a[1]} at leaf {a[0]}; "
        "the store order is broken"
        for a, b in zip(placed, placed[1:], strict=False)
        if b[1] <= a[1] and a[0] != b[0]
    ]


def check_export(doc: dict[str, Any], public_key_pem: bytes) -> list[str]:
    """Verify an exported case file offline; return human-readable problems ([] = valid)."""
    if not isinstance(doc, dict):
        return ["export is not a JSON object"]
    problems: list[str] = []
    if doc.get("format") != EXPORT_FORMAT:
        problems.append(f"format is {doc.get('format')!r}, expected {EXPORT_FORMAT!r}")
    case_id = _uuid(doc.get("case_id")) if isinstance(doc.get("case_id"), str) else None
    if case_id is None:
        problems.append("case_id is missing or not a UUID")
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
    indexes: set[int] = set()
    for position, event in enumerate(events):
        problems += _check_event(event, position, size, root, case_id)
        seq = event.get("sequence") if isinstance(event, dict) else None
        index = event.get("leaf_index") if isinstance(event, dict) else None
        if _is_int(seq) and seq in seen:
            problems.append(f"event sequence {seq}: appears more than once")
        elif _is_int(index) and index in indexes:
            problems.append(f"event sequence {seq}: leaf {index} appears more than once")
        if _is_int(seq):
            seen.add(seq)
        if _is_int(index):
            indexes.add(index)
    return problems + _check_order(events)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``proofs EXPORT.json PUBLIC_KEY.pem``; exit 0 when valid, 1 on problems, 2 on usage."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print(
            "usage: python -m projections.audit.proofs EXPORT.json PUBLIC_KEY.pem", file=sys.stderr
        )
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
    print(
        f"OK: {len(doc['events'])} events verified against tree head of size "
        f"{doc['tree_head']['tree_size']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
