"""The projector applies each event at most once per projection, whether the repeat
comes in the same batch, a later batch, or a batch larger than one claim statement."""

from __future__ import annotations

from typing import Any

from infra.settings import Settings
from infra.sql import Cursor, Database
from projections.projector import Delivered, Projector


class Tally:
    name = "tally"
    ddl = ("CREATE TABLE IF NOT EXISTS tally (seq BIGINT PRIMARY KEY, times INTEGER NOT NULL)",)

    def apply(self, cur: Cursor, seq: int, event: Any) -> None:
        cur.execute(
            "INSERT INTO tally (seq, times) VALUES (?, 1) ON CONFLICT (seq) "
            "DO UPDATE SET times = tally.times + 1",
            (seq,),
        )


def events(*seqs: int) -> list[Delivered]:
    return [Delivered(seq, object()) for seq in seqs]


def test_repeats_are_applied_once_within_and_across_batches(store_settings: Settings) -> None:
    db = Database(
        store_settings.database_url,
        store_settings.data_dir / "registers.sqlite",
        store_settings.database_schema,
    )
    projector = Projector(db, [Tally()])

    assert projector.apply_batch(events(1, 2, 2, 3)) == 3
    assert projector.apply_batch(events(3, 4, 1)) == 1
    assert projector.apply_batch(events(*range(5, 1305), 7)) == 1300

    rows = dict(db.query("SELECT seq, times FROM tally"))
    assert sorted(rows) == list(range(1, 1305))
    assert set(rows.values()) == {1}
    (status,) = projector.status()
    assert (status.applied_count, status.max_seq) == (1304, 1304)
