"""What must hold after any fault, read from the store and the registers themselves:
nothing accepted is missing, nothing is stored twice, every register holds every event
once and equals a rebuild from the store, no quota was ever over its limit, the audit
trail verifies."""

from __future__ import annotations

import importlib.util
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from api.bootstrap import all_projections, bootstrap, registers_database, store_database
from infra.settings import Settings
from infra.sql import Database
from projections.projector import applied_pairs
from projections.replay import StoreReader, rebuild, table_names
from tests.support.load import Sent

PROCESS_ACTOR = "relocation-process"  # consumers/relocation_process.py acts on its own
AUDIT_MODULE = "projections.audit.verify"


@dataclass(frozen=True)
class Stored:
    seq: int
    topic: str  # e.g. domain.quota:Quota.PlacesReserved
    originator_id: str
    state: dict[str, Any]

    @property
    def meta(self) -> dict[str, Any]:
        return self.state.get("meta") or {}

    @property
    def kind(self) -> str:
        return self.topic.rsplit(":", 1)[-1]


class Views:
    """The test's own reading connections to the store and the registers (kept open: an
    application's connection pool closes with it)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.kosh = bootstrap(settings)
        self.store_db = store_database(settings)
        self.registers_db = registers_database(settings)

    def stored_events(self) -> list[Stored]:
        """The whole notification log, undecoded but for its plain JSON (the metadata and
        the quota figures are never sealed)."""
        reader = StoreReader(self.kosh.app.recorder, None, page=5000)
        return [
            Stored(n.id, n.topic, str(n.originator_id), orjson.loads(n.state))
            for n in reader.notifications()
        ]

    def store_count(self) -> int:
        table = self.kosh.app.recorder.events_table_name  # differs by backend
        return int(self.store_db.query(f"SELECT COUNT(*) FROM {table}")[0][0])  # noqa: S608

    def applied_counts(self) -> dict[str, int]:
        counts = Counter(name for name, _ in applied_pairs(self.registers_db))
        return {p.name: counts.get(p.name, 0) for p in all_projections()}


def unsettled_arrivals(events: Sequence[Stored]) -> int:
    """Persons of arrived families the process manager has not yet registered (or
    recorded as not registrable)."""
    persons: dict[str, int] = {}
    settled: dict[str, set[str]] = defaultdict(set)
    for e in events:
        if e.kind == "RelocationCase.Arrived":
            persons[e.originator_id] = int(e.state["persons"])
        elif e.kind in ("RelocationCase.MemberRegistered", "RelocationCase.MemberNotRegistered"):
            settled[e.originator_id].add(str(e.state.get("person")))
    return sum(max(n - len(settled[c]), 0) for c, n in persons.items())


def check_commands(ledger: Sequence[Sent], events: Sequence[Stored], seeded: int = 0) -> list[str]:
    """Each accepted command has exactly its reported events; nothing refused or rejected
    left an event; every event after the system's own seed (up to seq `seeded`, e.g. the
    legal acts) belongs to a command the load sent."""
    problems: list[str] = []
    by_correlation: dict[str, list[Stored]] = defaultdict(list)
    for e in events:
        if e.seq <= seeded:
            continue
        by_correlation[str(e.meta.get("correlation_id"))].append(e)
    sent_by_correlation = {s.correlation_id: s for s in ledger}
    for s in ledger:
        own = sorted(
            e.seq
            for e in by_correlation.get(s.correlation_id, ())
            if (e.meta.get("actor") or {}).get("id") != PROCESS_ACTOR
        )
        if s.result == "accepted" and own != sorted(s.sequence_numbers):
            problems.append(
                f"{s.channel} {s.command_type} #{s.n} was answered with events "
                f"{sorted(s.sequence_numbers)} but the store holds {own} for it"
            )
        if s.result in ("refused", "rejected") and own:
            problems.append(
                f"{s.channel} {s.command_type} #{s.n} was {s.result} ({s.code}) "
                f"but left events {own}"
            )
    for correlation, group in by_correlation.items():
        s = sent_by_correlation.get(correlation)
        if s is None:
            problems.append(
                f"events {[e.seq for e in group][:5]} carry correlation id "
                f"{correlation!r} that no command of the load had"
            )
        elif s.result not in ("accepted", "unknown"):
            continue  # reported above
    # A command executed twice would have stored its events twice under new versions;
    # the per-command equality above catches it, this names it plainly.
    for s in ledger:
        if s.result == "accepted" and len(set(s.sequence_numbers)) != len(s.sequence_numbers):
            problems.append(f"{s.command_type} #{s.n} reports a sequence number twice")
    return problems


def check_races(ledger: Sequence[Sent]) -> list[str]:
    problems = []
    groups: dict[str, list[Sent]] = defaultdict(list)
    for s in ledger:
        if s.race:
            groups[s.race].append(s)
    for race, racers in groups.items():
        won = [s for s in racers if s.result == "accepted"]
        if len(won) > 1:
            problems.append(
                f"{race}: {len(won)} of the racing {racers[0].command_type} commands were accepted"
            )
        if (
            not won
            and racers[0].command_type == "approve_registration"
            and all(s.result != "unknown" for s in racers)
        ):
            problems.append(
                f"{race}: no racing approve_registration was accepted: "
                f"{[(s.status, s.code) for s in racers]}"
            )
    return problems


def check_quotas(events: Sequence[Stored]) -> tuple[list[str], int]:
    """Replays every quota's history in store order: reserved ≤ limit after every event.
    Returns the problems and the number of quota events checked."""
    problems = []
    limit: dict[str, int] = {}
    held: dict[str, dict[str, int]] = defaultdict(dict)
    checked = 0
    for e in events:
        if not e.topic.startswith("domain.quota:Quota."):
            continue
        checked += 1
        q, kind = e.originator_id, e.kind
        if kind == "Quota.Established":
            limit[q] = int(e.state["limit"])
        elif kind == "Quota.Adjusted":
            limit[q] = int(e.state["new_limit"])
        elif kind == "Quota.PlacesReserved":
            if e.state["case_id"] in held[q]:
                problems.append(f"seq {e.seq}: case {e.state['case_id']} reserved twice")
            held[q][e.state["case_id"]] = int(e.state["count"])
        elif kind == "Quota.PlacesReleased":
            if held[q].pop(e.state["case_id"], None) is None:
                problems.append(
                    f"seq {e.seq}: released places case {e.state['case_id']} did not hold"
                )
        reserved = sum(held[q].values())
        if reserved > limit.get(q, 0):
            problems.append(
                f"seq {e.seq}: quota {q} has {reserved} places reserved over "
                f"its limit {limit.get(q)}"
            )
    return problems, checked


def check_process_manager(events: Sequence[Stored]) -> list[str]:
    """Each arrived person registered once, however often the arrival was redelivered."""
    problems = []
    submitted = Counter(
        str(e.meta.get("causation_id"))
        for e in events
        if e.kind == "RegistrationCase.Submitted"
        and (e.meta.get("actor") or {}).get("id") == PROCESS_ACTOR
    )
    problems += [
        f"the process manager submitted registration {c} {n} times"
        for c, n in submitted.items()
        if n > 1
    ]
    settled = Counter(
        (e.originator_id, e.state.get("person"))
        for e in events
        if e.kind in ("RelocationCase.MemberRegistered", "RelocationCase.MemberNotRegistered")
    )
    problems += [
        f"relocation case {c} settled person {p} {n} times"
        for (c, p), n in settled.items()
        if n > 1
    ]
    if (left := unsettled_arrivals(events)) > 0:
        problems.append(f"{left} arrived person(s) were never registered")
    return problems


def _normalised(value: Any) -> Any:
    """PostgreSQL and SQLite return the same facts in different Python types."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def _contents(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    out = {
        t: sorted(
            (tuple(_normalised(v) for v in r) for r in db.query(f"SELECT * FROM {t}")), key=repr
        )  # noqa: S608
        for p in all_projections()
        for t in table_names(p)
    }
    out["projection_applied"] = applied_pairs(db)
    return out


def check_registers(views: Views, events: Sequence[Stored]) -> list[str]:
    """Every stored event applied once by every register, and the live registers equal a
    full rebuild from the store (projections/replay.py)."""
    problems = []
    live = views.registers_db
    seqs = sorted(e.seq for e in events)
    pairs = applied_pairs(live)
    for p in all_projections():
        applied = [seq for name, seq in pairs if name == p.name]
        if applied != seqs:
            missing, extra = sorted(set(seqs) - set(applied)), sorted(set(applied) - set(seqs))
            problems.append(
                f"register {p.name}: {len(missing)} stored events not applied "
                f"{missing[:5]}, {len(extra)} applied that are not stored "
                f"{extra[:5]}"
            )
    parked = live.query("SELECT projection, seq, reason FROM projection_parked")
    problems += [f"register {r[0]} parked event {r[1]} ({r[2]})" for r in parked]
    kosh = views.kosh
    rebuilt = Database(None, Path(tempfile.mkdtemp(prefix="kosh-rebuild-")) / "r.sqlite")
    rebuild(rebuilt, all_projections(), StoreReader(kosh.app.recorder, kosh.app.mapper).events())
    a, b = _contents(live), _contents(rebuilt)
    for table in a:
        only_live, only_rebuilt = set(a[table]) - set(b[table]), set(b[table]) - set(a[table])
        if only_live or only_rebuilt or len(a[table]) != len(b[table]):
            problems.append(
                f"{table}: {len(only_live)} rows only in the live register, "
                f"{len(only_rebuilt)} only in the rebuild"
            )
    return problems


def audit_verify(
    settings: Settings, tracked: int | None = None, timeout: float = 60
) -> tuple[list[str], str]:
    """`kosh audit verify` over the store; skipped (with the reason) while the module that
    does it does not exist yet. With `tracked`, first waits until the trail's writer has
    appended that many events, so every one of them is checked."""
    if importlib.util.find_spec(AUDIT_MODULE) is None:
        return [], f"skipped: {AUDIT_MODULE} (verify_store) does not exist yet"
    from projections.audit.verify import verify_store

    deadline = time.monotonic() + timeout
    report = verify_store(settings)
    while (
        report.ok
        and tracked is not None
        and report.events_checked < tracked
        and time.monotonic() < deadline
    ):
        time.sleep(0.5)
        report = verify_store(settings)
    if not report.ok:
        return [f"audit verify failed at seq {report.first_bad_seq}: {report.problem}"], "FAILED"
    if tracked is not None and report.events_checked < tracked:
        return [f"the audit trail holds {report.events_checked} of {tracked} events"], "behind"
    return [], f"ok, {report.events_checked} of {report.store_events} events in the trail"
