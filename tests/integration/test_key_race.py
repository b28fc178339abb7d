"""Two writers each making a key for one new data subject: one key is stored, and every
event is sealed with the stored one, on SQLite and on PostgreSQL alike (the key goes in
with the events, in their transaction)."""

from __future__ import annotations

import datetime as dt
import uuid

from domain.commands import SubmitRegistration
from domain.context import Actor, CommandContext
from domain.erasure import subject_id_of
from infra.application import KoshApplication
from infra.settings import Settings
from tests.support.builders import iin_for, registration_body

ACTOR = Actor("tester", "registrar", "test")


def context() -> CommandContext:
    return CommandContext(ACTOR, dt.date(2024, 5, 1), str(uuid.uuid4()), str(uuid.uuid4()))


def test_the_writer_that_loses_the_key_race_seals_again_with_the_stored_key(
    store_settings: Settings,
) -> None:
    first, second = KoshApplication(store_settings), KoshApplication(store_settings)
    try:
        subject = subject_id_of(iin_for(7))
        keys = second.mapper.sealer.keys  # type: ignore[attr-defined]
        # The second writer has made a key of its own for the subject, not yet stored...
        with keys.deferring():
            made = keys.key_for_writing(subject)
        # ... when the first stores another with its events.
        first.submit_registration(
            SubmitRegistration.model_validate(registration_body(7)), context())
        moved = registration_body(7, address={"district": "Turksib", "line": "Suyunbay 9"})
        case_id = second.submit_registration(
            SubmitRegistration.model_validate(moved), context()).case_id

        reader = KoshApplication(store_settings)
        try:
            stored = reader.mapper.sealer.keys.key_for_reading(subject)  # type: ignore[attr-defined]
            assert stored is not None and stored != made
            case = vars(reader.repository.get(case_id))
            assert "Family7" in str(case) and "[erased]" not in str(case)
        finally:
            reader.close()
    finally:
        first.close()
        second.close()
