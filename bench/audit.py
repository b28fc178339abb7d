"""The audit trail: building it over the store and `audit verify`, against SHA-256 of the
same leaf bytes in a plain loop (the cost of hashing alone)."""

from __future__ import annotations

import hashlib
import os
import time

from bench import profiling
from bench.env import BenchEnv
from bench.report import Results
from infra.settings import Settings
from projections.audit.leaves import iter_rows, store_db

TARGET_VERIFY = 300_000


def hash_loop(settings: Settings) -> tuple[int, float]:
    leaves = [row.leaf() for row in iter_rows(store_db(settings))]
    started = time.perf_counter()
    for leaf in leaves:
        hashlib.sha256(leaf).digest()
    return len(leaves), time.perf_counter() - started


def build(settings: Settings) -> tuple[int, float]:
    from projections.audit.heads import TreeHeads, signing_key
    from projections.audit.trail import AuditTrail

    started = time.perf_counter()
    trail = AuditTrail(settings)
    appended = trail.catch_up()
    seconds = time.perf_counter() - started
    # As the projections role does every KOSH_TREE_HEAD_INTERVAL_S, so that verify holds the
    # store against a signed head too, not only against the trail's leaves.
    TreeHeads(trail.db, signing_key(settings)).issue(trail)
    return appended, seconds


def verify(settings: Settings, results: Results) -> tuple[int, float]:
    # Imported before the clock starts, as build() does: a module's import (6 ms here) is paid
    # once per process, like the interpreter's start, and is no part of checking the events.
    try:
        from projections.audit.verify import verify_store
    except ImportError:
        from projections.audit.merkle import MerkleTree

        started = time.perf_counter()
        results.notes.append(
            "audit verify: verify_store is missing; timed MerkleTree over "
            "the store's leaves instead"
        )
        tree = MerkleTree(row.leaf() for row in iter_rows(store_db(settings)))
        tree.root()
        return tree.size, time.perf_counter() - started
    started = time.perf_counter()
    cpu = os.times()
    report = verify_store(settings)
    seconds = time.perf_counter() - started
    after = os.times()
    if not report.ok:
        raise RuntimeError(f"audit verify failed on an untouched store: {report.problem}")
    own = after.user + after.system - cpu.user - cpu.system
    helper = after.children_user + after.children_system - cpu.children_user - cpu.children_system
    results.notes.append(
        f"audit verify: {report.store_events} events and {report.heads_checked} signed "
        f"head(s) in {seconds * 1000:.0f} ms; CPU "
        f"{own * 1000:.0f} ms in this process and {helper * 1000:.0f} ms in its helper "
        "process (SQLite: it takes chunks of the store from the same queue on the other core)"
    )
    return report.store_events, seconds


def run(env: BenchEnv, results: Results, settings: Settings) -> None:
    """Over the store the bus section filled."""
    n, s = hash_loop(settings)
    results.add(
        "hashlib_events_per_s",
        n / s,
        "events/s",
        "hashlib SHA-256 of the same leaf bytes, plain loop",
    )
    n, s = build(settings)
    results.add(
        "audit_build_events_per_s",
        n / s,
        "events/s",
        "audit trail build (leaves persisted)",
        baseline="hashlib_events_per_s",
    )
    n, s = verify(settings, results)
    rate = results.add(
        "audit_verify_events_per_s",
        n / s,
        "events/s",
        "audit verify (store recomputed against trail and heads)",
        baseline="hashlib_events_per_s",
    )
    met = rate >= TARGET_VERIFY
    results.target(
        f"audit verify ≥ {TARGET_VERIFY:,} events/s",
        met,
        f"{rate:,.0f} events/s",
        why=""
        if met
        else f"SHA-256 of the leaves alone runs at {results.value('hashlib_events_per_s'):,.0f} "
        "events/s on one core here; verify also reads each row through sqlite3 and folds a "
        "Merkle node per event, shared out between two processes, so it needs both cores free "
        "(CPU time in the notes; profile of this process below)",
        profile_job=None
        if met or env.quick
        else lambda: profiling.profile_probe(
            env.root, "verify", env=profiling.settings_env(settings)
        ),
    )
