"""The commands of one intake batch, executed side by side where their order cannot matter.

One after another, each command waited for a durable commit of its own (group commit had
nobody to group it with): the intake ran at a fifth of the write path. Commands that
share a case id, or a record key (the sender's way to say "in this order"), stay in one
lane, in the order they arrived; lanes run at once, so their saves share commits.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Commands of a batch in flight at once: as many as the API's worker threads.
LANES = 40


def lanes_of(labels: Sequence[Sequence[Hashable]]) -> list[list[int]]:
    """Indexes of the items, grouped so that items sharing any label are in one lane,
    each lane in the order given; lanes ordered by their first item."""
    parent = list(range(len(labels)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[Hashable, int] = {}
    for i, own in enumerate(labels):
        for label in own:
            j = first.setdefault(label, i)
            if j != i:
                a, b = root(i), root(j)
                parent[max(a, b)] = min(a, b)
    lanes: dict[int, list[int]] = {}
    for i in range(len(labels)):
        lanes.setdefault(root(i), []).append(i)
    return list(lanes.values())


class Lanes:
    """Runs each lane's items in order, the lanes on a pool of threads."""

    def __init__(self, workers: int = LANES) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kosh-intake")

    def run(
        self,
        items: Sequence[T],
        labels: Sequence[Sequence[Hashable]],
        do: Callable[[T], R],
        stop: Callable[[BaseException], bool],
    ) -> list[R | BaseException | None]:
        """`do(item)` of every item, or what it raised. In a lane, once an item raised an
        exception `stop` accepts, the items after it are not run (None)."""
        out: list[R | BaseException | None] = [None] * len(items)

        def lane(indexes: list[int]) -> None:
            for i in indexes:
                try:
                    out[i] = do(items[i])
                except Exception as exc:  # noqa: BLE001 - handed back with its item
                    out[i] = exc
                    if stop(exc):
                        return

        groups = lanes_of(labels)
        if len(groups) == 1:
            lane(groups[0])
        else:
            for done in [self._pool.submit(lane, g) for g in groups]:
                done.result()
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=True)
