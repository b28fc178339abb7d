"""Saves the publisher's acknowledged position from a thread of its own.

Saving is a write to the event store's database, which the writers of commands keep busy:
measured under 500 commands/s, a third of each publishing round went to waiting for that
database's writer lock, and every event committed meanwhile waited with it. The publisher
now hands the position over and goes on publishing; this thread saves the newest one it
was given. A saved position is always one the broker acknowledged (it only ever lags the
truth), so a crash republishes a little more, never loses anything; consumers drop the
repeats by sequence number.
"""

from __future__ import annotations

import threading

import structlog

from infra.positions import PositionStore

log = structlog.get_logger(__name__)

RETRY_S = 0.2
# Positions saved at most this often: each save is a write transaction the command writers
# wait behind, and one every few rounds republishes no more after a crash than one a round.
MIN_INTERVAL_S = 0.05


class PositionWriter:
    def __init__(self, positions: PositionStore, name: str) -> None:
        self.positions = positions
        self.name = name
        self._cond = threading.Condition()
        self._wanted: int | None = None  # the newest position not yet saved
        self._saving = False
        self._closed = False
        self._urgent = 0  # callers waiting in flush(): no pause between saves
        self._thread: threading.Thread | None = None

    def set(self, position: int) -> None:
        """Never blocks; a newer position replaces one not yet saved."""
        with self._cond:
            self._wanted = position
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="publisher-position",
                                                daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout: float = 30.0) -> bool:
        """Waits until every position set so far is saved; False if that took too long."""
        with self._cond:
            self._urgent += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(
                    lambda: self._wanted is None and not self._saving, timeout=timeout
                )
            finally:
                self._urgent -= 1

    def close(self, timeout: float = 30.0) -> None:
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._wanted is not None or self._closed)
                if self._wanted is None:
                    return  # closed with nothing left to save
                value, self._wanted, self._saving = self._wanted, None, True
            try:
                self.positions.save(self.name, value)
            except Exception as exc:  # noqa: BLE001 - a later save covers this one
                log.warning("publisher.position_save_failed", position=value, error=repr(exc),
                            retry_in_s=RETRY_S)
                with self._cond:
                    if self._wanted is None:
                        self._wanted = value
                    self._saving = False
                    self._cond.notify_all()
                    if self._closed:
                        return
                    self._cond.wait(RETRY_S)
                continue
            with self._cond:
                self._saving = False
                self._cond.notify_all()
                self._cond.wait_for(lambda: self._closed or self._urgent > 0,
                                    timeout=MIN_INTERVAL_S)
