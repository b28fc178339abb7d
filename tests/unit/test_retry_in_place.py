"""A consumer's batch that fails is tried again in place until it goes through, and one
that hangs is reported with the stack it hangs in."""

from __future__ import annotations

import asyncio
import threading

from structlog.testing import capture_logs

from consumers.retry_in_place import until_done


def test_a_failing_batch_is_tried_again_until_it_goes_through() -> None:
    calls: list[int] = []
    reported: list[tuple[str, int]] = []

    def work() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError(f"broker away ({len(calls)})")
        return "answered"

    got = asyncio.run(until_done(work, lambda e, n: reported.append((str(e), n)), 0.01))
    assert got == "answered"
    assert reported == [("broker away (1)", 1), ("broker away (2)", 2)]


def test_an_attempt_that_runs_on_is_reported_with_the_stack_it_waits_in() -> None:
    release = threading.Event()

    def waits_for_a_reply_that_never_comes() -> str:
        release.wait(5)
        return "late"

    async def run() -> str:
        asyncio.get_running_loop().call_later(0.35, release.set)
        return await until_done(waits_for_a_reply_that_never_comes, lambda e, n: None, 0.01,
                                stuck_after_s=0.1)

    with capture_logs() as logs:
        assert asyncio.run(run()) == "late"
    stuck = [e for e in logs if e["event"] == "consumer.attempt_stuck"]
    assert len(stuck) >= 2 and all(e["log_level"] == "error" for e in stuck)
    first_stack = stuck[0]["stacks"].split("thread(s):")[0]
    assert "waits_for_a_reply_that_never_comes" in first_stack
