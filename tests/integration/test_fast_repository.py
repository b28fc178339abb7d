"""Commands read aggregates through Kosh's repository; it must rebuild exactly what the
library's own repository rebuilds from the same store, and see a save at once."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from eventsourcing.application import AggregateNotFoundError, Repository

from domain.commands import ApproveRegistration, SubmitRegistration
from domain.context import Actor, CommandContext
from domain.person import person_id
from infra.application import KoshApplication
from infra.repository import FastRepository
from infra.settings import Settings
from tests.support.builders import registration_body

REGISTRAR = Actor("registrar-1", "registrar", "Medeu district akimat")


def ctx() -> CommandContext:
    return CommandContext(REGISTRAR, dt.date(2025, 6, 1), str(uuid.uuid4()), str(uuid.uuid4()))


def test_aggregates_read_as_the_library_reads_them(store_settings: Settings):
    app = KoshApplication(store_settings)
    try:
        assert isinstance(app.repository, FastRepository)
        library = Repository(event_store=app.events)
        body = registration_body(7)
        case_id = app.submit_registration(SubmitRegistration.model_validate(body), ctx()).case_id
        submitted = app.repository.get(case_id)
        app.approve_registration(case_id, ApproveRegistration(), ctx())

        for aggregate_id in (case_id, person_id(body["person"])):
            ours, theirs = app.repository.get(aggregate_id), library.get(aggregate_id)
            assert type(ours) is type(theirs)
            assert vars(ours) == vars(theirs)
        assert app.repository.get(case_id).version == submitted.version + 1
        assert app.repository.get(case_id).person["iin"] == body["person"]["iin"]
        assert vars(app.repository.get(case_id, version=1)) == vars(submitted)
        with pytest.raises(AggregateNotFoundError):
            app.repository.get(uuid.uuid4())
    finally:
        app.close()
