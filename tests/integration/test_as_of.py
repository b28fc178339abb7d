"""Registers as of a past date equal the registers built from the events up to it only."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.bootstrap import Kosh, all_projections, bootstrap
from api.http import create_app
from domain.commands import ApproveRegistration, RefuseRegistration, SubmitRegistration
from domain.context import Actor, CommandContext
from domain.natural_growth import RecordNaturalGrowth
from infra.settings import Settings
from infra.sql import Database
from projections.as_of import AsOfRegisters, Cutoff
from projections.projector import Delivered, Projector
from projections.replay import StoreReader, table_names
from tests.support.auth import auth_headers
from tests.support.builders import registration_body

JAN, MAR, APR = dt.date(2023, 1, 15), dt.date(2023, 3, 15), dt.date(2023, 4, 15)


def ctx(day: dt.date, correlation: str = "as-of-test") -> CommandContext:
    return CommandContext(Actor("registrar-1", "registrar", "Almaty akimat"), day,
                          correlation, correlation)


@pytest.fixture
def kosh(store_settings: Settings) -> Iterator[Kosh]:
    yield bootstrap(store_settings)


def register(kosh: Kosh, n: int, submitted: dt.date, decided: dt.date | None,
             refuse: bool = False) -> None:
    outcome = kosh.app.submit_registration(SubmitRegistration(**registration_body(n)),
                                           ctx(submitted, f"corr-{n}"))
    if decided is None:
        return
    if refuse:
        kosh.app.refuse_registration(outcome.case_id, RefuseRegistration(reason="no lease"),
                                     ctx(decided))
    else:
        kosh.app.approve_registration(outcome.case_id, ApproveRegistration(), ctx(decided))


@pytest.fixture
def history(kosh: Kosh) -> dt.datetime:
    """A city's history; returns a recorded time that splits it in two."""
    register(kosh, 1, JAN, JAN)
    register(kosh, 2, JAN, APR)  # approved only in April
    register(kosh, 3, MAR, MAR, refuse=True)
    register(kosh, 9, JAN, MAR)
    kosh.app.record_natural_growth(
        RecordNaturalGrowth(period="2023-03", natural_growth=4, source="statistics office"),
        ctx(MAR))
    split = max(e.timestamp for e in events_of(kosh))
    register(kosh, 4, APR, APR)
    register(kosh, 5, JAN, JAN)  # recorded late, in effect since January (a backdated entry)
    register(kosh, 9, APR, APR)  # the same person moves to another district
    return split  # type: ignore[no-any-return]


def events_of(kosh: Kosh) -> list[Any]:
    return [kosh.app.mapper.to_domain_event(n)
            for n in kosh.app.recorder.select_notifications(start=1, limit=10_000)]


def expected_registers(kosh: Kosh, tmp: Path, keep: Callable[[Any], bool]) -> dict[str, Any]:
    """Built independently: the live projector fed only the events `keep` admits."""
    db = Database(None, tmp / f"expected-{id(keep)}.sqlite")
    projector = Projector(db, all_projections())
    notifications = kosh.app.recorder.select_notifications(start=1, limit=10_000)
    events = [Delivered(n.id, kosh.app.mapper.to_domain_event(n)) for n in notifications]
    projector.apply_batch([d for d in events if keep(d.event)])
    return contents(db)


def contents(db: Database) -> dict[str, Any]:
    return {t: sorted(map(tuple, db.query(f"SELECT * FROM {t}")), key=repr)
            for p in all_projections() for t in table_names(p)}


def as_of(kosh: Kosh, tmp: Path) -> AsOfRegisters:
    return AsOfRegisters(StoreReader(kosh.app.recorder, kosh.app.mapper), all_projections,
                         tmp / "as-of")


@pytest.mark.parametrize("day", [JAN, MAR, APR - dt.timedelta(days=1), APR])
def test_register_as_of_an_effective_date_equals_one_built_from_events_in_effect_by_then(
    kosh: Kosh, history: dt.datetime, tmp_path: Path, day: dt.date,
) -> None:
    expected = expected_registers(
        kosh, tmp_path, lambda e: dt.date.fromisoformat(e.meta["effective_date"]) <= day)
    view = as_of(kosh, tmp_path).open([], Cutoff(effective_on=day))

    assert contents(view.db) == expected
    assert view.result.skipped == {}


def test_register_as_recorded_at_a_time_equals_one_built_from_events_recorded_by_then(
    kosh: Kosh, history: dt.datetime, tmp_path: Path,
) -> None:
    expected = expected_registers(kosh, tmp_path, lambda e: e.timestamp <= history)
    view = as_of(kosh, tmp_path).open([], Cutoff(recorded_at=history))

    assert contents(view.db) == expected
    iins = {r[0] for r in contents(view.db)["residents"]}
    # The backdated January registration was not yet recorded at that time.
    assert registration_body(5)["person"]["iin"] not in iins
    in_effect = as_of(kosh, tmp_path).open(["residents"], Cutoff(effective_on=JAN))
    assert registration_body(5)["person"]["iin"] in {
        r[0] for r in contents_of(in_effect.db, "residents")}


def contents_of(db: Database, table: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in db.query(f"SELECT * FROM {table}")]


def test_http_serves_every_register_as_of_a_date_with_the_live_register_filters(
    kosh: Kosh, history: dt.datetime, tmp_path: Path,
) -> None:
    api = TestClient(create_app(kosh), headers=auth_headers(kosh.settings, "auditor"))
    assert set(api.get("/as-of").json()["registers"]) == {p.name for p in all_projections()}
    expected = expected_registers(
        kosh, tmp_path, lambda e: dt.date.fromisoformat(e.meta["effective_date"]) <= MAR)

    for projection in all_projections():
        reply = api.get(f"/as-of/{projection.name}", params={"date": MAR.isoformat()})
        assert reply.status_code == 200, reply.text
        for table, body in reply.json()["tables"].items():
            served = sorted((tuple(r[c] for c in body["columns"]) for r in body["rows"]),
                            key=repr)
            assert served == [tuple(r) for r in expected[table]], table

    district = registration_body(1)["address"]["district"]
    reply = api.get("/as-of/residents", params={"date": MAR.isoformat(), "table": "residents",
                                                "district": district}).json()
    rows = reply["tables"]["residents"]["rows"]
    # Persons 1 and 9 share the district; 9 had not yet moved away by March.
    assert {r["iin"] for r in rows} == {registration_body(n)["person"]["iin"] for n in (1, 9)}
    assert api.get("/as-of/residents", params={"date": "2023-03-15",
                                               "recorded_before": "2023-03-15T00:00:00"}
                   ).status_code == 422
    assert api.get("/as-of/residents", params={"date": "2023-03-15", "ethnicity": "x"}
                   ).status_code == 422
    assert api.get("/as-of/nothing", params={"date": "2023-03-15"}).status_code == 404


def test_monitoring_reads_as_of_a_date_through_its_own_queries(
    kosh: Kosh, history: dt.datetime,
) -> None:
    api = TestClient(create_app(kosh), headers=auth_headers(kosh.settings, "auditor"))
    march = api.get("/monitoring/flows", params={"date": MAR.isoformat()}).json()
    # By 15 March: persons 1, 5 (January) and 9 (March) had arrived; 2 was still pending.
    assert sum(r["arrivals"] for r in march) == 3
    signals = api.get("/monitoring/signals", params={"date": MAR.isoformat()}).json()
    assert [p["period"] for p in signals["periods"]] == ["2023-03"]
    assert signals["signals"] == []
