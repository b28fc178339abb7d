"""Kafka command payloads with personal data travel sealed with the command key."""

from __future__ import annotations

import json
import os

import pytest

from consumers.command_sealing import seal_payload
from consumers.intake import Malformed, parse_command
from domain.commands import SubmitRegistration
from tests.support.builders import registration_body

KEY = os.urandom(32)


def envelope(command_id: str = "c-1", **fields: object) -> bytes:
    return json.dumps({"command_id": command_id, "command_type": "submit_registration",
                       **fields}).encode()


def refusal(value: bytes, key: bytes | None = KEY) -> Malformed:
    with pytest.raises(Malformed) as caught:
        parse_command(value, key)
    return caught.value


def test_a_sealed_payload_opens_with_the_command_key() -> None:
    sealed = seal_payload(KEY, "c-1", registration_body(1))
    _, _, cmd = parse_command(envelope(sealed_payload=sealed), KEY)
    assert isinstance(cmd, SubmitRegistration)
    assert cmd.person.iin == registration_body(1)["person"]["iin"]


def test_personal_fields_in_clear_are_refused_once_a_key_is_configured() -> None:
    bad = refusal(envelope(payload=registration_body(1)))
    assert bad.reason == "personal_data_in_clear"
    assert bad.detail == "family_name, given_name, iin, line", "names the fields, not values"
    assert registration_body(1)["person"]["iin"] not in bad.message


def test_a_payload_sealed_for_another_command_or_key_does_not_open() -> None:
    replayed = seal_payload(KEY, "c-1", registration_body(1))
    assert refusal(envelope("c-2", sealed_payload=replayed)).reason == "unreadable_payload"
    foreign = seal_payload(os.urandom(32), "c-1", registration_body(1))
    assert refusal(envelope(sealed_payload=foreign)).reason == "unreadable_payload"
    assert refusal(envelope(sealed_payload=replayed), key=None).reason == "unreadable_payload"
    both = envelope(sealed_payload=replayed, payload={"x": 1})
    assert refusal(both).reason == "invalid_envelope"
