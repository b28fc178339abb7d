"""Decodes stored events for a rebuild: the store's own mapper, made cheaper where a
rebuild spends its time (JSON decoding, opening sealed personal fields, the originator
id), and yielding exactly the events the store's mapper yields."""

from __future__ import annotations

import binascii
import copy
import datetime as dt
import uuid
from typing import Any

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import (
    DatetimeAsISO,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    find_id_convertor,
    pass_through_convertor,
)
from eventsourcing.utils import resolve_topic

from infra.personal_data import SEALED, SUBJECT, SealingMapper

_FIELDS = "$fields"
_SAFE = uuid.SafeUUID.unknown


class TextUUID(uuid.UUID):
    """A UUID that keeps its canonical text: registers key their rows by it, so a
    rebuild would otherwise format the same number several times per event."""

    __slots__ = ("_text",)
    _text: str

    def __str__(self) -> str:
        return self._text

    def __reduce__(self) -> Any:
        return (uuid.UUID, (self._text,))  # a copy elsewhere is a plain UUID


def uuid_of(text: str) -> uuid.UUID:
    """`uuid.UUID(text)` for the forms the store (32 hex digits) and the events topic
    (the canonical text) write, without the parsing of every other form the constructor
    accepts (a third of its cost per event)."""
    if len(text) == 32:
        digits = text
        text = f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}".lower()
    elif len(text) == 36 and text[8] == text[13] == text[18] == text[23] == "-":
        digits = text.replace("-", "")
        text = text.lower()
    else:
        return uuid.UUID(text)
    if not digits.isalnum():  # int() would take a sign, spaces or underscores
        return uuid.UUID(text)
    value = object.__new__(TextUUID)
    object.__setattr__(value, "int", int(digits, 16))
    object.__setattr__(value, "is_safe", _SAFE)
    object.__setattr__(value, "_text", text)
    return value


class _FastDecoding:
    """The store's JSON transcoder, decoding with orjson. Kosh events hold plain JSON but
    for the library's own typed values (the timestamp), which sit at the top level; any
    other typed value sends the state through the library's decoder unchanged."""

    def __init__(self, transcoder: JSONTranscoder) -> None:
        self.inner = transcoder

    def encode(self, obj: Any) -> bytes:
        return self.inner.encode(obj)

    def decode(self, data: bytes) -> Any:
        state = orjson.loads(data)
        typed = data.count(b'"_type_":')
        if not typed or not isinstance(state, dict):
            return state if not typed else self.inner.decode(data)
        for key, value in state.items():
            if isinstance(value, dict) and len(value) == 2 and "_type_" in value:
                transcoding = self.inner.names.get(value["_type_"])
                if transcoding is None or "_data_" not in value:
                    return self.inner.decode(data)
                state[key] = transcoding.decode(value["_data_"])
                typed -= 1
        return state if typed == 0 else self.inner.decode(data)


def fast_mapper(mapper: Any) -> Any:
    """The same mapper with a faster JSON decoder, when its transcoder writes the library's
    JSON layout (the library's or a subclass of it) and the bytes are neither enciphered
    nor compressed. A mapper that does
    more with the decoded state (sealing) keeps doing it: it decodes through
    `self.transcoder` like the library's."""
    plain = (
        isinstance(mapper, Mapper)
        and isinstance(mapper.transcoder, JSONTranscoder)
        and not mapper.cipher
        and not mapper.compressor
    )
    if not plain:
        return mapper
    fast = copy.copy(mapper)
    fast.transcoder = _FastDecoding(mapper.transcoder)
    if type(mapper) is SealingMapper:
        return _FastUnsealing(fast)
    return fast


class _FastUnsealing:
    """Opens sealed fields as `PersonalDataSealer.unseal` does, with the key store's
    answers and one cipher per key kept for the rebuild. Most events hold no sealed
    field (decisions, counters): their bytes go straight to the library's decoding."""

    _MARK = orjson.dumps(SEALED)

    def __init__(self, sealing: Any) -> None:
        self.sealing = sealing
        self.transcoder = sealing.transcoder
        self.sealer = sealing.sealer
        self._ciphers: dict[str, tuple[AESGCM, bytes]] = {}  # subject → cipher, its AAD
        self._classes: dict[str, type | None] = {}  # stored topic → class, None: no shortcut
        inner = getattr(self.transcoder, "inner", None)
        names = getattr(inner, "names", {})
        self._direct = type(names.get("datetime_iso")) is DatetimeAsISO

    def _class_of(self, topic: str) -> type | None:
        """The event class, when the library's mapper would do nothing to an event of
        it but build it from the decoded state: no upcasting, the id kept as given."""
        try:
            return self._classes[topic]
        except KeyError:
            pass
        cls = resolve_topic(topic)
        plain = (self._direct and getattr(cls, "class_version", 1) == 1
                 and find_id_convertor(cls, TextUUID) is pass_through_convertor)
        found = self._classes[topic] = cls if plain else None
        return found

    def decode_row(self, originator_id: uuid.UUID, version: int, topic: str,
                   state: bytes) -> Any:
        """`to_domain_event` of a stored row, the library's steps inlined for the events
        Kosh writes: JSON whose one typed value is the top-level timestamp."""
        cls = self._class_of(topic)
        values = self._plain(cls, state)
        if cls is None or values is None:
            return self.to_domain_event(_Stored(originator_id, version, topic, state))
        values["timestamp"] = _from_iso(values["timestamp"]["_data_"])
        values["originator_id"] = originator_id
        values["originator_version"] = version
        if self._MARK in state:
            self._open_state(values, state)
        event: Any = object.__new__(cls)
        object.__setattr__(event, "__dict__", values)
        return event

    def _plain(self, cls: type | None, state: bytes) -> dict[str, Any] | None:
        """The decoded state, when the shortcut applies to it: JSON whose one typed value
        is the top-level timestamp, no class version to upcast from."""
        if cls is None or state.count(b'"_type_":') != 1 or b'"class_version"' in state:
            return None
        values = orjson.loads(state)
        stamp = values.get("timestamp") if type(values) is dict else None
        if type(stamp) is not dict or stamp.get("_type_") != "datetime_iso" or len(stamp) != 2:
            return None
        return values

    def opened(self, topic: str, state: bytes) -> bytes | None:
        """The state with its sealed fields opened where they lie (`opened_state`), for a
        process that hands the row on; None when it has none, or holds them at the top."""
        if self._MARK not in state:
            return None
        values = self._plain(self._class_of(topic), state)
        if values is None or SEALED in values:
            return None
        self._open_state(values, state)
        return opened_state(values)

    def to_domain_event(self, stored: Any) -> Any:
        event = Mapper.to_domain_event(self.sealing, stored)
        if self._MARK in stored.state:
            # The state is ours (fresh from the decoder): opened where it lies, not copied.
            self._open_state(event.__dict__, stored.state)
        return event

    def to_stored_event(self, domain_event: Any) -> Any:
        return self.sealing.to_stored_event(domain_event)

    _KEYS = tuple(orjson.dumps(k) for k in (SEALED, SUBJECT, _FIELDS))

    def _open_state(self, values: dict[str, Any], state: bytes) -> None:
        """Opens the sealed fields of a decoded state, walking it only until every
        marker key its bytes hold has been met: each is written as its bare quoted name
        (an equal string value only makes the count high, so the walk goes on)."""
        sealed, subject, fields = self._KEYS
        self._open(values, state.count(sealed) + state.count(subject) + state.count(fields))

    def _open(self, value: dict[str, Any], left: int = -1) -> int:
        """`PersonalDataSealer.unseal`, in place: the same keys in the same order (the
        opened fields where the unsealed copy puts them: after the others). Returns how
        many marker keys are still to be met (`left`, less those found; -1: unknown)."""
        left = self._open_each(value.values(), left)
        if SEALED in value:
            subject, fields, blob = value.pop(SUBJECT), value.pop(_FIELDS), value.pop(SEALED)
            value.update(self._decrypt(subject, fields, blob))
            left -= 3
        elif SUBJECT in value or _FIELDS in value:
            left -= (value.pop(SUBJECT, None) is not None) + (value.pop(_FIELDS, None) is not None)
        return left

    def _open_each(self, values: Any, left: int) -> int:
        for v in values:
            if not left:
                break
            kind = type(v)
            if kind is dict:
                left = self._open(v, left)
            elif kind is list:
                left = self._open_each(v, left)
        return left

    def _decrypt(self, subject: str, fields: list[str], blob: str) -> dict[str, Any]:
        cipher = self._ciphers.get(subject)
        if cipher is None:
            # A subject's key is asked once per rebuild: a key erased meanwhile goes on
            # opening this rebuild's events, as another process's key cache would.
            key = self.sealer.keys.key_for_reading(subject)
            if key is None:
                return self.sealer._decrypt(subject, fields, blob)
            if len(self._ciphers) > 100_000:  # a store of many subjects: bound the memory
                self._ciphers.clear()
            cipher = self._ciphers[subject] = (AESGCM(key), subject.encode())
        raw = binascii.a2b_base64(blob)  # base64.b64decode, minus its checks of the type
        return orjson.loads(cipher[0].decrypt(raw[:12], raw[12:], cipher[1]))


_from_iso = dt.datetime.fromisoformat  # the library's datetime_iso decoding


def opened_state(values: dict[str, Any]) -> bytes | None:
    """A decoded state whose sealed fields are open (its timestamp not yet decoded), as
    bytes that `decode_row` turns into the very event the sealed ones give: plain JSON,
    written as orjson read it (same keys, order and values), holding no sealed field.
    None when the opened text could take `decode_row` down another path than the sealed
    one took (personal data that happens to hold one of the markers it tests)."""
    opened = orjson.dumps(values)
    if (opened.count(b'"_type_":') != 1 or b'"class_version"' in opened
            or _FastUnsealing._MARK in opened):
        return None
    return opened


class _Stored:
    """What a mapper reads of a StoredEvent, without the frozen dataclass's costlier
    construction (once per event in a rebuild)."""

    __slots__ = ("originator_id", "originator_version", "topic", "state")

    def __init__(self, originator_id: Any, version: int, topic: str, state: bytes) -> None:
        self.originator_id = originator_id
        self.originator_version = version
        self.topic = topic
        self.state = state


def open_row(mapper: Any, row: tuple[int, Any, int, str, bytes]) -> bytes | None:
    """The row's state with its sealed fields opened (`opened_state`), without decoding
    the event; None when it has none or is not decoded by the shortcut."""
    if type(mapper) is not _FastUnsealing:
        return None
    return mapper.opened(row[3], row[4])


def decode_row(mapper: Any, originator_id: Any, version: int, topic: str, state: bytes) -> Any:
    """One stored row (as the store or the events topic hold it) as its domain event."""
    if isinstance(originator_id, str):
        originator_id = uuid_of(originator_id)
    if type(mapper) is _FastUnsealing:
        return mapper.decode_row(originator_id, version, topic, state)
    if type(mapper) is not _FastUnsealing and type(mapper.transcoder) is not _FastDecoding:
        # Someone else's mapper may keep the StoredEvent: give it the real thing.
        return mapper.to_domain_event(StoredEvent(originator_id, version, topic, state))
    return mapper.to_domain_event(_Stored(originator_id, version, topic, state))
