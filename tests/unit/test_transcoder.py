"""Stored events written by Kosh's orjson transcoder and by the library's own JSON
transcoder are the same bytes, and each decodes the other's."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from enum import StrEnum

import pytest
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    TranscodingNotRegisteredError,
    UUIDAsHex,
)

from infra.transcoder import OrjsonTranscoder


def _register(t: JSONTranscoder) -> JSONTranscoder:
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        t.register(transcoding)
    return t


LIBRARY = _register(JSONTranscoder())
FAST = _register(OrjsonTranscoder())


class Kind(StrEnum):
    PERMANENT = "permanent"


STATES = [
    {
        "timestamp": dt.datetime(2026, 11, 25, 10, 0, 1, 5, tzinfo=dt.UTC),
        "case": uuid.UUID("c49f8841-83ef-4292-9920-bd2c148b48d1"),
        "person": {"family_name": "Әлиев", "iin": "900101300017", "tags": ["a", 1, None]},
        "area": 42.5,
        "nested": [{"at": dt.datetime(2020, 1, 1), "amount": Decimal("1.50")}, (1, 2)],
        "ok": True,
    },
    {"kind": Kind.PERMANENT, "count": 3},  # a str subclass: the json module's rules
    {"big": 2**70, "nan": float("nan")},  # what orjson would write differently
    {1: "non-string key"},
]


@pytest.mark.parametrize("state", STATES)
def test_same_bytes_as_the_library_and_each_decodes_the_other(state):
    fast, library = FAST.encode(state), LIBRARY.encode(state)
    assert fast == library
    assert FAST.decode(library) == LIBRARY.decode(library)
    if state is not STATES[2]:  # NaN is never equal to itself
        assert FAST.decode(fast) == LIBRARY.decode(fast)


def test_typed_values_come_back_typed_at_any_depth():
    decoded = FAST.decode(FAST.encode(STATES[0]))
    assert decoded["case"] == STATES[0]["case"]
    assert decoded["nested"][0]["amount"] == Decimal("1.50")
    assert decoded["nested"][0]["at"] == dt.datetime(2020, 1, 1)
    assert decoded["timestamp"].tzinfo is not None


def test_a_type_without_a_transcoding_is_refused_as_by_the_library():
    with pytest.raises(TranscodingNotRegisteredError):
        FAST.encode({"when": dt.date(2026, 1, 1)})
    with pytest.raises(TranscodingNotRegisteredError):
        LIBRARY.encode({"when": dt.date(2026, 1, 1)})
