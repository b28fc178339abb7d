"""The projector's bookkeeping for a rebuild into a SQLite file: a row per replayed event
and register, most of what a rebuild writes, written beside the rebuild on the other core.

A thread writes each batch's rows, once the batch is committed, into a scratch file of
its own: one INSERT … SELECT a batch for all registers, which SQLite runs without the
GIL, so it overlaps the replay's decoding and applying of the next batches. Its own file
means no wait on the rebuild's writer lock and no emptying of the rebuild connection's
page cache at every commit of another. At the end the rows are copied into the rebuild in
one statement: SQLite copies a table's records into an empty table of the same shape as
they are (its transfer optimisation), several times faster than inserting them.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from infra.sql import Database

# A run of consecutive sequence numbers spelled out by the database itself.
COUNTING = ("WITH RECURSIVE s(seq) AS (SELECT ? UNION ALL SELECT seq + 1 FROM s "
            "WHERE seq < ?) ")

# The same shape as the rebuild's projection_applied (replay.rebuild), so that the copy
# is a transfer of records.
_TABLE = ("CREATE TABLE projection_applied (projection TEXT NOT NULL, seq BIGINT NOT NULL, "
          "PRIMARY KEY (projection, seq)) WITHOUT ROWID")


class AppliedWriter:
    """Writes `projection_applied` rows for the runs handed to `add`; `finish` waits for
    them and copies them into the rebuild, raising whatever stopped the thread."""

    def __init__(self, target: Path, names: Sequence[str]) -> None:
        self.path = Path(f"{target}.applied")
        self.names = list(names)
        self._runs: queue.SimpleQueue[list[tuple[int, int]] | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self.path.unlink(missing_ok=True)
        self._thread = threading.Thread(target=self._run, name="kosh-replay-applied",
                                        daemon=True)
        self._thread.start()

    def add(self, runs: list[tuple[int, int]]) -> None:
        if self._error is not None:
            raise self._error
        self._runs.put(runs)

    def finish(self, db: Database) -> None:
        """Copies the rows into `db` (the rebuild, whose connection this thread owns)."""
        self._stop()
        conn = db.connection()
        conn.execute("ATTACH DATABASE ? AS kosh_applied", (str(self.path),))
        try:
            with db.transaction() as cur:
                cur.execute("INSERT OR IGNORE INTO main.projection_applied "
                            "SELECT * FROM kosh_applied.projection_applied")
        finally:
            conn.execute("DETACH DATABASE kosh_applied")
            self.path.unlink(missing_ok=True)

    def abandon(self) -> None:
        with contextlib.suppress(BaseException):
            self._stop()
        self.path.unlink(missing_ok=True)

    def _stop(self) -> None:
        self._runs.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        names = ", ".join("(?)" for _ in self.names)
        insert = (COUNTING + f", p(name) AS (VALUES {names}) INSERT INTO projection_applied "
                  "(projection, seq) SELECT name, seq FROM p, s WHERE 1 = 1 "
                  "ON CONFLICT DO NOTHING")
        try:
            conn = sqlite3.connect(self.path, isolation_level=None)
        except BaseException as exc:  # noqa: BLE001 - raised in the replaying thread
            self._error = exc
            return
        try:
            # A scratch file, deleted at the end: nothing to keep safe in it.
            conn.execute("PRAGMA journal_mode=OFF")
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute(_TABLE)
            while (runs := self._runs.get()) is not None:
                # One statement a run, each committing itself: a statement of this thread
                # waits for the GIL when it ends, so the fewer the better.
                for lo, hi in runs:
                    conn.execute(insert, (lo, hi, *self.names))
        except BaseException as exc:  # noqa: BLE001 - raised in the replaying thread
            self._error = exc
        finally:
            conn.close()
