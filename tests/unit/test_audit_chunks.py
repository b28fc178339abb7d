"""The chunks `kosh audit verify` shares out between its two processes hold every sequence
number once, in order, each chunk a perfect subtree in its place, the last ones finer."""

from __future__ import annotations

import pytest

from projections.audit.store_part import chunk_bounds, chunk_plan

PLANS = [
    # total, size, fine, tail
    (100_000, 4096, 512, 2),
    (98_304, 4096, 512, 2),  # a whole number of chunks
    (98_305, 4096, 512, 2),  # one sequence number into a new chunk
    (8192, 4096, 512, 2),  # no more than the tail: all fine
    (5000, 4096, 512, 2),
    (12, 2, 0, 2),  # fine 0: no finer tail
    (12, 4, 2, 2),
    (1, 4096, 512, 2),
]


@pytest.mark.parametrize("total, size, fine, tail", PLANS)
def test_chunks_cover_every_number_once_aligned_with_a_finer_tail(
    total: int, size: int, fine: int, tail: int
) -> None:
    plan = chunk_plan(total, size, fine, tail)
    count = plan[-1]
    bounds = [chunk_bounds(chunk, plan) for chunk in range(count)]
    assert bounds[0][0] == 0 and bounds[-1][1] is None  # the last takes what came since
    ends = [upto for _, upto, _ in bounds[:-1]]
    assert ends == [after for after, _, _ in bounds[1:]]  # no gap, no overlap
    assert ends == sorted(ends) and len(set(ends)) == len(ends)
    assert bounds[-1][0] < total  # no chunk beyond the numbers counted
    for after, upto, start in bounds[:-1]:
        assert start == after  # SQLite numbers densely from 1: leaf index = seq - 1
        width = upto - after
        assert width in {size, fine} and width & (width - 1) == 0 and after % width == 0
    widths = [upto - after for after, upto, _ in bounds[:-1]]
    if 0 < fine < size:
        # every chunk of the last ``tail`` chunks' worth of numbers is fine, and none before
        assert total - bounds[-1][0] <= fine
        assert all(w == fine for w in widths[max(0, -(-total // size) - tail) :])
        assert widths == sorted(widths, reverse=True)
    else:
        assert count == -(-total // size)
