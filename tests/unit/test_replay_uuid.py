"""The rebuild's UUIDs, parsed from the store's and the topic's text, are the values
`uuid.UUID` gives (equal, hashed alike, the same text), and a copy is a plain UUID."""

from __future__ import annotations

import copy
import pickle
import uuid

import pytest

from projections.replay_decoding import uuid_of


@pytest.mark.parametrize("form", ["hex", "canonical", "upper"])
def test_uuid_of_equals_the_constructor(form: str) -> None:
    value = uuid.uuid4()
    text = {"hex": value.hex, "canonical": str(value), "upper": str(value).upper()}[form]
    parsed = uuid_of(text)
    assert parsed == value and hash(parsed) == hash(value)
    assert str(parsed) == str(value) and parsed.hex == value.hex
    assert isinstance(parsed, uuid.UUID)


def test_a_copy_or_pickle_is_a_plain_uuid() -> None:
    value = uuid.uuid4()
    for other in (pickle.loads(pickle.dumps(uuid_of(value.hex))), copy.copy(uuid_of(str(value)))):
        assert type(other) is uuid.UUID and other == value


@pytest.mark.parametrize("text", ["{12345678-1234-5678-1234-567812345678}", "+" + "1" * 31,
                                  "_" * 32, "urn:uuid:12345678-1234-5678-1234-567812345678"])
def test_other_forms_go_to_the_constructor(text: str) -> None:
    try:
        expected: object = uuid.UUID(text)
    except ValueError:
        with pytest.raises(ValueError):
            uuid_of(text)
        return
    assert uuid_of(text) == expected
