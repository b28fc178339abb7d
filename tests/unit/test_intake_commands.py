"""Issue 5, without I/O: what the intake accepts as a command, how a repeat is recognised,
how refusals survive being stored, and what operations are shown."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from pydantic import BaseModel
from rich.console import Console

from api.status import status_table
from consumers.intake import Malformed, parse_command
from domain.commands import ApproveRegistration, SubmitRegistration
from domain.errors import InvalidTransition, NotInForce, RuleViolation
from infra.command_registry import COMMAND_TYPES
from infra.idempotency import fingerprint, refusal_error, refusal_of
from infra.metrics import ComponentStatus, Snapshot, render
from tests.support.builders import iin_for, registration_body


def envelope(**fields: object) -> bytes:
    base: dict[str, object] = {"command_id": "c-1", "command_type": "submit_registration",
                               "payload": registration_body(1)}
    base.update(fields)
    return json.dumps(base).encode()


def reason(value: bytes) -> Malformed:
    with pytest.raises(Malformed) as caught:
        parse_command(value)
    return caught.value


def test_a_valid_envelope_validates_with_the_http_model() -> None:
    env, spec, cmd = parse_command(envelope(effective_date="2026-01-05"))
    assert isinstance(cmd, SubmitRegistration)
    assert spec.model is SubmitRegistration
    assert str(cmd.effective_date) == "2026-01-05", "the envelope's date fills the payload's"
    assert env.command_id == "c-1"


def test_a_command_on_a_case_needs_its_case_id() -> None:
    assert reason(envelope(command_type="approve_registration", payload={})).reason == \
        "missing_case_id"
    _, _, cmd = parse_command(envelope(command_type="approve_registration", payload={},
                                       case_id=str(uuid.uuid4())))
    assert isinstance(cmd, ApproveRegistration)


def test_malformed_messages_are_named_by_reason_without_echoing_values() -> None:
    assert reason(b"\xff\x00").reason == "not_json"
    assert reason(envelope(command_type="grant_citizenship")).reason == "unknown_command_type"
    claims_an_actor = json.loads(envelope())
    claims_an_actor["actor"] = {"id": "someone-else", "role": "authorised_body"}
    assert reason(json.dumps(claims_an_actor).encode()).reason == "invalid_envelope", \
        "the actor comes from the verified token, never from the message"
    assert reason(envelope(surplus=1)).reason == "invalid_envelope"

    body = registration_body(3)
    body["person"]["iin"] = iin_for(3)[:11] + str((int(iin_for(3)[11]) + 1) % 10)
    bad = reason(envelope(payload=body))
    assert bad.reason == "invalid_payload"
    assert bad.detail == "payload.person.iin: value_error"
    assert reason(envelope(payload={**registration_body(4), "ethnicity": "x"})).detail == \
        "payload.ethnicity: extra_forbidden", "§2: no such input is accepted"


def test_a_repeat_is_recognised_by_content_not_by_key_order() -> None:
    a = fingerprint("kafka", "t", {"a": 1, "b": [1, 2]})
    assert a == fingerprint("kafka", "t", {"b": [1, 2], "a": 1})
    assert a != fingerprint("kafka", "t", {"a": 2, "b": [1, 2]})


@pytest.mark.parametrize("exc", [
    RuleViolation("§10", "at least 15 m² of useful area per person"),
    NotInForce("§9", "no Rules in force on 2010-01-01"),
    InvalidTransition("cannot approve a refused case"),
])
def test_a_stored_refusal_is_rebuilt_as_the_same_refusal(exc: Exception) -> None:
    again = refusal_error(refusal_of(exc))  # type: ignore[arg-type]
    assert type(again) is type(exc)
    assert refusal_of(again) == refusal_of(exc)  # type: ignore[arg-type]


def test_every_registered_command_type_has_a_pydantic_model_and_a_handler() -> None:
    assert {"submit_registration", "approve_registration", "refuse_registration"} <= \
        set(COMMAND_TYPES)
    for name, spec in COMMAND_TYPES.items():
        assert issubclass(spec.model, BaseModel), name
        assert callable(spec.handle), name
    assert not COMMAND_TYPES["submit_registration"].targets_case
    assert COMMAND_TYPES["approve_registration"].targets_case


def snapshot() -> Snapshot:
    return Snapshot(
        at=1_800_000_000.0, store_head=12,
        components=[
            ComponentStatus("publisher", "publisher", "", 12, 0, 3.5, 0),
            ComponentStatus("projection:residents", "projection", "g.projections", 7, 5, None,
                            1, "KeyError", 1_799_999_999.0),
            ComponentStatus("intake", "intake", "g.intake", 4, None, 1.0, 2, "not_json",
                            1_799_999_998.0),
        ],
        commands={("submit_registration", "accepted"): 4},
        dead_letters={("intake", "not_json"): 2},
        projection_max_seq={"residents": 9},
    )


def test_metrics_text_has_lag_rate_failures_and_outcomes() -> None:
    text = render(snapshot()).decode()
    assert 'kosh_component_lag_events{component="projection:residents",group="g.projections",' \
        'kind="projection"} 5.0' in text
    assert 'kosh_component_events_per_second{component="publisher",group="",' \
        'kind="publisher"} 3.5' in text
    assert 'kosh_command_outcomes{command_type="submit_registration",result="accepted"} 4.0' \
        in text
    assert 'kosh_dead_letters{reason="not_json",stage="intake"} 2.0' in text
    assert 'kosh_projection_applied_sequence{projection="residents"} 9.0' in text
    assert "kosh_http_request_duration_seconds" in text


def test_status_table_shows_every_component() -> None:
    out = io.StringIO()
    Console(file=out, width=160).print(status_table(snapshot(), max_lag=3))
    text = out.getvalue()
    for expected in ("publisher", "projection:residents", "intake", "KeyError", "store head 12"):
        assert expected in text
