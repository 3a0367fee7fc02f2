"""An asyncio loop in a thread of its own, for the frameworks of a chaos scenario.

The scenario itself runs in the calling (main) thread, because every process it starts must be
started from a thread that outlives it (``setpriv --pdeathsig`` kills a child when the thread
that forked it exits) and because a scenario is a plain sequence of blocking steps (crash this,
wait for that). The frameworks are asyncio code and must keep reading, acknowledging and
launching while the scenario blocks: they live on this loop, and the scenario reaches them only
through :meth:`LoopThread.run` (await a coroutine there) and :meth:`LoopThread.query` (call a
function there, so it never reads a framework's state half-way through an update).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread"]

_T = TypeVar("_T")


class LoopThread:
    """A running event loop in a daemon thread; :meth:`close` stops it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="chaos-frameworks", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coroutine: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
        """Run ``coroutine`` on the loop and wait for its result."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"{coroutine!r} took more than {timeout}s") from None

    def query(self, function: Callable[[], _T]) -> _T:
        """Call ``function`` on the loop (between two events) and return what it returned."""

        async def call() -> _T:
            return function()

        return self.run(call(), 30.0)

    def wait_for(self, predicate: Callable[[], bool], timeout: float, every: float = 0.05) -> bool:
        """Poll ``predicate`` (on the loop) until it holds or ``timeout`` passes; whether it did."""
        deadline = time.monotonic() + timeout
        while not self.query(predicate):
            if time.monotonic() > deadline:
                return False
            time.sleep(every)
        return True

    def close(self) -> None:
        """Cancel what still runs on the loop, stop it and join the thread. Idempotent."""
        if self.loop.is_closed():
            return

        async def cancel_all() -> None:
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self._thread.is_alive():
            try:
                self.run(cancel_all(), 10.0)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self._thread.join(10.0)
        if not self._thread.is_alive():
            self.loop.close()
