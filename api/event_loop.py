"""The event loop `kosh up` runs on: uvloop when installed (uvicorn[standard] brings it).

On two cores the API, the publisher, the projections and the clients share the CPU; the
stock asyncio loop's Python-level scheduling, socket reads and callbacks were a large part
of the API's per-request cost. uvloop does that work in C, so the same commands leave more
CPU to the rest of the pipeline. Without it the stock loop runs: behaviour is the same."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
