"""SimLoop: simulated time and the one queue of everything that is due.

Every node of a simulation (the master, agents, frameworks, the network) schedules its work
here instead of on asyncio: a callback runs at a simulated instant, one at a time, in the order
(time, scheduling order). Nothing reads the wall clock, so one seed always gives one run.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

__all__ = ["SimLoop", "Timer"]


class Timer:
    """Timer is one scheduled callback; ``cancel()`` makes it a no-op."""

    __slots__ = ("at", "callback", "cancelled")

    def __init__(self, at: float, callback: Callable[[], None]) -> None:
        self.at = at
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Do not run the callback."""
        self.cancelled = True


class SimLoop:
    """SimLoop runs callbacks in simulated time (see the module docstring).

    ``now`` starts at ``start`` (seconds since the epoch, like the real cores' ``now``).
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.start = start
        self.now = start
        self.steps = 0
        self._queue: list[tuple[float, int, Timer]] = []
        self._seq = 0

    @property
    def elapsed(self) -> float:
        """Simulated seconds since the start."""
        return self.now - self.start

    def at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` at ``when`` (at once, in order, if that has passed)."""
        timer = Timer(max(when, self.now), callback)
        self._seq += 1
        heapq.heappush(self._queue, (timer.at, self._seq, timer))
        return timer

    def after(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` ``delay`` seconds from now."""
        return self.at(self.now + max(delay, 0.0), callback)

    def run_until(self, when: float, stop: Callable[[], bool] = lambda: False) -> None:
        """Run every callback due up to ``when`` (then set ``now`` to it), or until ``stop()``
        answers True after a callback."""
        queue = self._queue
        while queue and queue[0][0] <= when:
            at, _, timer = heapq.heappop(queue)
            if timer.cancelled:
                continue
            self.now = at
            self.steps += 1
            timer.callback()
            if stop():
                return
        self.now = max(self.now, when)
