"""Aggregate ids: name-based (version 5) for what a name identifies, time-ordered
(version 7) for new cases; random ones (version 4) for correlation and causation ids.

`uuid5` is `uuid.uuid5` for less: every command derives a few (person, data subject,
address); the standard function imports hashlib on each call, which raises and swallows
an AttributeError in the import machinery, and builds the UUID through its checked
constructor."""

from __future__ import annotations

import os
import threading
import time
from hashlib import sha1
from uuid import UUID

_VARIANT_MASK = ~(0xC000 << 48)
_VARIANT_RFC_4122 = 0x8000 << 48
_VERSION_MASK = ~(0xF000 << 64)
_VERSION_5 = 5 << 76
_VERSION_7 = 7 << 76
_RAND_B = (1 << 62) - 1
_VERSION_4 = 4 << 76


class _RandomBytes:
    """os.urandom, drawn a page at a time. Each call of os.urandom is a system call made
    with the interpreter's lock released; in the API's event-loop thread, with 40 worker
    threads waiting for that lock, every request's new ids then waited for it to come
    back (7% of the loop thread's samples, py-spy). The bytes are the same quality, but a
    page keeps the bytes it handed out until it is used up: for ids and nonces, never for
    keys (an erased subject's key must not stay behind in memory)."""

    PAGE = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._page = b""
        self._at = 0
        self._pid = 0

    def __call__(self, n: int) -> bytes:
        with self._lock:
            if self._at + n > len(self._page) or self._pid != os.getpid():
                # A forked child draws its own page: never the parent's bytes again.
                self._page, self._at, self._pid = os.urandom(self.PAGE), 0, os.getpid()
            out = self._page[self._at : self._at + n]
            self._at += n
            return out


random_bytes = _RandomBytes()


def uuid4() -> UUID:
    """RFC 9562 version 4 (random), from `random_bytes`."""
    value = int.from_bytes(random_bytes(16), "big")
    return UUID(int=(value & _VARIANT_MASK & _VERSION_MASK) | _VARIANT_RFC_4122 | _VERSION_4)


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
    rand = int.from_bytes(random_bytes(10), "big")
    value = (
        (ms & 0xFFFF_FFFF_FFFF) << 80
        | _VERSION_7
        | ((rand >> 62) & 0xFFF) << 64
        | _VARIANT_RFC_4122
        | (rand & _RAND_B)
    )
    return UUID(int=value)
