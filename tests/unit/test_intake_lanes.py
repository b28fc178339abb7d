"""The intake runs a batch's commands side by side, except those whose order matters:
commands on one case, or under one record key, run one after another as they came."""

from __future__ import annotations

import threading
import time

from consumers.intake_lanes import Lanes, lanes_of


def test_commands_sharing_a_case_or_a_key_share_a_lane_in_arrival_order() -> None:
    labels = [
        [("key", b"a")],                    # 0
        [("case", "c1"), ("key", b"b")],    # 1
        [],                                 # 2: a submission with no key: alone
        [("case", "c1")],                   # 3: same case as 1
        [("key", b"a")],                    # 4: same key as 0
        [("key", b"b"), ("case", "c2")],    # 5: same key as 1, so after 1 and 3
        [("case", "c2")],                   # 6: same case as 5
    ]
    assert lanes_of(labels) == [[0, 4], [1, 3, 5, 6], [2]]


def test_a_label_can_join_two_lanes_met_earlier() -> None:
    labels = [[("case", "x")], [("case", "y")], [("case", "x"), ("case", "y")]]
    assert lanes_of(labels) == [[0, 1, 2]]


def test_lanes_run_at_once_and_in_order_within() -> None:
    lanes = Lanes(workers=4)
    running, most = 0, 0
    lock = threading.Lock()
    order: list[int] = []

    def do(item: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
            order.append(item)
        return item * 10

    try:
        out = lanes.run([0, 1, 2, 3], [[("case", "a")], [], [("case", "a")], []], do,
                        stop=lambda exc: True)
    finally:
        lanes.close()
    assert out == [0, 10, 20, 30]
    assert most == 3, "three lanes: the two commands on case a, and two alone"
    assert order.index(0) < order.index(2)


def test_a_lane_stops_after_an_error_that_stops_it_and_the_others_go_on() -> None:
    lanes = Lanes(workers=2)

    def do(item: str) -> str:
        if item.startswith("down"):
            raise ConnectionError(item)
        if item.startswith("bad"):
            raise ValueError(item)
        return item.upper()

    try:
        out = lanes.run(
            ["down", "after-down", "bad", "after-bad", "alone"],
            [[("k", 1)], [("k", 1)], [("k", 2)], [("k", 2)], []],
            do,
            stop=lambda exc: isinstance(exc, ConnectionError),
        )
    finally:
        lanes.close()
    assert isinstance(out[0], ConnectionError)
    assert out[1] is None, "not run after the lane's transient failure"
    assert isinstance(out[2], ValueError)
    assert out[3] == "AFTER-BAD", "a failure that does not stop the lane is that command's own"
    assert out[4] == "ALONE"
