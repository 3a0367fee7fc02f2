"""ZooKeeperElection: one master's part in a ``--zk`` group (its session, candidacy and registry).

One kazoo session is shared by the master's :class:`~protos.leader_zk.ZooKeeperContender`, a
:class:`~protos.leader_zk.ZooKeeperDetector` (to name the leader while following) and the
:class:`~master.registry.zookeeper.ZooKeeperRegistry` under ``<path>/registry``. The registry's
writes are *fenced* by the candidate znode this master held when it was last elected, and only
while the contender still leads: a master that lost its session, or stepped down, cannot
write (:class:`~master.registry.RegistryConflictError`).

Kazoo calls its listeners on its own threads; :class:`~protos.leader_aio.AsyncLeadership` and
:class:`~protos.leader_aio.AsyncLeaderDetector` forward them to the loop, where the server
consumes :attr:`ZooKeeperElection.leadership`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from master.registry.zookeeper import ZooKeeperRegistry
from protos.leader_aio import AsyncLeaderDetector, AsyncLeadership
from protos.leader_info import ZkUrl
from protos.leader_zk import (
    KazooZnodeStore,
    ZooKeeperContender,
    ZooKeeperDetector,
    zookeeper_client,
)

__all__ = ["ZooKeeperElection"]

log = logging.getLogger("master.election")


class ZooKeeperElection:
    """ZooKeeperElection contends for leadership under ``url.path`` with candidate ``data``.

    Create it and call :meth:`start` on the master's loop; :attr:`leadership` then yields every
    change of role. :meth:`recontend` gives up the candidacy and contends again from the back
    of the line; :meth:`close` withdraws and ends the session.
    """

    def __init__(
        self, url: ZkUrl, data: bytes, *, grpc_address: str, session_timeout: float
    ) -> None:
        self.url = url
        self.data = data
        self.grpc_address = grpc_address
        self.client: Any = zookeeper_client(url, session_timeout=session_timeout)
        self.detector = ZooKeeperDetector(self.client, url.path)
        self.contender = ZooKeeperContender(self.client, url.path, data)
        self.registry = ZooKeeperRegistry(
            KazooZnodeStore(self.client), f"{url.path}/registry", fence=self._fence_node
        )
        self._fence: str | None = None
        self._leadership: AsyncLeadership | None = None
        self._follower: AsyncLeaderDetector | None = None

    @property
    def leadership(self) -> AsyncLeadership:
        """The current contender's changes of role, on the loop (after :meth:`start`)."""
        assert self._leadership is not None, "start() first"
        return self._leadership

    def start(self) -> None:
        """Connect and contend (returns at once; the loop hears the outcome)."""
        self._follower = AsyncLeaderDetector(self.detector)
        self._leadership = AsyncLeadership(self.contender)  # before start: no change missed
        self.detector.start()
        self.contender.start()
        self.client.start_async()

    def _fence_node(self) -> str | None:
        # Called from the registry's writer threads: a plain read of two attributes.
        return self._fence if self.contender.leading else None

    def pin_fence(self) -> None:
        """Fence registry writes with the candidate znode held now (on being elected)."""
        self._fence = self.contender.node

    def unpin_fence(self) -> None:
        """Refuse every registry write from now on (on stepping down)."""
        self._fence = None

    def leader_address(self) -> str | None:
        """The leading master's gRPC address as last seen, or None while none is known."""
        leader = self._follower.leader if self._follower is not None else None
        if leader is None or leader.grpc_address == self.grpc_address:
            # Ourselves while not serving (between terms, or a stale view): none to name.
            return None
        return leader.grpc_address

    async def recontend(self) -> None:
        """Withdraw the candidacy and contend again with a new one (behind the others)."""
        old, old_leadership = self.contender, self._leadership
        await asyncio.get_running_loop().run_in_executor(None, old.withdraw)
        if old_leadership is not None:
            old_leadership.close()
        self.unpin_fence()
        self.contender = ZooKeeperContender(self.client, self.url.path, self.data)
        self._leadership = AsyncLeadership(self.contender)
        self.contender.start()

    async def close(self) -> None:
        """Withdraw (the next master leads within a round trip) and end the session."""
        self.unpin_fence()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.contender.withdraw)
        if self._leadership is not None:
            self._leadership.close()
        if self._follower is not None:
            self._follower.close()
        self.detector.close()
        await loop.run_in_executor(None, _stop_client, self.client)


def _stop_client(client: Any) -> None:
    client.stop()
    client.close()
