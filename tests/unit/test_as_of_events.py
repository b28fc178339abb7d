"""Which events a register held at a cut-off, and that replay decodes events exactly as
the store's own mapper does."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from domain.registration import RegistrationCase
from infra.eventstore import build_mapper
from projections.as_of import Cutoff, events_as_of
from projections.projector import Delivered
from projections.replay import fast_mapper


def meta(day: str) -> dict[str, Any]:
    return {"actor": {"id": "r", "role": "registrar", "organisation": "akimat"},
            "effective_date": day, "legal_basis": {"clause": "§9"},
            "correlation_id": "c", "causation_id": "c"}


def case_events(submitted: str, decided: str) -> list[Any]:
    case = RegistrationCase(person={"kind": "citizen", "iin": "900501300015"},
                            address={"district": "Medeu", "line": "Dostyk 1"},
                            housing={"type": "private", "useful_area_m2": 50.0,
                                     "occupants_after_registration": 1},
                            registration_kind="permanent", valid_until=None,
                            meta=meta(submitted))
    case.approve(meta(decided))
    return list(case.collect_events())


def test_an_effective_date_cut_keeps_events_in_effect_by_that_day_inclusive() -> None:
    events = [Delivered(i + 1, e) for i, e in enumerate(case_events("2023-01-01", "2023-02-01"))]
    kept = list(events_as_of(events, Cutoff(effective_on=dt.date(2023, 1, 31))))
    assert [d.seq for d in kept] == [1]
    kept = list(events_as_of(events, Cutoff(effective_on=dt.date(2023, 2, 1))))
    assert [d.seq for d in kept] == [1, 2]


def test_a_decision_backdated_before_its_application_does_not_count_alone() -> None:
    events = [Delivered(i + 1, e) for i, e in enumerate(case_events("2023-03-01", "2023-01-01"))]
    assert list(events_as_of(events, Cutoff(effective_on=dt.date(2023, 2, 1)))) == []


def test_a_recorded_time_cut_compares_with_the_store_timestamp_inclusive() -> None:
    events = [Delivered(i + 1, e) for i, e in enumerate(case_events("2023-01-01", "2023-01-02"))]
    first = events[0].event.timestamp
    kept = list(events_as_of(events, Cutoff(recorded_at=first)))
    assert [d.seq for d in kept] == [1]
    naive = Cutoff(recorded_at=first.replace(tzinfo=None))
    assert naive.recorded_at == first


def test_a_cut_is_either_a_date_or_a_time() -> None:
    with pytest.raises(ValueError):
        Cutoff()
    with pytest.raises(ValueError):
        Cutoff(effective_on=dt.date(2023, 1, 1), recorded_at=dt.datetime(2023, 1, 1))


def test_replay_decodes_stored_events_exactly_as_the_store_mapper() -> None:
    mapper = build_mapper()
    fast = fast_mapper(mapper)
    assert fast is not mapper
    for event in case_events("2023-01-01", "2023-01-02"):
        stored = mapper.to_stored_event(event)
        slow, quick = mapper.to_domain_event(stored), fast.to_domain_event(stored)
        assert type(quick) is type(slow)
        assert quick.__dict__ == slow.__dict__
