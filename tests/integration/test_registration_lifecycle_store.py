"""The registration lifecycle and the legal-act registry on the real store (SQLite and
PostgreSQL): atomic saves across aggregates, races between application instances (as
between processes), and the Rules in force looked up from stored acts."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import pytest

from consumers.relocation_process import RelocationProcess
from domain.commands import (
    ApproveRegistration,
    CorrectRegistration,
    Deregister,
    ExtendRegistration,
    SubmitRegistration,
)
from domain.context import Actor, CommandContext
from domain.errors import DomainError, InvalidTransition, NotInForce, RuleViolation
from domain.legal_act_commands import EnterPublication, RegisterLegalAct
from domain.person import Person, person_id
from domain.relocation_commands import ApplyForRelocation, ApproveRelocation, RecordArrival
from infra.application import KoshApplication
from infra.commands.legal_acts import REFRESH_S
from infra.settings import Settings
from tests.support.builders import iin_for, registration_body
from tests.support.quota_race import open_almaty_for_kandases

ON = dt.date(2025, 6, 1)
REGISTRAR = Actor("registrar-1", "registrar", "Medeu district akimat")
BODY = Actor("body-1", "authorised_body", "Ministry")
STATE_30 = {"type": "state", "useful_area_m2": 30.0}


def ctx(on: dt.date = ON, actor: Actor = REGISTRAR) -> CommandContext:
    return CommandContext(actor, on, f"corr-{uuid.uuid4()}", str(uuid.uuid4()))


@pytest.fixture
def app(store_settings: Settings) -> Iterator[KoshApplication]:
    application = KoshApplication(store_settings)
    yield application
    application.close()


def submit(app: KoshApplication, n: int, on: dt.date = ON, **overrides: Any) -> UUID:
    cmd = SubmitRegistration.model_validate(registration_body(n, **overrides))
    return app.submit_registration(cmd, ctx(on)).case_id


def approve(app: KoshApplication, case_id: UUID, on: dt.date = ON) -> tuple[int, ...]:
    return app.approve_registration(case_id, ApproveRegistration(), ctx(on)).sequence_numbers


def topics(app: KoshApplication, seqs: tuple[int, ...]) -> list[str]:
    notes = app.recorder.select_notifications(start=seqs[0], limit=len(seqs), stop=seqs[-1])
    return [n.topic.rsplit(":", 1)[-1] for n in notes]


def race(settings: Settings, jobs: list[Callable[[KoshApplication], Any]]) -> list[Any]:
    """Each job on its own application instance, started together."""
    apps = [KoshApplication(settings) for _ in jobs]
    start, results = threading.Barrier(len(jobs)), [None] * len(jobs)

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = jobs[i](apps[i])
        except DomainError as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for a in apps:
        a.close()
    return results


def test_s9_a_new_permanent_registration_ends_the_old_one_in_the_same_save(
    app: KoshApplication,
) -> None:
    first = submit(app, 1, address={"district": "Medeu", "line": "Dostyk 1"})
    approve(app, first)
    second = submit(app, 1, address={"district": "Almaly", "line": "Abay 2"})
    seqs = approve(app, second, ON + dt.timedelta(days=1))
    assert topics(app, seqs) == [
        "RegistrationCase.Approved",
        "RegistrationCase.Ended",
        "Person.Registered",
    ]
    old = app.repository.get(first)
    assert (old.status, old.end_reason, old.ended_on) == ("ended", "superseded", "2025-06-02")
    assert app.repository.get(second).status == "approved"
    temporary = submit(
        app,
        1,
        kind="temporary",
        valid_until="2025-12-31",
        address={"district": "Turksib", "line": "Suyunbay 3"},
    )
    approve(app, temporary)
    assert app.repository.get(second).status == "approved", "a temporary one ends nothing"


def test_s9_racing_permanent_registrations_of_one_person_leave_exactly_one_active(
    app: KoshApplication,
    store_settings: Settings,
) -> None:
    cases = [submit(app, 1, address={"district": "Medeu", "line": f"Dostyk {i}"}) for i in range(4)]
    results = race(store_settings, [lambda a, c=c: approve(a, c) for c in cases])
    assert not [r for r in results if isinstance(r, Exception)]
    statuses = Counter(app.repository.get(c).status for c in cases)
    assert statuses == {"approved": 1, "ended": 3}
    person: Person = app.repository.get(person_id({"iin": iin_for(1)}))
    (active,) = [c for c in cases if app.repository.get(c).status == "approved"]
    assert person.permanent == str(active)


def test_s10_racing_approvals_cannot_both_take_the_last_square_metres(
    app: KoshApplication,
    store_settings: Settings,
) -> None:
    flat = {"district": "Alatau", "line": "Momyshuly 12, flat 4"}
    cases = [submit(app, n, address=flat, housing=STATE_30) for n in range(1, 5)]
    results = race(store_settings, [lambda a, c=c: approve(a, c) for c in cases])
    refused = [r for r in results if isinstance(r, RuleViolation)]
    assert len(refused) == 2 and all(r.clause == "§10" for r in refused)
    assert "30 m² for 3 occupants" in refused[0].message
    assert Counter(app.repository.get(c).status for c in cases) == {"approved": 2, "submitted": 2}


def test_s10_space_is_freed_by_deregistration_and_by_a_temporary_end_date(
    app: KoshApplication,
) -> None:
    flat = {"district": "Alatau", "line": "Momyshuly 12, flat 4"}
    staying = submit(app, 1, address=flat, housing=STATE_30)
    approve(app, staying)
    visitor = submit(
        app, 2, address=flat, housing=STATE_30, kind="temporary", valid_until="2025-06-30"
    )
    approve(app, visitor)
    third = submit(app, 3, address=flat, housing=STATE_30, on=dt.date(2025, 7, 1))
    with pytest.raises(RuleViolation, match="§10"):
        approve(app, third, dt.date(2025, 6, 30))
    approve(app, third, dt.date(2025, 7, 1))
    app.deregister(staying, Deregister(reason="moved_out"), ctx(dt.date(2025, 7, 2)))
    fourth = submit(
        app,
        4,
        address={**flat, "line": "momyshuly 12 flat 4"},
        housing=STATE_30,
        on=dt.date(2025, 7, 2),
    )
    approve(app, fourth, dt.date(2025, 7, 2))


def test_s9_extension_keeps_a_temporary_registration_counted_and_correction_supersedes(
    app: KoshApplication,
) -> None:
    foreigner = {
        "kind": "foreigner",
        "document_type": "passport",
        "document_number": "N1",
        "family_name": "Smyth",
        "given_name": "Anna",
    }
    case = submit(app, 1, person=foreigner, kind="temporary", valid_until="2025-08-31")
    approve(app, case)
    app.extend_registration(
        case, ExtendRegistration(valid_until=dt.date(2026, 8, 31)), ctx(dt.date(2025, 8, 1))
    )
    app.correct_registration(
        case, CorrectRegistration(family_name="Smith", reason="typo"), ctx(dt.date(2025, 8, 2))
    )
    history = [type(e).__name__ for e in app.case_history(case)]
    assert history == ["Submitted", "Approved", "Extended", "Corrected"]
    registered = app.repository.get(case)
    assert (registered.valid_until, registered.person["family_name"]) == ("2026-08-31", "Smith")
    assert app.case_history(case)[0].person["family_name"] == "Smyth"


def test_s9_a_death_ends_every_registration_and_bars_new_ones(app: KoshApplication) -> None:
    home = submit(app, 1)
    approve(app, home)
    elsewhere = submit(
        app,
        1,
        kind="temporary",
        valid_until="2026-01-31",
        address={"district": "Turksib", "line": "Suyunbay 3"},
    )
    approve(app, elsewhere)
    seqs = app.deregister(home, Deregister(reason="deceased"), ctx(ON + dt.timedelta(days=3)))
    assert topics(app, seqs.sequence_numbers) == [
        "RegistrationCase.Deregistered",
        "RegistrationCase.Deregistered",
        "Person.RegistrationsEnded",
    ]
    assert app.repository.get(elsewhere).end_reason == "deceased"
    later = submit(app, 1, on=ON + dt.timedelta(days=4))
    with pytest.raises(InvalidTransition, match="deregistered as deceased on 2025-06-04"):
        approve(app, later, ON + dt.timedelta(days=4))


def test_s9_relocation_registers_foreign_family_members_by_document(
    app: KoshApplication,
) -> None:
    open_almaty_for_kandases(app, 10)
    officer = Actor("officer-1", "migration_officer", "Almaty akimat")
    foreigner = {
        "kind": "foreigner",
        "document_type": "passport",
        "document_number": "N1",
        "family_name": "F",
        "given_name": "G",
    }
    on = dt.date(2026, 2, 1)
    case = app.apply_for_relocation(
        ApplyForRelocation.model_validate(
            {
                "category": "kandas",
                "territory": "Almaty",
                "period": "2026",
                "applicant": {"iin": iin_for(7), "family_name": "F", "given_name": "H"},
                "family_members": [foreigner],
            }
        ),
        ctx(on, officer),
    ).case_id
    app.approve_relocation(case, ApproveRelocation(), ctx(on, officer))
    arrival = app.record_arrival(
        case,
        RecordArrival.model_validate(
            {
                "address": {"district": "Turksib", "line": "Suyunbay 5"},
                "housing": {
                    "type": "state",
                    "useful_area_m2": 30,
                    "occupants_after_registration": 2,
                },
            }
        ),
        ctx(on, officer),
    )
    assert RelocationProcess(app).on_arrived(case, arrival.sequence_numbers[-1]) == 2
    registrations = app.relocation_case(case).registrations
    assert {r["status"] for r in registrations.values()} == {"registered"}
    member = app.repository.get(UUID(registrations["1"]["registration_case_id"]))
    assert (member.status, member.person["document_number"]) == ("approved", "N1")


# -- the legal-act registry --------------------------------------------------------------
def test_commands_cite_the_rules_in_force_as_the_stored_registry_holds_them(
    app: KoshApplication,
    store_settings: Settings,
) -> None:
    assert app.seed_legal_acts() == 3 and app.seed_legal_acts() == 0
    other = KoshApplication(store_settings)  # another process on the same store
    try:
        case = submit(other, 1, on=dt.date(2022, 1, 10))
        assert (
            app.case_history(case)[0].meta["legal_basis"]["act_id"] == "almaty-maslikhat-152-2017"
        )
        app.enter_legal_act_publication(
            "almaty-maslikhat-22-2021",
            EnterPublication(published_on=dt.date(2021, 3, 5)),
            ctx(actor=BODY),
        )
        time.sleep(REFRESH_S)  # another process sees a change to the acts within this
        case = submit(other, 2, on=dt.date(2022, 1, 10))
        assert app.case_history(case)[0].meta["legal_basis"] == {
            "act_id": "almaty-maslikhat-22-2021",
            "clause": "§9",
            "act": "Almaty maslikhat decision No. 22 of 19 February 2021 (new edition of the "
            "Rules)",
        }
        app.enter_legal_act_publication(
            "almaty-maslikhat-97-2024",
            EnterPublication(published_on=dt.date(2024, 4, 10)),
            ctx(actor=BODY),
        )
        time.sleep(REFRESH_S)  # another process sees a change to the acts within this
        submit(other, 3, on=dt.date(2024, 4, 19))
        with pytest.raises(
            NotInForce,
            match="repealed by Almaty maslikhat decision No. 97 .* "
            "from 2024-04-20; nothing is in force on 2024-04-20",
        ):
            submit(other, 4, on=dt.date(2024, 4, 20))
    finally:
        other.close()


def test_s10_does_not_apply_while_the_edition_in_force_lacks_it(app: KoshApplication) -> None:
    app.register_legal_act(
        RegisterLegalAct(
            act_id="almaty-maslikhat-1-2030",
            title="Decision No. 1 of 2030",
            number="1",
            adopted_on=dt.date(2030, 1, 5),
            in_force_on=dt.date(2030, 2, 1),
            edition_of_rules=True,
            clauses=[f"§{n}" for n in range(1, 10)],
        ),
        ctx(actor=BODY),
    )
    flat = {"district": "Alatau", "line": "Momyshuly 12, flat 4"}
    crowded = {**STATE_30, "occupants_after_registration": 3}
    with pytest.raises(RuleViolation, match="§10"):
        submit(app, 1, address=flat, housing=crowded, on=dt.date(2030, 1, 31))
    approve(
        app,
        submit(app, 1, address=flat, housing=crowded, on=dt.date(2030, 2, 1)),
        dt.date(2030, 2, 1),
    )
