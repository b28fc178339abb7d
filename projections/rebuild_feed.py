"""The parts of a rebuild in groups (`rebuild_split`) that feed each group its events."""

from __future__ import annotations

import marshal
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

from infra.sql import Database
from projections.projector import Delivered, Projection
from projections.replay import RebuildResult, Row, _Batch, _Plan
from projections.replay_decoding import open_row


class Applying:
    """A group's registers fed a batch at a time, as `replay.rebuild` feeds them."""

    def __init__(self, db: Database, projections: Sequence[Projection], batch: int) -> None:
        self.db = db
        self.plan = [_Plan(p, False) for p in projections]
        self.batch = batch
        self.pending: list[Delivered] = []
        self._unused = RebuildResult()  # only tolerated errors are reported in it

    def add(self, delivered: list[Delivered]) -> None:
        self.pending.extend(delivered)
        if len(self.pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        shared = _Batch(self.pending)
        with self.db.transaction() as cur:
            for step in self.plan:
                step.apply(cur, shared, self._unused)
        self.pending = []


class Topics:
    """Which rows of a page each group's process wants, by stored topic (None: every
    row)."""

    def __init__(self, groups: Sequence[Callable[[str], bool] | None]) -> None:
        self._tests = list(groups)
        self._known: dict[str, int] = {}  # topic → a mask: bit i for group i

    def _mask(self, topic: str) -> int:
        mask = sum(1 << i for i, test in enumerate(self._tests) if test is None or test(topic))
        self._known[topic] = mask
        return mask

    def split(self, page: list[Row], mapper: Any) -> list[list[Row]]:
        """The rows for each group. A row with sealed fields is opened here once and goes
        to the groups opened: each decodes it as it would the sealed row, without the
        cipher or the walk that finds the fields (the costlier half of decoding it)."""
        known = self._known
        out: list[list[Row]] = [[] for _ in self._tests]
        for row in page:
            mask = known.get(row[3])
            if mask is None:
                mask = self._mask(row[3])
            if not mask:
                continue
            opened = open_row(mapper, row)
            forward = row if opened is None else (*row[:4], opened)
            if type(forward[1]) is not str:  # the library's rows (PostgreSQL): a UUID
                forward = (forward[0], str(forward[1]), *forward[2:])
            for i, rows in enumerate(out):
                if mask >> i & 1:
                    rows.append(forward)
        return out


_END = b""  # no more rows: the child finishes


class Forwarder:
    """Sends pages to the child from a thread, so that the reader goes on while the child
    is busy with the page before (a pipe holds 64 KiB; a page, megabytes). Bounded: the
    reader gets at most `ahead` pages in front of the child. Marshal, not pickle: rows
    are tuples of ints, strings and bytes, which it writes and reads in half the time."""

    def __init__(self, conn: Any, ahead: int = 4) -> None:
        self.conn = conn
        self._pages: queue.Queue[list[Row] | None] = queue.Queue(maxsize=ahead)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="kosh-rebuild-forward",
                                        daemon=True)
        self._thread.start()

    def put(self, rows: list[Row]) -> None:
        if self.error is not None:
            raise self.error
        self._pages.put(rows)

    def close(self) -> BaseException | None:
        """Sends the end after every page and waits for the thread; what stopped it."""
        self._pages.put(None)
        self._thread.join()
        return self.error

    def _run(self) -> None:
        while True:
            rows = self._pages.get()
            if self.error is None:
                try:
                    self.conn.send_bytes(_END if rows is None else marshal.dumps(rows))
                except BaseException as exc:  # noqa: BLE001 - the child's reply tells why
                    self.error = exc
            if rows is None:
                return


def received(conn: Any) -> list[Row] | None:
    """The next page the child is sent; None at the end."""
    data = conn.recv_bytes()
    return marshal.loads(data) if data else None


def fresh_connections(mapper: Any) -> None:
    """In a forked child: the key store opens its own connection. A SQLite connection
    must not be used across a fork; the inherited ones are kept, unused and unclosed (a
    close could touch the parent's locks), until the child exits."""
    sealer = getattr(getattr(mapper, "sealing", mapper), "sealer", None)
    db = getattr(getattr(sealer, "keys", None), "db", None)
    if isinstance(db, Database):
        _INHERITED.append(db.forget_connections())


_INHERITED: list[Any] = []
