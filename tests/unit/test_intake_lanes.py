"""The intake runs a batch's partitions side by side, each partition's records in offset
order; a failed lane fails the batch only after every lane ended."""

from __future__ import annotations

import threading
import time
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor

import pytest

from consumers.intake import _all_of, _by_partition

Record = namedtuple("Record", "topic partition offset")


def test_records_are_grouped_by_partition_in_offset_order() -> None:
    records = [Record("c", p, o) for o in range(5) for p in (2, 0, 1)]
    lanes = _by_partition(records)
    assert [[r.partition for r in lane] for lane in lanes] == [[2] * 5, [0] * 5, [1] * 5]
    assert all([r.offset for r in lane] == list(range(5)) for lane in lanes)


def test_a_failed_lane_waits_for_the_others() -> None:
    finished = threading.Event()

    def slow() -> list[int]:
        time.sleep(0.2)
        finished.set()
        return [1]

    def failing() -> list[int]:
        raise ConnectionError("database away")

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(failing), pool.submit(slow)]
        with pytest.raises(ConnectionError):
            _all_of(futures)
        assert finished.is_set()
