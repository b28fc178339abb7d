"""Seals personal fields inside stored events with the data subject's own key.

Any dict in an event's state that holds a personal field (names, IIN, document number,
birth date, address line) has those fields replaced by one AES-GCM sealed blob under the
subject's key. The subject is identified by IIN, else by document type and number; a dict
with personal fields but no identity (an address, a correction) belongs to the first
subject seen in the same event.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.utils import get_topic

from domain.erasure import ERASED, PERSONAL_FIELDS, erased_value, subject_id_of, subject_of
from domain.ids import random_bytes
from infra.subject_keys import SubjectKeyStore

SEALED = "$sealed"
SUBJECT = "$subject"
FIELDS = "$fields"
_MARKERS = frozenset({"$sealed", "$subject", "$fields"})
_SEALED_MARK = orjson.dumps(SEALED)
# A personal field is a key, so its quoted name is in the encoded bytes. Most events
# (decisions, counters, ids) name none and skip the sealing walk; a value that merely
# spells a name only costs the walk.
_PERSONAL_NAMES = tuple(orjson.dumps(name) for name in sorted(PERSONAL_FIELDS))


def _first_identity(value: Any) -> str | None:
    if isinstance(value, dict):
        if value.get("iin") or value.get("document_number"):
            return subject_of(value)
        children: Any = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return None
    for v in children:
        if isinstance(v, (dict, list)) and (found := _first_identity(v)):
            return found
    return None


class _Primary:
    """The subject an event's identity-less personal fields belong to: the first one the
    event names, else the one its aggregate was linked to — looked up only if needed."""

    __slots__ = ("keys", "originator_id", "value", "known")

    def __init__(self, keys: SubjectKeyStore, originator_id: str, value: str | None) -> None:
        self.keys, self.originator_id, self.value = keys, originator_id, value
        self.known = value is not None

    def get(self) -> str | None:
        if not self.known:
            self.value, self.known = self.keys.subject_of(self.originator_id), True
        return self.value


# An AESGCM object costs more to set up than to seal a field with, and a command seals
# several dicts of one subject; bounded, since a key is per data subject.
MAX_CIPHERS = 4096


class PersonalDataSealer:
    def __init__(self, keys: SubjectKeyStore) -> None:
        self.keys = keys
        self._ciphers: dict[bytes, AESGCM] = {}

    def forget_ciphers(self) -> None:
        """After an erasure: no cipher of an erased key stays in this process."""
        self._ciphers = {}

    # -- writing -----------------------------------------------------------------------
    def seal(self, originator_id: str, state: dict[str, Any]) -> dict[str, Any]:
        primary = _first_identity(state)
        if primary is not None:
            self.keys.link(originator_id, primary)
        return self._seal(state, _Primary(self.keys, originator_id, primary))

    def _seal(self, value: Any, primary: _Primary) -> Any:
        if isinstance(value, list):
            return [self._seal(v, primary) if isinstance(v, (dict, list)) else v for v in value]
        if not isinstance(value, dict):
            return value
        if PERSONAL_FIELDS.isdisjoint(value):
            # Copied only if something inside is sealed: most of a state (meta, actor,
            # legal basis) holds nothing personal.
            out = None
            for k, v in value.items():
                if isinstance(v, (dict, list)):
                    sealed = self._seal(v, primary)
                    if sealed is not v:
                        if out is None:
                            out = dict(value)
                        out[k] = sealed
            return value if out is None else out
        personal = {k: v for k, v in value.items() if k in PERSONAL_FIELDS and v is not None}
        out = {k: self._seal(v, primary) if isinstance(v, (dict, list)) else v
               for k, v in value.items() if k not in personal}
        if not personal:
            return out
        subject = subject_of(value) or primary.get()
        if subject is None:
            return {**out, **personal}  # nobody it could identify: not personal data
        out[SUBJECT] = subject
        out[FIELDS] = sorted(personal)
        out[SEALED] = self._encrypt(subject, personal)
        return out

    def _encrypt(self, subject: str, fields: dict[str, Any]) -> str:
        key = self.keys.key_for_writing(subject)
        cipher = self._ciphers.get(key)
        if cipher is None:
            if len(self._ciphers) >= MAX_CIPHERS:
                self._ciphers.clear()
            cipher = self._ciphers[key] = AESGCM(key)
        nonce = random_bytes(12)  # os.urandom's bytes, without a system call each
        sealed = cipher.encrypt(nonce, orjson.dumps(fields), subject.encode())
        return base64.b64encode(nonce + sealed).decode()

    # -- reading -----------------------------------------------------------------------
    def unseal(self, state: Any) -> Any:
        if isinstance(state, list):
            return [self.unseal(v) for v in state]
        if not isinstance(state, dict):
            return state
        out = {k: self.unseal(v) for k, v in state.items() if k not in _MARKERS}
        if SEALED in state:
            out.update(self._decrypt(state[SUBJECT], state[FIELDS], state[SEALED]))
        return out

    def _decrypt(self, subject: str, fields: list[str], blob: str) -> dict[str, Any]:
        key = self.keys.key_for_reading(subject)
        if key is None:
            return {f: erased_value(f, subject) for f in fields}
        raw = base64.b64decode(blob)
        opened = AESGCM(key).decrypt(raw[:12], raw[12:], subject.encode())
        return orjson.loads(opened)


class SealingMapper(Mapper[Any]):
    """eventsourcing's Mapper, sealing personal fields before encoding and opening them
    after decoding; everything else (topic, versions, upcasting) is the library's."""

    def __init__(self, transcoder: Transcoder, sealer: PersonalDataSealer) -> None:
        super().__init__(transcoder=transcoder)
        self.sealer = sealer
        # Event classes seen naming a personal field; sealing a state that holds none
        # gives the same bytes, so this only saves the pre-check, never changes output.
        self._personal_kinds: set[type] = set()

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        class_version = _class_version(type(domain_event))
        if class_version > 1:
            state["class_version"] = class_version
        kind = type(domain_event)
        if kind in self._personal_kinds:  # its events name personal fields: no pre-check
            encoded = self.transcoder.encode(self.sealer.seal(str(originator_id), state))
        else:
            encoded = self.transcoder.encode(state)
            # `find`, not `in`: `bytes in bytes` first tries the needle as an integer,
            # and raises and swallows a TypeError for each name.
            if any(encoded.find(name) != -1 for name in _PERSONAL_NAMES):
                self._personal_kinds.add(kind)
                encoded = self.transcoder.encode(self.sealer.seal(str(originator_id), state))
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=get_topic(type(domain_event)),
            state=encoded,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        event = super().to_domain_event(stored_event)
        if stored_event.state.find(_SEALED_MARK) != -1:  # most events hold none
            object.__setattr__(event, "__dict__", self.sealer.unseal(event.__dict__))
        return event


_CLASS_VERSIONS: dict[type, int] = {}


def _class_version(cls: type) -> int:
    """Memoized: most event classes have none, and a failed getattr formats an error."""
    try:
        return _CLASS_VERSIONS[cls]
    except KeyError:
        version = _CLASS_VERSIONS[cls] = getattr(cls, "class_version", 1)
        return version


__all__ = ["ERASED", "PERSONAL_FIELDS", "PersonalDataSealer", "SealingMapper", "subject_id_of"]
