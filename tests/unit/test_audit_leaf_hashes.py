"""The fast leaf hashing that `kosh audit verify` runs hashes exactly the bytes the offline
checker defines (proofs.encode_leaf), rows edited by hand included; a scanned part of the
store survives the trip from the helper process and tells a trail that differs; the trail's
quick spelling of case ids is uuid's."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from projections.audit.leaf_hashes import LEAF_PREFIX, blocks, canonical, hash_page
from projections.audit.merkle import MerkleTree
from projections.audit.proofs import LEAF_MAGIC, encode_leaf, leaf_hash
from projections.audit.store_part import decode, decode_chunks, encode, encode_chunks, scan_part
from projections.audit.trail import case_key
from projections.audit.trail_match import trail_matches

STATE = '{"meta": {"actor": {"id": "registrar-7"}}, "name": "Айгерім"}'.encode()
ROWS: list[tuple[Any, ...]] = [
    ("28d827d251634e7387b16ffc634ca648", 1, "domain.registration:RegistrationSubmitted", STATE),
    ("28d827d251634e7387b16ffc634ca648", 2, "domain.registration:Approved", b""),
    ("Ωид-с-юникодом", 10**12, "a topic\nwith a newline:and colon", b"\x00\xff" * 700),
    ("3", -5, "", b"3:x\n"),
]
# What a hand edit can leave in a row: other SQLite types than the store writes.
EDITED: list[tuple[Any, ...]] = [
    ("edited-state-as-text", 3, "t", "not bytes"),
    ("edited-state-null", 4, "t", None),
    ("edited-version-text", "abc", "t", b"s"),
    ("edited-version-null", None, "t", b"s"),
    ("edited-version-real", 2.5, "t", b"s"),
    ("edited-version-infinite", 9e999, "t", b"s"),
    (b"\x01blob-id", 5, b"blob-topic", b"s"),
    ("edited-state-int", 6, "t", 42),
]


def store(rows: Sequence[tuple[Any, ...]]) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, "
        "topic TEXT, state BLOB)"
    )
    conn.executemany("INSERT INTO stored_events VALUES (?, ?, ?, ?)", rows)
    return conn


def reference(conn: sqlite3.Connection) -> tuple[list[int], list[bytes]]:
    """As verify hashed rows before: leaves.StoredRow, proofs.encode_leaf, proofs.leaf_hash."""
    rows = conn.execute(
        "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events "
        "ORDER BY rowid"
    ).fetchall()
    return [r[0] for r in rows], [leaf_hash(encode_leaf(*canonical(r))) for r in rows]


def select(conn: sqlite3.Connection) -> Any:
    return lambda sql, params: conn.execute(sql, params).fetchall()


def test_the_leaf_prefix_is_the_rfc6962_leaf_byte_and_the_leaf_magic() -> None:
    assert LEAF_PREFIX == b"\x00" + LEAF_MAGIC


@pytest.mark.parametrize("rows", [ROWS, ROWS + EDITED + ROWS], ids=["as stored", "hand-edited"])
def test_fast_leaf_hashes_are_those_of_proofs_encode_leaf(rows: list[tuple[Any, ...]]) -> None:
    conn = store(rows)
    seqs, hashes = hash_page(select(conn), "stored_events", "rowid", False, 0, None, 1000)
    assert (seqs, hashes) == reference(conn)
    # pages and bounds cut the same sequence
    first, _ = hash_page(select(conn), "stored_events", "rowid", False, 0, 5, 3)
    assert first == [1, 2, 3]


def trail_of(seqs: list[int], hashes: list[bytes]) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE audit_leaves (leaf_index BIGINT PRIMARY KEY, seq BIGINT, leaf_hash)")
    conn.executemany(
        "INSERT INTO audit_leaves VALUES (?, ?, ?)",
        list(zip(range(len(seqs)), seqs, hashes, strict=True)),
    )
    return conn


def test_a_part_scanned_anywhere_folds_into_the_tree_and_survives_the_pipe() -> None:
    conn = store(ROWS * 10 + EDITED)
    seqs, hashes = reference(conn)
    trail = trail_of(seqs, hashes)
    older = scan_part(select(conn), "stored_events", "rowid", False, 0, 16, 0, select(trail), 47)
    newer = scan_part(
        select(conn), "stored_events", "rowid", False, 16, None, 16, select(trail), 47
    )
    assert older.matched and newer.matched
    assert (older.seqs + newer.seqs).tolist() == seqs
    tree = MerkleTree()
    for part in (decode(encode(older)), decode(encode(newer))):
        for levels in part.blocks:
            tree.extend_levels(levels)
    reference_tree = MerkleTree()
    reference_tree.extend_hashes(hashes)
    assert tree.root() == reference_tree.root()
    assert [tree.root(n) for n in range(1, 48)] == [reference_tree.root(n) for n in range(1, 48)]


def test_parts_written_one_by_one_as_scanned_read_back_as_all_of_them() -> None:
    """The helper writes each part when it has scanned it; the parent reads them at once."""
    conn = store(ROWS * 10)
    seqs, hashes = reference(conn)
    trail = trail_of(seqs, hashes)
    parts = {
        chunk: scan_part(
            select(conn), "stored_events", "rowid", False, after, upto, after, select(trail), 40
        )
        for chunk, (after, upto) in {2: (16, None), 0: (0, 8), 1: (8, 16)}.items()
    }
    written = b"".join(encode_chunks({chunk: part}) for chunk, part in parts.items())
    read = decode_chunks(written)
    assert sorted(read) == [0, 1, 2]
    assert [read[c].seqs.tolist() for c in range(3)] == [parts[c].seqs.tolist() for c in range(3)]
    assert b"".join(read[c].leaves for c in range(3)) == b"".join(hashes)
    with pytest.raises(ValueError):
        decode_chunks(written[:-1])


@pytest.mark.parametrize("in_sql", [True, False], ids=["counted by SQLite", "read back"])
def test_a_trail_that_differs_anywhere_does_not_match(in_sql: bool) -> None:
    conn = store(ROWS * 3)
    seqs, hashes = reference(conn)
    leaves = b"".join(hashes)

    def matches(trail: sqlite3.Connection, start: int, recorded: int, s: list[int], h: bytes):
        return trail_matches(select(trail), start, recorded, s, h, sqlite=in_sql)

    assert matches(trail_of(seqs, hashes), 0, 12, seqs, leaves)
    assert matches(trail_of(seqs, hashes), 0, 5, seqs, leaves)  # counted 5
    for name, tampering in TRAIL_TAMPERING.items():
        if name == "hash as text" and not in_sql:
            continue  # sqlite3 cannot read it back (it is no UTF-8); verify stops on it
        altered = trail_of(seqs, hashes)
        altered.execute(tampering)
        assert not matches(altered, 0, 12, seqs, leaves), tampering
    # a part placed elsewhere is held against the leaves there
    assert not matches(trail_of(seqs, hashes), 1, 12, seqs[:4], leaves[:128])
    assert matches(trail_of(seqs, hashes), 4, 12, seqs[4:], leaves[128:])


TRAIL_TAMPERING = {
    "hash changed": "UPDATE audit_leaves SET leaf_hash = zeroblob(32) WHERE leaf_index = 7",
    "hash as text": "UPDATE audit_leaves SET leaf_hash = CAST(leaf_hash AS TEXT) "
    "WHERE leaf_index = 3",
    "seq changed": "UPDATE audit_leaves SET seq = 99 WHERE leaf_index = 2",
    "leaf removed": "DELETE FROM audit_leaves WHERE leaf_index = 11",
    "leaf added between two": "INSERT INTO audit_leaves SELECT 5.5, seq, leaf_hash "
    "FROM audit_leaves WHERE leaf_index = 5",
    "leaf moved between two": "UPDATE audit_leaves SET leaf_index = 5.5 WHERE leaf_index = 6",
    "index as text": "UPDATE audit_leaves SET leaf_index = 'x' WHERE leaf_index = 0",
}


def test_a_store_numbered_with_gaps_is_held_against_the_trail_row_by_row() -> None:
    conn = store(ROWS * 3)
    conn.execute("DELETE FROM stored_events WHERE rowid = 4")
    seqs, hashes = reference(conn)
    leaves = b"".join(hashes)
    assert trail_matches(select(trail_of(seqs, hashes)), 0, 11, seqs, leaves)
    renumbered = trail_of(seqs, hashes)
    renumbered.execute("UPDATE audit_leaves SET seq = 4 WHERE leaf_index = 3")
    assert not trail_matches(select(renumbered), 0, 11, seqs, leaves)


def test_a_cut_short_answer_from_the_helper_is_refused() -> None:
    conn = store(ROWS * 3)
    part = scan_part(
        select(conn), "stored_events", "rowid", False, 0, None, 0, select(trail_of([], [])), 0
    )
    data = encode(part)
    for cut in (0, 10, len(data) // 2, len(data) - 1):
        with pytest.raises(ValueError):
            decode(data[:cut])
    assert decode(data).blocks == blocks(part_hashes(part.leaves), 0)


def part_hashes(leaves: bytes) -> list[bytes]:
    return [leaves[i : i + 32] for i in range(0, len(leaves), 32)]


@pytest.mark.parametrize(
    "spelling",
    [
        "28d827d251634e7387b16ffc634ca648",
        "28D827D251634E7387B16FFC634CA648",
        "28d827d2-5163-4e73-87b1-6ffc634ca648",
        "{28d827d2-5163-4e73-87b1-6ffc634ca648}",
        "not-a-uuid",
        "28d827d251634e7387b16ffc634ca64g",
    ],
)
def test_case_ids_in_the_trail_are_spelled_as_uuid_spells_them(spelling: str) -> None:
    try:
        expected = str(uuid.UUID(spelling))
    except ValueError:
        expected = spelling
    assert case_key(spelling) == expected
