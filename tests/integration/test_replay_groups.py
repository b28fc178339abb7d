"""A rebuild in two processes (`projections.rebuild_split`) writes what the rebuild in one
writes, from the store and from the events topic; a group that fails leaves neither a
half-built target nor a scratch file, nor a process behind."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.bootstrap import all_projections, registers_database
from api.replay_topic import topic_rows
from bench.workload import run_pairs, submissions
from infra.application import KoshApplication
from infra.settings import Settings
from infra.sql import Database
from projections.rebuild_split import can_split, groups_of, rebuild_in_groups
from projections.replay import StoreReader, decoded, rebuild, table_names, wanted_by
from projections.replay_decoding import decode_row, open_row
from tests.integration.test_replay import contents, live_city  # noqa: F401 - a fixture


@pytest.fixture
def store(settings: Settings) -> Iterator[KoshApplication]:
    """A store of registrations submitted and approved (sealed personal data in them)."""
    app = KoshApplication(settings)
    run_pairs(app, submissions(40), writers=4)
    try:
        yield app
    finally:
        app.close()


def single_process(app: KoshApplication, into: Path) -> Database:
    reader = StoreReader(app.recorder, app.mapper)
    db = Database(None, into)
    wanted = wanted_by(all_projections())
    rebuild(db, all_projections(),
            (d for page in reader.rows() for d in decoded(reader.mapper, page, wanted)))
    return db


def in_groups(app: KoshApplication, into: Path, page: int = 5000) -> Database:
    reader = StoreReader(app.recorder, app.mapper, page=page)
    db = Database(None, into)
    assert can_split(db, all_projections())
    rebuild_in_groups(db, all_projections(), reader.rows(), reader.mapper, batch=page)
    return db


def indexes(db: Database) -> list[Any]:
    return db.query("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT "
                    "NULL ORDER BY 1")


def status(db: Database) -> list[Any]:
    return db.query("SELECT projection, applied_count, max_seq FROM projection_status "
                    "ORDER BY 1")


def test_a_state_opened_for_the_child_decodes_to_the_event_the_sealed_one_gives(
        store: KoshApplication) -> None:
    reader = StoreReader(store.recorder, store.mapper)
    opened_any = False
    for page in reader.rows():
        for row in page:
            opened = open_row(reader.mapper, row)
            expected = decode_row(reader.mapper, *row[1:])
            if opened is None:
                continue
            opened_any = True
            assert b'"$sealed"' not in opened
            again = decode_row(reader.mapper, row[1], row[2], row[3], opened)
            assert type(again) is type(expected)
            assert again.__dict__ == expected.__dict__
            assert list(again.__dict__) == list(expected.__dict__)  # same keys, same order
    assert opened_any


@pytest.mark.parametrize("page", [7, 5000])
def test_a_rebuild_in_two_processes_equals_the_rebuild_in_one(store: KoshApplication,
                                                              tmp_path: Path,
                                                              page: int) -> None:
    one = single_process(store, tmp_path / "one" / "one.sqlite")
    two = in_groups(store, tmp_path / "two" / "two.sqlite", page=page)
    assert contents(two) == contents(one)
    assert status(two) == status(one)
    assert indexes(two) == indexes(one)
    assert sorted(f.name for f in (tmp_path / "two").iterdir()) == [
        "two.sqlite", "two.sqlite.writer-lock"]


def test_the_groups_split_the_costliest_registers() -> None:
    first, second = groups_of(all_projections())
    assert {p.name for p in first} | {p.name for p in second} == {
        p.name for p in all_projections()}
    assert not {p.name for p in first} & {p.name for p in second}
    assert {"residents", "monitoring"} - {p.name for p in first}  # not both in one group
    assert {"residents", "monitoring"} - {p.name for p in second}


def test_rebuilds_in_two_processes_from_the_store_and_the_topic_equal_the_live_registers(
        live_city: Settings, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    live = contents(registers_database(live_city))
    app = KoshApplication(live_city)
    try:
        reader = StoreReader(app.recorder, app.mapper)
        head = reader.head()
        from_store = Database(None, tmp_path / "store.sqlite")
        rebuild_in_groups(from_store, all_projections(), reader.rows(stop=head), reader.mapper)
        from_topic = Database(None, tmp_path / "topic.sqlite")
        pages = topic_rows(live_city, reader, head, lambda n: None,
                           wanted=wanted_by(all_projections()))
        rebuild_in_groups(from_topic, all_projections(), pages, reader.mapper)
    finally:
        app.close()
    assert contents(from_store) == live
    assert contents(from_topic) == live


class Refusing:
    """A register that refuses the 30th registration event it is given."""

    name, ddl, handles = "refusing", ("CREATE TABLE IF NOT EXISTS refusing (seq BIGINT)",), (
        "RegistrationCase.",)

    def __init__(self) -> None:
        self.seen = 0

    def apply(self, cur: Any, seq: int, event: Any) -> None:
        self.seen += 1
        if self.seen == 30:
            raise RuntimeError("refused")
        cur.execute("INSERT INTO refusing (seq) VALUES (?)", (seq,))


def test_a_group_that_fails_leaves_no_partial_target_nor_scratch_file(
        store: KoshApplication, tmp_path: Path) -> None:
    projections = [*all_projections(), Refusing()]
    reader = StoreReader(store.recorder, store.mapper, page=10)
    out = tmp_path / "out"
    db = Database(None, out / "target.sqlite")
    with pytest.raises(RuntimeError, match="refused"):
        rebuild_in_groups(db, projections, reader.rows(), reader.mapper, batch=10)
    assert_nothing_left(db, out, projections)


def test_a_source_that_fails_leaves_no_partial_target_nor_scratch_file_nor_process(
        store: KoshApplication, tmp_path: Path) -> None:
    reader = StoreReader(store.recorder, store.mapper, page=10)

    def failing() -> Iterator[list[Any]]:
        pages = reader.rows()
        yield next(pages)
        yield next(pages)
        raise ConnectionError("the topic went away")

    out = tmp_path / "out"
    db = Database(None, out / "target.sqlite")
    with pytest.raises(ConnectionError):
        rebuild_in_groups(db, all_projections(), failing(), reader.mapper, batch=10)
    assert_nothing_left(db, out, all_projections())


def assert_nothing_left(db: Database, out: Path, projections: list[Any]) -> None:
    tables = {r[0] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert not tables & {t for p in projections for t in table_names(p)}
    assert not tables & {"projection_applied", "projection_floor", "projection_status"}
    # The target file and its writer lock, as any rebuild leaves them; nothing else.
    assert sorted(f.name for f in out.iterdir()) == ["target.sqlite", "target.sqlite.writer-lock"]
    assert multiprocessing.active_children() == []
