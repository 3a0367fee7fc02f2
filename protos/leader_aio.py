"""asyncio adapters of :mod:`protos.leader`: leadership and leader changes as awaitables.

Contenders and detectors call their listeners on their own threads; these adapters forward each
call to one event loop with ``loop.call_soon_threadsafe``, so everything a program does with the
result happens on its loop, where its state lives.

* :class:`AsyncLeadership` turns a contender's changes into an async iterator of
  :class:`~protos.leader_info.Leadership`, none skipped (a master must see every loss, even one
  followed at once by a new term).
* :class:`AsyncLeaderDetector` follows a detector: the current leader, waiting for one, waiting
  for a change. Intermediate leaders may be skipped: only the latest matters.
* :class:`ZooKeeperLeaderFollower` owns a ZooKeeper client and detector for a ``zk://`` URL:
  what the SDK's and the agent's master detectors are built on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from protos.leader import LeaderContender, LeaderDetector
from protos.leader_info import LeaderInfo, Leadership, ZkUrl, parse_zk_url
from protos.leader_zk import ZooKeeperDetector, zookeeper_client

__all__ = ["AsyncLeaderDetector", "AsyncLeadership", "ZooKeeperLeaderFollower"]


def _forwarder(
    loop: asyncio.AbstractEventLoop, target: Callable[[Any], None]
) -> Callable[[Any], None]:
    """A listener that runs ``target(value)`` on ``loop`` (dropped once the loop is closed)."""

    def forward(value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # The loop closed: nobody is listening.
            loop.call_soon_threadsafe(target, value)

    return forward


class AsyncLeadership:
    """AsyncLeadership is a contender's role as seen from one event loop.

    Create it on the loop *before* starting the contender, so no change is missed; ``async for
    change in leadership`` yields every :class:`Leadership` in order. ``leading`` is the role as
    of the last change delivered to the loop.
    """

    def __init__(self, contender: LeaderContender) -> None:
        self._queue: asyncio.Queue[Leadership] = asyncio.Queue()
        self.leading = contender.leading
        self.term = 0
        self._remove = contender.add_listener(
            _forwarder(asyncio.get_running_loop(), self._queue.put_nowait)
        )

    async def next(self) -> Leadership:
        """The next change of role."""
        change = await self._queue.get()
        self.leading = change.leading
        self.term = change.term
        return change

    def __aiter__(self) -> AsyncIterator[Leadership]:
        return self

    async def __anext__(self) -> Leadership:
        return await self.next()

    async def wait_leading(self) -> Leadership:
        """Wait until elected; the change that elected us."""
        while True:
            change = await self.next()
            if change.leading:
                return change

    def close(self) -> None:
        """Stop listening to the contender."""
        self._remove()


class AsyncLeaderDetector:
    """AsyncLeaderDetector follows a :class:`~protos.leader.LeaderDetector` from one loop.

    Create it on the loop that uses it. ``leader`` is the latest leader delivered to the loop.
    """

    def __init__(self, detector: LeaderDetector) -> None:
        self._changed = asyncio.Event()
        self._remove = detector.add_listener(_forwarder(asyncio.get_running_loop(), self._set))
        # Read after listening: a change racing with this read is delivered afterwards.
        self.leader: LeaderInfo | None = detector.leader

    def _set(self, leader: LeaderInfo | None) -> None:
        self.leader = leader
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_leader(self) -> LeaderInfo:
        """The leader, waiting until one is known."""
        while self.leader is None:
            await self._changed.wait()
        return self.leader

    async def wait_change(self, than: LeaderInfo | None) -> LeaderInfo | None:
        """Wait until the leader is not ``than`` (another master, or none); the new value."""
        while self._same(self.leader, than):
            await self._changed.wait()
        return self.leader

    @staticmethod
    def _same(a: LeaderInfo | None, b: LeaderInfo | None) -> bool:
        if a is None or b is None:
            return a is b
        return a.same_master(b)

    async def changes(self) -> AsyncIterator[LeaderInfo | None]:
        """The current leader, then each different one (intermediate values may be skipped)."""
        current = self.leader
        yield current
        while True:
            current = await self.wait_change(current)
            yield current

    def close(self) -> None:
        """Stop listening to the detector."""
        self._remove()


class ZooKeeperLeaderFollower:
    """ZooKeeperLeaderFollower follows the leading master under a ``zk://`` URL.

    It owns its ZooKeeper client, connected on first use from a running loop (so it can be
    created anywhere, e.g. in a driver's constructor) and stopped by :meth:`close`; used again
    after that, it connects again. Raises ValueError at construction for a malformed URL.
    """

    def __init__(self, url: ZkUrl | str, *, session_timeout: float = 10.0) -> None:
        self.url = parse_zk_url(url) if isinstance(url, str) else url
        self.session_timeout = session_timeout
        self._client: Any = None
        self._detector: ZooKeeperDetector | None = None
        self._follower: AsyncLeaderDetector | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _ensure_started(self) -> AsyncLeaderDetector:
        loop = asyncio.get_running_loop()
        if self._follower is not None and self._loop is loop:
            return self._follower
        if self._follower is not None:  # Used from a new loop: listen from there instead.
            self._follower.close()
        start = self._client is None
        if start:
            self._client = zookeeper_client(self.url, session_timeout=self.session_timeout)
            self._detector = ZooKeeperDetector(self._client, self.url.path)
        assert self._detector is not None
        self._follower = AsyncLeaderDetector(self._detector)
        self._loop = loop
        if start:
            self._detector.start()
            self._client.start_async()  # Returns at once; the detector hears CONNECTED.
        return self._follower

    @property
    def leader(self) -> LeaderInfo | None:
        """The leader as last seen (None before the first look)."""
        return self._follower.leader if self._follower is not None else None

    async def wait_leader(self) -> LeaderInfo:
        """The leading master, waiting until one is known."""
        return await self._ensure_started().wait_leader()

    async def wait_change(self, than: LeaderInfo | None) -> LeaderInfo | None:
        """Wait until the leader is not ``than``; the new leader (None: none right now)."""
        return await self._ensure_started().wait_change(than)

    async def close(self) -> None:
        """Stop following and end the ZooKeeper session (a later use opens a new one).
        Idempotent."""
        follower, detector, client = self._follower, self._detector, self._client
        self._follower = self._detector = self._client = self._loop = None
        if follower is not None:
            follower.close()
        if detector is not None:
            detector.close()
        if client is not None:
            await asyncio.get_running_loop().run_in_executor(None, _stop_client, client)

    def __repr__(self) -> str:
        return f"ZooKeeperLeaderFollower({str(self.url)!r})"


def _stop_client(client: Any) -> None:
    client.stop()
    client.close()
