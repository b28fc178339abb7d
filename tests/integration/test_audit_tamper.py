"""`kosh audit verify` finds a changed byte, a deleted row and two swapped rows of a real
SQLite and a real PostgreSQL store, and names the first sequence number concerned."""

from __future__ import annotations

import datetime as dt
import fcntl
import subprocess
import sys
import termios
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from api.bootstrap import bootstrap
from domain.commands import ApproveRegistration, SubmitRegistration
from domain.context import Actor, CommandContext
from infra.settings import Settings
from infra.sql import Database
from projections.audit import scan, store_part, trail_match
from projections.audit.heads import TreeHeads, signing_key
from projections.audit.leaves import events_table, read_rows, select, store_db
from projections.audit.store_part import StorePart
from projections.audit.trail import AuditTrail, audit_database
from projections.audit.verify import verify_store
from tests.support.builders import registration_body
from tests.support.system import REPO, settings_env


@dataclass
class Audited:
    settings: Settings
    store: Database
    seqs: list[int]  # every stored event, in store order
    trail: AuditTrail
    first_head: int  # size of the earlier of the two signed heads


def ctx(n: int) -> CommandContext:
    return CommandContext(
        Actor("registrar-7", "registrar", "Almaty akimat"),
        dt.date(2024, 3, 1),
        f"corr-{n}",
        f"cause-{n}",
    )


def burn_sequence_number(store: Database) -> None:
    """What a rolled-back write does on PostgreSQL: a sequence number no row will ever have."""
    table, seq = events_table(store)
    with store.transaction() as cur:
        cur.execute(f"SELECT nextval(pg_get_serial_sequence('{table}', '{seq}'))")


@pytest.fixture
def audited(store_settings: Settings) -> Audited:
    """Three registrations submitted and approved (on PostgreSQL with a hole in the sequence
    numbers), appended to the trail, with a signed head over the first one's events and one
    over all of them."""
    app = bootstrap(store_settings).app
    store = store_db(store_settings)
    trail = AuditTrail(store_settings)
    heads = TreeHeads(trail.db, signing_key(store_settings))
    for n in range(3):
        case = app.submit_registration(SubmitRegistration(**registration_body(n)), ctx(n))
        if n == 0 and store.is_postgres:
            burn_sequence_number(store)
        app.approve_registration(case.case_id, ApproveRegistration(), ctx(n))
        if n == 0:
            trail.catch_up()
            heads.issue(trail)
    first_head = trail.size
    trail.catch_up()
    heads.issue(trail)
    seqs = [r.seq for r in read_rows(store, 0)]
    assert len(seqs) == trail.size > first_head + 2
    return Audited(store_settings, store, seqs, trail, first_head)


def state_of(store: Database, seq: int) -> bytes:
    return read_rows(store, seq - 1, 1, upto=seq)[0].state


def execute(store: Database, sql: str, *params: object) -> None:
    table, seq = events_table(store)
    with store.transaction() as cur:
        cur.execute(sql.format(table=table, seq=seq), params)


def flip_a_byte(store: Database, seq: int) -> None:
    state = bytearray(state_of(store, seq))
    state[len(state) // 2] ^= 0x01
    execute(store, "UPDATE {table} SET state = ? WHERE {seq} = ?", bytes(state), seq)


def swap_rows(store: Database, a: int, b: int) -> None:
    """Each event takes the other's place in the sequence; every byte is kept."""
    row_a, row_b = (read_rows(store, s - 1, 1, upto=s)[0] for s in (a, b))
    execute(store, "DELETE FROM {table} WHERE {seq} IN (?, ?)", a, b)
    for seq, row in ((a, row_b), (b, row_a)):
        oid = row.originator_id
        execute(
            store,
            "INSERT INTO {table} ({seq}, originator_id, originator_version, topic, "
            "state) VALUES (?, ?, ?, ?, ?)",
            seq,
            oid,
            row.originator_version,
            row.topic,
            row.state,
        )


def test_untouched_store_matches_the_trail_and_every_signed_head(audited: Audited) -> None:
    report = verify_store(audited.settings)
    assert (report.ok, report.events_checked, report.heads_checked, report.first_bad_seq) == (
        True,
        len(audited.seqs),
        2,
        None,
    )
    if audited.store.is_postgres:  # the hole in the numbers is not a leaf
        assert audited.seqs[1] == audited.seqs[0] + 2
        assert audited.trail.leaf_index_of(audited.seqs[1]) == 1


def test_a_changed_byte_is_found_at_its_sequence_number(audited: Audited) -> None:
    victim = audited.seqs[3]
    flip_a_byte(audited.store, victim)
    report = verify_store(audited.settings)
    assert not report.ok
    assert report.first_bad_seq == victim
    assert "differ" in report.problem


def test_cli_exits_1_naming_a_deleted_row_and_a_restored_row_verifies(audited: Audited) -> None:
    victim = audited.seqs[2]
    row = read_rows(audited.store, victim - 1, 1, upto=victim)[0]
    execute(audited.store, "DELETE FROM {table} WHERE {seq} = ?", victim)
    tampered = subprocess.run(
        [sys.executable, "-m", "api.cli", "audit", "verify"],
        cwd=REPO,
        env=settings_env(audited.settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tampered.returncode == 1, tampered.stderr
    assert f"TAMPERED at sequence {victim}:" in tampered.stdout
    assert "missing from the store" in tampered.stdout

    execute(
        audited.store,
        "INSERT INTO {table} ({seq}, originator_id, originator_version, "
        "topic, state) VALUES (?, ?, ?, ?, ?)",
        victim,
        row.originator_id,
        row.originator_version,
        row.topic,
        row.state,
    )
    assert verify_store(audited.settings).ok


def test_two_swapped_rows_are_found_at_the_first_of_them(audited: Audited) -> None:
    first, second = audited.seqs[1], audited.seqs[4]
    swap_rows(audited.store, first, second)
    assert state_of(audited.store, first) != state_of(audited.store, second)
    report = verify_store(audited.settings)
    assert not report.ok
    assert report.first_bad_seq == first


def test_a_trail_rewritten_to_match_a_forged_store_fails_the_signed_head(
    audited: Audited,
) -> None:
    victim = audited.seqs[audited.first_head + 1]
    flip_a_byte(audited.store, victim)
    forged = read_rows(audited.store, victim - 1, 1, upto=victim)[0].leaf_hash()
    with audited.trail.db.transaction() as cur:
        cur.execute("UPDATE audit_leaves SET leaf_hash = ? WHERE seq = ?", (forged, victim))
    report = verify_store(audited.settings)
    assert not report.ok
    # The earlier head still holds, the later one does not: the forgery lies between them.
    after = audited.seqs[audited.first_head]
    assert report.first_bad_seq == after
    assert f"between {after} and {audited.seqs[-1]}" in report.problem


def test_an_altered_trail_over_an_intact_store_is_told_apart(audited: Audited) -> None:
    victim = audited.seqs[1]
    with audited.trail.db.transaction() as cur:
        cur.execute("UPDATE audit_leaves SET leaf_hash = ? WHERE seq = ?", (bytes(32), victim))
    report = verify_store(audited.settings)
    assert not report.ok and report.first_bad_seq == victim
    assert "trail's record of this leaf was altered" in report.problem


def test_a_trail_made_before_its_covering_index_gets_it_and_still_tells_tampering(
    audited: Audited,
) -> None:
    if audited.store.is_postgres:
        pytest.skip("the covering index is SQLite's (PostgreSQL reads the leaves back)")
    with audited.trail.db.transaction() as cur:
        cur.execute("DROP INDEX audit_leaves_covering")
    assert verify_store(audited.settings).ok
    # A connection of its own: one that dropped the index plans an EXPLAIN without it.
    plan = select(
        audit_database(audited.settings),
        "EXPLAIN QUERY PLAN " + trail_match._COUNT_MATCHING,
        (0, 9, 1, b""),
    )
    assert "COVERING INDEX audit_leaves_covering" in str(plan)
    zero_trail_leaf(audited, audited.seqs[2])
    report = verify_store(audited.settings)
    assert not report.ok and report.first_bad_seq == audited.seqs[2]


def delete_row(store: Database, seq: int) -> None:
    execute(store, "DELETE FROM {table} WHERE {seq} = ?", seq)


def zero_trail_leaf(audited: Audited, seq: int) -> None:
    with audited.trail.db.transaction() as cur:
        cur.execute("UPDATE audit_leaves SET leaf_hash = ? WHERE seq = ?", (bytes(32), seq))


# With the store cut into chunks of two sequence numbers: 1-2, 3-4, … 11-12 and on; or of four,
# the last two of them cut finer: 1-4, then 5-6, 7-8, 9-10, 11-12 and on.
TAMPERING: dict[str, Callable[[Audited], None]] = {
    "untouched": lambda a: None,
    "byte changed in the first chunk": lambda a: flip_a_byte(a.store, a.seqs[0]),
    "byte changed in the last chunk": lambda a: flip_a_byte(a.store, a.seqs[-2]),
    "row deleted from the first chunk": lambda a: delete_row(a.store, a.seqs[1]),
    "last row deleted": lambda a: delete_row(a.store, a.seqs[-1]),
    "rows swapped across chunks": lambda a: swap_rows(a.store, a.seqs[1], a.seqs[4]),
    "trail leaf altered in a later chunk": lambda a: zero_trail_leaf(a, a.seqs[3]),
}
# (CHUNK, FINE_SHIFT, FINE_MIN) -> chunks of the 12 events
PLANS: dict[str, tuple[tuple[int, int, int], int]] = {
    "chunks of two": ((2, 3, 512), 6),
    "a chunk of four, then finer ones": ((4, 1, 1), 5),
}
_SLOW = "time.sleep(0.5)"  # while this process takes the other chunks
# (helper process, chunks it takes before this process takes any (None: all), whether it
# answers for the first chunk only (else for all it took, or none when it failed))
HELPERS: dict[str, tuple[str, int | None, bool]] = {
    "the helper takes every chunk": (scan._HELPER, None, False),
    "the helper takes the first, this process the others": (
        "import sys, time; sys.path.insert(0, sys.argv[1]); "
        "from projections.audit import store_part as p; scan = p.scan_part; "
        f"p.scan_part = lambda *a: ({_SLOW}, scan(*a))[1]; p.main(sys.argv[2:])",
        1,
        True,
    ),
    "the helper dies holding the first chunk": (
        "import os, sys; os.read(int(sys.argv[-1]), 4); raise SystemExit(3)",
        1,
        False,
    ),
    # Its first part is in the answer file by then; a helper that fails answers for nothing.
    "the helper dies after answering for the first chunk": (
        "import os, sys; sys.path.insert(0, sys.argv[1]); "
        "from projections.audit import store_part as p; claim, taken = p.claim, []; "
        "p.claim = lambda q: claim(q) if not taken.append(1) and len(taken) == 1 "
        "else (sys.stdout.buffer.flush(), os._exit(3)); p.main(sys.argv[2:])",
        1,
        False,
    ),
    "the helper fails at once": ("raise SystemExit(3)", 0, False),
}


def queued(queue: int) -> int:
    """Bytes (chunk numbers) still in the queue."""
    count = array("i", [0])
    fcntl.ioctl(queue, termios.FIONREAD, count)
    return count[0]


@pytest.mark.parametrize("plan", PLANS)
@pytest.mark.parametrize("tampering", TAMPERING)
def test_a_store_scanned_with_a_helper_process_gets_the_same_report(
    audited: Audited, tampering: str, plan: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if audited.store.is_postgres:
        pytest.skip("the helper process scans SQLite stores only")
    TAMPERING[tampering](audited)
    alone = verify_store(audited.settings)
    assert alone.ok == (tampering == "untouched")
    (chunk, fine_shift, fine_min), chunks = PLANS[plan]
    monkeypatch.setattr(scan, "HELPER_MIN_ROWS", 1)
    monkeypatch.setattr(scan, "CHUNK", chunk)
    monkeypatch.setattr(scan, "FINE_SHIFT", fine_shift)
    monkeypatch.setattr(scan, "FINE_MIN", fine_min)
    assert scan._chunks(audited.store, audit_database(audited.settings))[-1] == chunks
    answers: list[dict[int, StorePart]] = []

    def decode_chunks(data: bytes) -> dict[int, StorePart]:
        answers.append(store_part.decode_chunks(data))
        return answers[-1]

    monkeypatch.setattr(scan, "decode_chunks", decode_chunks)
    for name, (helper, taken_first, first_only) in HELPERS.items():
        monkeypatch.setattr(scan, "_HELPER", helper)
        waited: list[int] = []
        taken = chunks if taken_first is None else taken_first

        def claim(queue: int, taken: int = taken, waited: list[int] = waited) -> int | None:
            """This process's first claim waits until the helper has taken its chunks."""
            deadline = time.monotonic() + 30
            while not waited and queued(queue) > 4 * (chunks - taken):
                assert time.monotonic() < deadline, "the helper took no chunk"
                time.sleep(0.005)
            waited.append(1)
            return store_part.claim(queue)

        monkeypatch.setattr(scan, "claim", claim)
        answers.clear()
        assert verify_store(audited.settings) == alone, name
        answered = {0} if first_only else set(range(chunks)) if taken_first is None else set()
        assert set().union(*answers) == answered, name
