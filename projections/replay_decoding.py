"""Decodes stored events for a rebuild: the store's own mapper, made cheaper where a
rebuild spends its time (JSON decoding, opening sealed personal fields, the originator
id), and yielding exactly the events the store's mapper yields."""

from __future__ import annotations

import base64
import copy
import uuid
from typing import Any

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import JSONTranscoder, Mapper, StoredEvent

from infra.personal_data import SEALED, SUBJECT, SealingMapper

_FIELDS = "$fields"
_SAFE = uuid.SafeUUID.unknown


def uuid_of(text: str) -> uuid.UUID:
    """`uuid.UUID(text)` for the canonical form the store writes, without the parsing
    of every other form the constructor accepts (a third of its cost per event)."""
    if len(text) != 36:
        return uuid.UUID(text)
    value = object.__new__(uuid.UUID)
    object.__setattr__(value, "int", int(text.replace("-", ""), 16))
    object.__setattr__(value, "is_safe", _SAFE)
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

    def to_domain_event(self, stored: Any) -> Any:
        event = Mapper.to_domain_event(self.sealing, stored)
        if self._MARK in stored.state:
            # The state is ours (fresh from the decoder): opened where it lies, not copied.
            self._open(event.__dict__)
        return event

    def to_stored_event(self, domain_event: Any) -> Any:
        return self.sealing.to_stored_event(domain_event)

    def _open(self, value: dict[str, Any]) -> None:
        """`PersonalDataSealer.unseal`, in place: the same keys in the same order (the
        opened fields where the unsealed copy puts them: after the others)."""
        for v in value.values():
            kind = type(v)
            if kind is dict:
                self._open(v)
            elif kind is list:
                self._open_list(v)
        if SEALED in value:
            subject, fields, blob = value.pop(SUBJECT), value.pop(_FIELDS), value.pop(SEALED)
            value.update(self._decrypt(subject, fields, blob))
        elif SUBJECT in value or _FIELDS in value:
            value.pop(SUBJECT, None)
            value.pop(_FIELDS, None)

    def _open_list(self, values: list[Any]) -> None:
        for v in values:
            kind = type(v)
            if kind is dict:
                self._open(v)
            elif kind is list:
                self._open_list(v)

    def _decrypt(self, subject: str, fields: list[str], blob: str) -> dict[str, Any]:
        cipher = self._ciphers.get(subject)
        if cipher is None:
            # A subject's key is asked once per rebuild: a key erased meanwhile goes on
            # opening this rebuild's events, as another process's key cache would.
            key = self.sealer.keys.key_for_reading(subject)
            if key is None:
                return self.sealer._decrypt(subject, fields, blob)  # type: ignore[no-any-return]
            if len(self._ciphers) > 100_000:  # a store of many subjects: bound the memory
                self._ciphers.clear()
            cipher = self._ciphers[subject] = (AESGCM(key), subject.encode())
        raw = base64.b64decode(blob)
        return orjson.loads(cipher[0].decrypt(raw[:12], raw[12:], cipher[1]))  # type: ignore[no-any-return]


class _Stored:
    """What a mapper reads of a StoredEvent, without the frozen dataclass's costlier
    construction (once per event in a rebuild)."""

    __slots__ = ("originator_id", "originator_version", "topic", "state")

    def __init__(self, originator_id: Any, version: int, topic: str, state: bytes) -> None:
        self.originator_id = originator_id
        self.originator_version = version
        self.topic = topic
        self.state = state


def decode_row(mapper: Any, originator_id: Any, version: int, topic: str, state: bytes) -> Any:
    """One stored row (as the store or the events topic hold it) as its domain event."""
    if isinstance(originator_id, str):
        originator_id = uuid_of(originator_id)
    if type(mapper) is not _FastUnsealing and type(mapper.transcoder) is not _FastDecoding:
        # Someone else's mapper may keep the StoredEvent: give it the real thing.
        return mapper.to_domain_event(StoredEvent(originator_id, version, topic, state))
    return mapper.to_domain_event(_Stored(originator_id, version, topic, state))
