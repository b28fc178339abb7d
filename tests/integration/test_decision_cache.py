"""Decisions borrow what their process saved last; a second application on the same store
stands in for another process changing the same cases meanwhile. Whatever was borrowed,
the outcome is the one fresh reads would give."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from uuid import UUID

import pytest

from domain.commands import ApproveRegistration, Deregister, RefuseRegistration, SubmitRegistration
from domain.context import Actor, CommandContext
from domain.erasure import subject_of
from domain.errors import InvalidTransition, RuleViolation
from infra.application import KoshApplication
from infra.settings import Settings
from tests.support.builders import registration_body

ON = dt.date(2025, 6, 1)
REGISTRAR = Actor("registrar-1", "registrar", "Medeu district akimat")
FLAT = {"district": "Alatau", "line": "Momyshuly 12, flat 4"}
STATE_30 = {"type": "state", "useful_area_m2": 30.0}


def ctx(on: dt.date = ON) -> CommandContext:
    return CommandContext(REGISTRAR, on, f"corr-{uuid.uuid4()}", str(uuid.uuid4()))


def submit(app: KoshApplication, n: int, **overrides: object) -> UUID:
    cmd = SubmitRegistration.model_validate(registration_body(n, **overrides))
    return app.submit_registration(cmd, ctx()).case_id


@pytest.fixture
def two(store_settings: Settings) -> Iterator[tuple[KoshApplication, KoshApplication]]:
    here, elsewhere = KoshApplication(store_settings), KoshApplication(store_settings)
    yield here, elsewhere
    here.close()
    elsewhere.close()


def test_a_case_refused_elsewhere_is_not_approved_from_the_borrowed_copy(
    two: tuple[KoshApplication, KoshApplication],
) -> None:
    here, elsewhere = two
    case = submit(here, 1)
    elsewhere.refuse_registration(case, RefuseRegistration(reason="documents missing"), ctx())
    with pytest.raises(InvalidTransition, match="is refused"):
        here.approve_registration(case, ApproveRegistration(), ctx())
    assert here.decisions.lent >= 1  # the stale copy was borrowed, then read afresh
    assert here.repository.get(case).status == "refused"


def test_space_freed_elsewhere_is_seen_though_the_borrowed_occupancy_was_full(
    two: tuple[KoshApplication, KoshApplication],
) -> None:
    here, elsewhere = two
    first, second, third = (submit(here, n, address=FLAT, housing=STATE_30) for n in (1, 2, 3))
    for case in (first, second):
        here.approve_registration(case, ApproveRegistration(), ctx())
    elsewhere.deregister(first, Deregister(reason="moved_out"), ctx(ON + dt.timedelta(days=1)))
    # `here` still holds the occupancy as it saved it, with two occupants.
    here.approve_registration(third, ApproveRegistration(), ctx(ON + dt.timedelta(days=2)))
    assert here.repository.get(third).status == "approved"
    with pytest.raises(RuleViolation, match="§10"):  # and the norm still holds
        fourth = submit(elsewhere, 4, address=FLAT, housing=STATE_30)
        here.approve_registration(fourth, ApproveRegistration(), ctx(ON + dt.timedelta(days=2)))


def test_a_change_elsewhere_to_a_borrowed_case_makes_the_decision_again(
    two: tuple[KoshApplication, KoshApplication],
) -> None:
    here, elsewhere = two
    old = submit(here, 1)
    here.approve_registration(old, ApproveRegistration(), ctx())
    moved = submit(elsewhere, 1, address=FLAT)
    elsewhere.approve_registration(moved, ApproveRegistration(), ctx())  # ends `old`
    newest = submit(here, 1, address={"district": "Medeu", "line": "Abay 1"})
    here.approve_registration(newest, ApproveRegistration(), ctx())
    statuses = {c: here.repository.get(c).status for c in (old, moved, newest)}
    assert statuses == {old: "ended", moved: "ended", newest: "approved"}


def test_a_subject_key_made_by_another_process_first_is_the_one_events_are_sealed_with(
    settings: Settings,
) -> None:
    """SQLite, where a new subject's key is committed with the events that use it."""
    here, elsewhere = KoshApplication(settings), KoshApplication(settings)
    keys = here.mapper.sealer.keys  # type: ignore[attr-defined]
    body = registration_body(7)
    subject = subject_of(body["person"])
    # `here` made a key it has not yet committed, while `elsewhere` commits its own first.
    keys._unconfirmed[subject] = os.urandom(32)
    submit(elsewhere, 7)
    case = submit(here, 7)
    here.close()
    elsewhere.close()
    fresh = KoshApplication(settings)
    try:
        person = fresh.repository.get(case).person
    finally:
        fresh.close()
    assert person["family_name"] == body["person"]["family_name"]
    assert subject not in keys._unconfirmed
