"""Test doubles for following a leader, shared by the agent's and the SDK's tests.

:class:`FollowingDetector` is an in-memory detector with ``wait_change`` (the protocol of the
agent's ``LeaderFollower`` and of the SDK's ``LeaderFollowingDetector``): the test says who
leads. :class:`Sleeps` is a sleep seam under which a grown backoff never ends by itself, so a
test can show that only news of the leader ended it, with no wall-clock assertion.
"""

from __future__ import annotations

import asyncio

__all__ = ["FollowingDetector", "Sleeps"]


class FollowingDetector:
    """An in-memory following detector: the test says who leads (None: nobody).

    Answers both as the agent's detector (awaited by calling it) and as the SDK's
    (``detect()``, ``close()``).
    """

    def __init__(self, leader: str | None) -> None:
        self.leader = leader
        self.waiting = asyncio.Event()  # Someone waits for a leader.
        self.watching: list[str] = []  # The addresses wait_change was called with.
        self.watch_began = asyncio.Event()  # Set at each wait_change that blocks.
        self.loop: asyncio.AbstractEventLoop | None = None  # The loop that uses it.
        self._changed = asyncio.Event()

    def set(self, leader: str | None) -> None:
        """Name a new leader (None: nobody leads); wakes every waiter."""
        self.leader = leader
        self._changed.set()
        self._changed = asyncio.Event()

    async def detect(self) -> str:
        """The leader, once one is known."""
        self.loop = asyncio.get_running_loop()
        while self.leader is None:
            self.waiting.set()
            await self._changed.wait()
        self.waiting.clear()
        return self.leader

    async def __call__(self) -> str:
        return await self.detect()

    async def wait_change(self, address: str) -> str | None:
        """Until the leader is another than ``address``; the new one (None: nobody)."""
        self.watching.append(address)
        while self.leader == address:
            self.watch_began.set()
            await self._changed.wait()
        return self.leader

    async def close(self) -> None:
        """Nothing to release."""


class Sleeps:
    """A sleep seam: delays under ``grown`` are slept; longer ones never end by themselves."""

    def __init__(self, grown: float = 0.5) -> None:
        self.grown = grown
        self.delays: list[float] = []
        self.blocked = asyncio.Event()  # A grown backoff began.
        self.cut_short = 0  # Grown backoffs cancelled (by news of the leader).

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if delay < self.grown:
            await asyncio.sleep(delay)
            return
        self.blocked.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cut_short += 1
            raise
