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
from projections.replay_decoding import decode_opening, decode_row, open_row


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
    """Which rows of a page each group wants, by stored topic (None: every row): ours,
    then each child's."""

    def __init__(self, ours: Callable[[str], bool] | None,
                 children: Sequence[Callable[[str], bool] | None]) -> None:
        self._tests = [ours, *children]
        self._known: dict[str, int] = {}  # topic → a mask: bit 0 ours, bit i child i

    def _mask(self, topic: str) -> int:
        mask = sum(1 << i for i, test in enumerate(self._tests) if test is None or test(topic))
        self._known[topic] = mask
        return mask

    def split(self, page: list[Row], mapper: Any) -> tuple[list[Delivered], list[list[Row]]]:
        """(our events, decoded; the rows for each child). A row with sealed fields is
        opened here once and goes to the children opened: each decodes it as it would the
        sealed row, without the cipher or the walk that finds the fields (the costlier
        half of decoding it)."""
        known = self._known
        ours: list[Delivered] = []
        theirs: list[list[Row]] = [[] for _ in self._tests[1:]]
        for row in page:
            mask = known.get(row[3])
            if mask is None:
                mask = self._mask(row[3])
            if not mask:
                continue
            if mask & 1:
                if mask == 1:
                    ours.append(Delivered(row[0], decode_row(mapper, *row[1:])))
                    continue
                event, opened = decode_opening(mapper, row)
                ours.append(Delivered(row[0], event))
            else:
                opened = open_row(mapper, row)
            forward = row if opened is None else (*row[:4], opened)
            if type(forward[1]) is not str:  # the library's rows (PostgreSQL): a UUID
                forward = (forward[0], str(forward[1]), *forward[2:])
            bit = 2
            for rows in theirs:
                if mask & bit:
                    rows.append(forward)
                bit <<= 1
        return ours, theirs


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
    return marshal.loads(data) if data else None  # type: ignore[no-any-return]


def fresh_connections(mapper: Any) -> None:
    """In a forked child: the key store opens its own connection. A SQLite connection
    must not be used across a fork; the inherited ones are kept, unused and unclosed (a
    close could touch the parent's locks), until the child exits."""
    sealer = getattr(getattr(mapper, "sealing", mapper), "sealer", None)
    db = getattr(getattr(sealer, "keys", None), "db", None)
    if isinstance(db, Database):
        _INHERITED.append((db._local, list(db._idle)))
        db._local = threading.local()
        db._idle = []


_INHERITED: list[Any] = []
