"""Monitoring register (§4 flows, §7 signal, §8 age bands), fed with real domain events."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from domain.iin import InvalidIIN, make_iin
from domain.natural_growth import NaturalGrowthFigure
from domain.registration import RegistrationCase
from domain.relocation import RelocationCase
from infra.sql import Database
from projections.monitoring import MonitoringProjection, MonitoringRegister, age_band
from projections.projector import Delivered, Projector


def meta(day: str) -> dict[str, Any]:
    return {"actor": {"id": "r1", "role": "registrar", "organisation": "akimat"},
            "effective_date": day, "legal_basis": {"act_id": "a", "act": "A", "clause": "§9"},
            "correlation_id": "c", "causation_id": "c"}


class Lifecycle:
    """Stands in for the registration-ending events of the registration lifecycle: the
    projection knows them by class name (RegistrationCase.Ended)."""

    @dataclass
    class Ended:
        originator_id: uuid.UUID
        reason: str
        meta: dict[str, Any]
        originator_version: int = 3
        timestamp: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


Lifecycle.Ended.__qualname__ = "RegistrationCase.Ended"


class City:
    """A monitoring register on an in-memory database, and a store-like sequence."""

    def __init__(self) -> None:
        self.db = Database(None, Path(":memory:"))
        self.projector = Projector(self.db, [MonitoringProjection()])
        self.register = MonitoringRegister(self.db)
        self.seq = 0

    def record(self, *events: Any) -> None:
        batch = []
        for e in events:
            self.seq += 1
            batch.append(Delivered(self.seq, e))
        self.projector.apply_batch(batch)

    def register_person(self, person: dict[str, Any], district: str, day: str) -> uuid.UUID:
        case = RegistrationCase(
            person=person, address={"district": district, "line": "Abay 1"},
            housing={"type": "private", "useful_area_m2": 60.0,
                     "occupants_after_registration": 2},
            registration_kind="permanent", valid_until=None, meta=meta(day),
        )
        case.approve(meta(day))
        self.record(*case.collect_events())
        return case.id  # type: ignore[no-any-return]

    def end(self, case_id: uuid.UUID, reason: str, day: str) -> None:
        self.record(Lifecycle.Ended(case_id, reason, meta(day)))

    def natural_growth(self, period: str, figure: int) -> None:
        self.record(*NaturalGrowthFigure(period=period, natural_growth=figure,
                                         source="statistics office",
                                         meta=meta(f"{period[:4]}-12-31")).collect_events())

    def flow(self, **where: str) -> dict[str, int]:
        rows = self.register.flows(**where)
        return {"arrivals": sum(r["arrivals"] for r in rows),
                "departures": sum(r["departures"] for r in rows)}


def citizen(n: int, born: dt.date = dt.date(1990, 5, 1)) -> dict[str, Any]:
    """A distinct citizen per n (serials without a check digit are skipped)."""
    for serial in range(n * 10, n * 10 + 10):
        try:
            iin = make_iin(born, "male", serial).value
        except InvalidIIN:
            continue
        return {"kind": "citizen", "iin": iin, "family_name": f"F{n}", "given_name": f"G{n}"}
    raise AssertionError(f"no valid IIN near serial {n * 10}")


@pytest.fixture
def city() -> City:
    return City()


def test_s4_an_approved_registration_is_an_arrival_in_its_district_month_and_category(
    city: City,
) -> None:
    city.register_person(citizen(1), "Medeu", "2023-03-10")
    city.register_person({"kind": "foreigner", "document_type": "passport",
                          "document_number": "X1", "family_name": "A", "given_name": "B"},
                         "Medeu", "2023-03-20")
    city.register_person({"kind": "foreigner", "document_type": "passport",
                          "document_number": "X2", "family_name": "C", "given_name": "D",
                          "purpose": "labour"}, "Almaly", "2023-04-01")

    assert city.register.flows(district="Medeu", month="2023-03") == [
        {"district": "Medeu", "month": "2023-03", "category": "immigration", "arrivals": 1,
         "departures": 0, "net": 1},
        {"district": "Medeu", "month": "2023-03", "category": "internal", "arrivals": 1,
         "departures": 0, "net": 1},
    ]
    assert city.flow(category="foreign_labour") == {"arrivals": 1, "departures": 0}
    assert city.flow(month="2023") == {"arrivals": 3, "departures": 0}


def test_s4_a_move_within_the_city_is_internal_and_cancels_out_city_wide(city: City) -> None:
    person = citizen(2)
    city.register_person(person, "Medeu", "2023-01-05")
    city.register_person(person, "Turksib", "2023-06-05")

    assert city.flow(district="Medeu", month="2023-06") == {"arrivals": 0, "departures": 1}
    assert city.flow(district="Turksib", month="2023-06", category="internal") == {
        "arrivals": 1, "departures": 0}
    june = city.flow(month="2023-06")
    assert june["arrivals"] - june["departures"] == 0
    assert [r["district"] for r in city.register.age_bands(dt.date(2023, 7, 1))] == ["Turksib"]


def test_s4_leaving_the_country_is_emigration_and_a_death_is_no_migration(city: City) -> None:
    leaver = city.register_person(citizen(3), "Auezov", "2023-01-05")
    deceased = city.register_person(citizen(4), "Auezov", "2023-01-05")
    city.end(leaver, "left_country", "2023-02-01")
    city.end(deceased, "death", "2023-02-02")

    assert city.register.flows(month="2023-02") == [
        {"district": "Auezov", "month": "2023-02", "category": "emigration", "arrivals": 0,
         "departures": 1, "net": -1},
    ]
    assert city.register.age_bands(dt.date(2023, 3, 1)) == []


def test_s4_a_kandas_family_counts_once_when_their_registrations_were_approved_first(
    city: City,
) -> None:
    relocation = RelocationCase(
        category="kandas", applicant={"kind": "citizen", "iin": citizen(5)["iin"]},
        family_members=[{"kind": "citizen", "iin": citizen(6)["iin"]}],
        territory="Almaty", period="2023", quota_id=str(uuid.uuid4()), meta=meta("2023-05-01"),
    )
    relocation.approve(meta("2023-05-02"))
    relocation.arrive({"district": "Alatau", "line": "Rayymbek 5"},
                      {"type": "private", "useful_area_m2": 90.0,
                       "occupants_after_registration": 2}, meta("2023-05-20"))
    city.record(*relocation.collect_events())
    # The process manager registers each person, then records it on the relocation case.
    for n, key in ((5, "0"), (6, "1")):
        reg = city.register_person(citizen(n), "Alatau", "2023-05-20")
        relocation.record_registration(key, str(reg), meta("2023-05-20"))
    city.record(*relocation.collect_events())

    assert city.register.flows(month="2023-05") == [
        {"district": "Alatau", "month": "2023-05", "category": "kandas", "arrivals": 2,
         "departures": 0, "net": 2},
    ]
    assert sum(r["residents"] for r in city.register.age_bands(dt.date(2023, 6, 1))) == 2


def test_s8_age_bands_follow_the_iin_birth_date_on_the_reading_date(city: City) -> None:
    on = dt.date(2024, 9, 1)
    births = {7: dt.date(2018, 9, 2), 8: dt.date(2017, 9, 1), 9: dt.date(1962, 9, 1),
              10: dt.date(1961, 9, 1), 11: dt.date(2000, 1, 1)}
    for n, born in births.items():
        city.register_person(citizen(n, born), "Bostandyk", "2024-01-10")

    assert city.register.age_bands(on, district="Bostandyk") == [
        {"district": "Bostandyk", "age_band": "0-6", "residents": 1},
        {"district": "Bostandyk", "age_band": "7-17", "residents": 1},
        {"district": "Bostandyk", "age_band": "18-34", "residents": 1},
        {"district": "Bostandyk", "age_band": "35-62", "residents": 1},
        {"district": "Bostandyk", "age_band": "63+", "residents": 1},
    ]
    assert city.register.age_bands(on, district="Medeu") == []


def test_s8_age_band_boundaries() -> None:
    born = dt.date(2010, 3, 15)
    assert age_band(born, dt.date(2017, 3, 14)) == "0-6"
    assert age_band(born, dt.date(2017, 3, 15)) == "7-17"
    assert age_band(born, dt.date(2028, 3, 15)) == "18-34"
    assert age_band(None, dt.date(2028, 3, 15)) == "unknown"


def _outflow(city: City, leavers: int) -> None:
    for n in range(leavers):
        case = city.register_person(citizen(100 + n), "Zhetysu", "2022-12-01")
        city.end(case, "left_country", "2023-05-10")


def test_s7_outflow_equal_to_natural_growth_raises_no_signal(city: City) -> None:
    _outflow(city, 3)
    city.natural_growth("2023-05", 3)

    (period,) = city.register.periods()
    assert (period["net_outflow"], period["natural_growth"]) == (3, 3)
    assert period["signal"] is False
    assert city.register.signals() == []


def test_s7_outflow_one_more_than_natural_growth_raises_a_signal(city: City) -> None:
    _outflow(city, 4)
    city.natural_growth("2023-05", 3)

    assert [(s["period"], s["net_outflow"]) for s in city.register.signals()] == [("2023-05", 4)]


def test_s7_a_yearly_figure_covers_its_months_and_a_revision_replaces_it(city: City) -> None:
    _outflow(city, 4)
    city.natural_growth("2023", 5)
    assert city.register.signals() == []

    figure = NaturalGrowthFigure(period="2023", natural_growth=5, source="s", meta=meta("2023"))
    figure.collect_events()
    figure.revise(2, "revised by the statistics office", meta("2024-01-15"))
    city.record(*figure.collect_events())
    assert [(s["period"], s["natural_growth"]) for s in city.register.signals()] == [
        ("2023", 2)]


def test_s7_no_outflow_no_signal_even_when_deaths_outnumber_births(city: City) -> None:
    city.register_person(citizen(200), "Nauryzbay", "2023-05-03")
    city.natural_growth("2023-05", -10)

    assert city.register.signals() == []
