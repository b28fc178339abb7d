"""A rebuild applies events through write-back caches a batch at a time; the registers
it writes must be the rows the projections write event by event, whatever the mix of
events and wherever the batches are cut."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from pathlib import Path
from typing import Any

import pytest

from domain.erasure import Erasure, subject_id_of
from domain.natural_growth import NaturalGrowthFigure
from domain.registration import DeregistrationReason, RegistrationCase
from domain.relocation import RelocationCase
from infra.sql import Database
from projections.monitoring import MonitoringProjection
from projections.projector import Delivered, Projector, applied_pairs
from projections.replay import dump, rebuild
from projections.residents import ResidentsProjection
from tests.unit.test_monitoring import citizen, meta

DISTRICTS = ("Medeu", "Almaly", "Auezov", "Turksib")


def history(seed: int) -> list[Any]:
    """Registrations of a few persons (so people move, re-register and leave), ended,
    extended, corrected and refused ones, a relocation whose members register, a
    natural-growth figure and an erasure, in one store order."""
    rng = random.Random(seed)
    people = [citizen(n, dt.date(1950 + 7 * n, 1 + n % 12, 3)) for n in range(6)]
    events: list[Any] = []
    cases: list[RegistrationCase] = []
    for n in range(40):
        day = f"2023-{1 + n % 12:02d}-0{1 + n % 9}"
        person = dict(rng.choice(people))
        temporary = rng.random() < 0.3
        case = RegistrationCase(
            person=person, address={"district": rng.choice(DISTRICTS), "line": f"Abay {n}"},
            housing={"type": "private", "useful_area_m2": 60.0,
                     "occupants_after_registration": 2},
            registration_kind="temporary" if temporary else "permanent",
            valid_until="2024-12-31" if temporary else None, meta=meta(day),
        )
        roll = rng.random()
        if roll < 0.15:
            case.refuse("no lease", meta(day))
        elif roll < 0.9:
            case.approve(meta(day))
            after = rng.random()
            if after < 0.2:
                case.deregister(rng.choice(list(DeregistrationReason)), dt.date(2023, 12, 20),
                                meta("2023-12-20"))
            elif after < 0.3 and temporary:
                case.extend(dt.date(2025, 6, 30), dt.date(2023, 12, 20), meta("2023-12-20"))
            elif after < 0.4:
                case.correct({"given_name": f"Corrected{n}"}, "typo", meta(day))
            elif after < 0.5:
                case.end_superseded(str(uuid.uuid4()), meta(day))
        cases.append(case)
        events.extend(case.collect_events())
        if n == 20:
            relocation = RelocationCase(
                category="kandas", applicant=dict(people[0]), family_members=[],
                territory="Medeu", period="2023", quota_id="q1", meta=meta(day))
            relocation.approve(meta(day))
            relocation.arrive({"district": "Medeu", "line": "Dostyk 1"},
                              {"type": "private"}, meta(day))
            relocation.record_registration("m0", str(cases[3].id), meta(day))
            relocation.record_registration("m1", str(cases[-1].id), meta(day))
            events.extend(relocation.collect_events())
        if n == 30:
            events.extend(NaturalGrowthFigure(period="2023", natural_growth=3,
                                              source="stat", meta=meta(day)).collect_events())
            events.extend(Erasure(subject_id=subject_id_of(iin=people[1]["iin"]),
                                  legal_basis="request", meta=meta(day)).collect_events())
    return events


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("batch", [1, 7, 5000])
def test_a_rebuild_writes_the_rows_the_projections_write_event_by_event(
    seed: int, batch: int
) -> None:
    projections = [ResidentsProjection(), MonitoringProjection()]
    delivered = [Delivered(seq, e) for seq, e in enumerate(history(seed), start=1)]
    live = Database(None, Path(":memory:"))
    projector = Projector(live, projections)
    for d in delivered:
        projector.apply_batch([d])
    rebuilt = Database(None, Path(":memory:"))
    rebuild(rebuilt, projections, delivered, batch=batch)
    for p in projections:
        assert dump(rebuilt, p) == dump(live, p), p.name
    assert applied_pairs(rebuilt) == applied_pairs(live)


@pytest.mark.parametrize("batch", [1, 7, 5000])
def test_a_rebuild_into_a_file_keeps_the_bookkeeping_and_indexes_the_live_projector_keeps(
    tmp_path: Path, batch: int
) -> None:
    """Into a file, the bookkeeping is written beside the rebuild and copied in at the
    end, and the registers' indexes are built after the load: the same rows and indexes
    as the live projector's, for sequence numbers with gaps too (as PostgreSQL leaves)."""
    projections = [ResidentsProjection(), MonitoringProjection()]
    seqs = [n + 3 * (n // 10) for n in range(1, len(history(1)) + 1)]  # a gap every 10
    delivered = [Delivered(seq, e) for seq, e in zip(seqs, history(1), strict=True)]
    live = Database(None, tmp_path / "live.sqlite")
    projector = Projector(live, projections)
    for d in delivered:
        projector.apply_batch([d])
    rebuilt = Database(None, tmp_path / "rebuilt.sqlite")
    result = rebuild(rebuilt, projections, delivered, batch=batch)
    assert result.applied == len(delivered)
    for p in projections:
        assert dump(rebuilt, p) == dump(live, p), p.name
    assert applied_pairs(rebuilt) == applied_pairs(live)
    status = "SELECT projection, applied_count, max_seq FROM projection_status ORDER BY 1"
    assert rebuilt.query(status) == live.query(status)
    indexes = ("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
               "ORDER BY 1")
    assert rebuilt.query(indexes) == live.query(indexes)
    assert sorted(f.name for f in tmp_path.iterdir() if "applied" in f.name) == []


def test_a_rebuild_that_fails_leaves_no_scratch_file(tmp_path: Path) -> None:
    class Refusing:
        name, ddl, handles = "refusing", (), None

        def apply(self, cur: Any, seq: int, event: Any) -> None:
            if seq == 9:
                raise RuntimeError("refused")

    delivered = [Delivered(seq, e) for seq, e in enumerate(history(2), start=1)]
    with pytest.raises(RuntimeError, match="refused"):
        rebuild(Database(None, tmp_path / "r.sqlite"), [Refusing()], delivered, batch=4)
    assert not (tmp_path / "r.sqlite.applied").exists()


def test_a_rebuilt_register_takes_what_the_rebuild_did_not_read_and_nothing_twice(
    tmp_path: Path,
) -> None:
    """The run of numbers a rebuild read from 1 is recorded as one floor a register: an
    event under it, redelivered, changes nothing; a number the rebuild skipped (a gap,
    as PostgreSQL leaves, committed later) and one past its end are applied, once."""
    projections = [ResidentsProjection(), MonitoringProjection()]
    events = history(2)
    gap = {11, 12}
    seqs = [n for n in range(1, len(events) + 3) if n not in gap]
    delivered = [Delivered(seq, e) for seq, e in zip(seqs, events, strict=False)]
    rebuilt = Database(None, tmp_path / "rebuilt.sqlite")
    rebuild(rebuilt, projections, delivered[:-3])
    floors = dict(rebuilt.query("SELECT projection, seq FROM projection_floor"))
    assert floors == {"residents": 10, "monitoring": 10}
    rows = rebuilt.query("SELECT COUNT(*) FROM projection_applied")[0][0]
    assert rows == 2 * (len(delivered) - 3 - 10), "rows only for the numbers past the gap"

    late = [Delivered(11, delivered[-3].event)]  # the gap's number, committed late
    later = [Delivered(999, delivered[-2].event)]  # past the rebuild's end
    projector = Projector(rebuilt, projections)
    redelivered = [delivered[0], delivered[9], delivered[12]]
    assert projector.apply_batch(redelivered) == 0
    assert projector.apply_batch([*redelivered, *late, *later]) == 2 * 2
    assert projector.apply_batch([*late, *later]) == 0
    pairs = applied_pairs(rebuilt)
    expected = sorted({d.seq for d in delivered[:-3]} | {11, 999})
    assert [s for name, s in pairs if name == "residents"] == expected
    status = dict((r[0], (r[1], r[2])) for r in rebuilt.query(
        "SELECT projection, applied_count, max_seq FROM projection_status"))
    assert status["residents"] == (len(expected), 999)


def test_a_rebuild_that_did_not_start_at_1_records_no_floor(tmp_path: Path) -> None:
    """Numbers below the first one read may still be committed: no floor covers them."""
    projections = [ResidentsProjection()]
    delivered = [Delivered(seq, e) for seq, e in enumerate(history(3), start=3)]
    rebuilt = Database(None, tmp_path / "rebuilt.sqlite")
    rebuild(rebuilt, projections, delivered)
    assert rebuilt.query("SELECT COUNT(*) FROM projection_floor")[0][0] == 0
    assert [s for _, s in applied_pairs(rebuilt)] == [d.seq for d in delivered]
