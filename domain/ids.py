"""Name-based (version 5) UUIDs, as `uuid.uuid5` makes them, for less.

Every command derives a few (person, data subject, address); the standard function
imports hashlib on each call, which raises and swallows an AttributeError in the import
machinery, and builds the UUID through its checked constructor."""

from __future__ import annotations

from hashlib import sha1
from uuid import UUID

_VARIANT_MASK = ~(0xC000 << 48)
_VARIANT_RFC_4122 = 0x8000 << 48
_VERSION_MASK = ~(0xF000 << 64)
_VERSION_5 = 5 << 76


def uuid5(namespace: UUID, name: str) -> UUID:
    digest = sha1(namespace.bytes + name.encode("utf-8"), usedforsecurity=False).digest()
    value = int.from_bytes(digest[:16], "big")
    value = (value & _VARIANT_MASK & _VERSION_MASK) | _VARIANT_RFC_4122 | _VERSION_5
    return UUID(int=value)
