"""A doorbell from the processes that write commands to the publisher of the same store.

A publisher in its own process learns of new events only by polling the store every
`publisher_idle_ms`, which on average adds half that interval to every event's way to
the registers. Writers on the same machine ring instead: one datagram on a Linux
abstract-namespace Unix socket named after the store. The bell carries nothing but
"look now": a ring nobody hears (no publisher here, a standby, another machine, not
Linux) costs nothing and changes nothing, because the publisher still polls; so at-least-
once publishing never depends on it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import socket
import sys
import threading
from collections.abc import Callable

import structlog

from infra.settings import Settings

log = structlog.get_logger(__name__)

# How often the listening thread looks at its stop flag while no ring comes.
_STOP_CHECK_S = 0.25


def address(settings: Settings) -> str | None:
    """The bell's socket name: one per store, so deployments side by side don't mix."""
    if not sys.platform.startswith("linux"):
        return None  # abstract Unix socket names are Linux-only
    store = (
        f"{settings.database_url}#{settings.database_schema}"
        if settings.database_url
        else os.path.abspath(settings.data_dir / "events.sqlite")
    )
    digest = hashlib.blake2b(store.encode(), digest_size=12).hexdigest()
    return f"\0kosh-publisher-{digest}"


class Bell:
    """The writers' side: `ring()` after a commit; never blocks, never raises."""

    def __init__(self, settings: Settings) -> None:
        self._address = address(settings)
        self._sock: socket.socket | None = None
        if self._address is not None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)

    def ring(self) -> None:
        if self._sock is None or self._address is None:
            return
        # Nobody listening (ECONNREFUSED), or the listener's queue is full (EAGAIN) so it
        # has a ring pending anyway: both mean there is nothing more to do.
        with contextlib.suppress(OSError):
            self._sock.sendto(b"\x01", self._address)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class Listener:
    """The publisher's side: calls `on_ring` for each burst of rings, from its own thread,
    while the publisher leads. If the name cannot be bound (not Linux, another process of
    the same store holds it), the publisher simply keeps polling."""

    def __init__(self, settings: Settings, on_ring: Callable[[], None]) -> None:
        self._address = address(settings)
        self._on_ring = on_ring
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Listener:
        if self._address is None:
            return self
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(self._address)
        except OSError as exc:
            sock.close()
            log.warning("publisher.doorbell_unavailable", error=repr(exc),
                        fallback="polling the store")
            return self
        sock.setblocking(False)
        self._sock = sock
        self._thread = threading.Thread(target=self._listen, name="publisher-doorbell",
                                        daemon=True)
        self._thread.start()
        return self

    def _listen(self) -> None:
        sock = self._sock
        assert sock is not None
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([sock], [], [], _STOP_CHECK_S)
            except (OSError, ValueError):
                return  # closed by stop()
            if ready and self._drain(sock):
                self._on_ring()

    @staticmethod
    def _drain(sock: socket.socket) -> bool:
        """Reads every ring waiting, so rings that came together wake the publisher once."""
        rang = False
        while True:
            try:
                sock.recv(64)
            except BlockingIOError:
                return rang
            except OSError:
                return False
            rang = True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2 * _STOP_CHECK_S)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
