"""run_blocking: a cancelled caller waits for its worker thread before cleanup can begin."""

from __future__ import annotations

import asyncio
import threading

import pytest

from agent.fetcher.threads import run_blocking


def test_cancellation_waits_for_the_thread() -> None:
    started = threading.Event()
    release = threading.Event()
    finished: list[str] = []

    def blocking() -> str:
        started.set()
        release.wait(30)
        finished.append("done")
        return "done"

    async def scenario() -> None:
        task = asyncio.ensure_future(run_blocking(blocking))
        await asyncio.to_thread(started.wait, 30)
        task.cancel()
        await asyncio.sleep(0)
        assert not task.done(), "the caller must still be waiting for the thread"
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert finished == ["done"]

    asyncio.run(scenario())


def test_results_and_errors_pass_through() -> None:
    def fail() -> None:
        raise OSError("disk on fire")

    async def scenario() -> int:
        with pytest.raises(OSError, match="disk on fire"):
            await run_blocking(fail)
        return await run_blocking(sum, [1, 2, 3])

    assert asyncio.run(scenario()) == 6
