"""Blocking work (commands, queries) off the event loop, on a pool of threads.

Starlette's `run_in_threadpool` goes through anyio's capacity limiter and cancellation
checkpoints; under load that bookkeeping was a tenth of the API's CPU. The asyncio
executor does the same job — the caller's context variables (correlation id, actor)
travel with the call — for less."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

# As many as anyio's default limiter: a command mostly waits for its group commit.
WORKERS = 40
_pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="kosh-worker")


async def run_in_threadpool(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    call = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_pool, call)
