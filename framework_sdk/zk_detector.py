"""``zk://`` master detection for schedulers: follow the leading master through ZooKeeper.

``ZooKeeperMasterDetector("zk://h1:2181,h2:2181/emporion")`` is a
:class:`~framework_sdk.detector.MasterDetector`: ``detect()`` answers the leading master's gRPC
address, waiting while no master leads. It watches the masters' candidate znodes (Mesos's
``json.info_NNNNNNNNNN``), so after a failover the client's next ``detect()`` already knows the
new leader. The ZooKeeper session starts on first use, so a detector can be created before any
event loop runs (as the classic driver does); ``close()`` ends it.

:func:`create` is the factory registered for the ``zk`` scheme.
"""

from __future__ import annotations

from protos.leader_aio import ZooKeeperLeaderFollower
from protos.leader_info import LeaderInfo

__all__ = ["ZooKeeperMasterDetector", "create"]


class ZooKeeperMasterDetector:
    """ZooKeeperMasterDetector finds the leading master under a ``zk://`` URL.

    Raises ValueError at construction for a malformed URL (the message names the part).
    """

    def __init__(self, url: str, *, session_timeout: float = 10.0) -> None:
        self._follower = ZooKeeperLeaderFollower(url, session_timeout=session_timeout)

    @property
    def leader(self) -> LeaderInfo | None:
        """The leading master as last seen (its MasterInfo and addresses), or None."""
        return self._follower.leader

    async def detect(self) -> str:
        """The leading master's gRPC ``host:port``; waits while no master leads."""
        leader = await self._follower.wait_leader()
        return leader.grpc_address

    async def wait_change(self, address: str) -> str | None:
        """After :meth:`detect`: wait until the leader is no longer the master at ``address``;
        the new leader's address, or None while none leads. A client may race this against its
        subscription, to leave a deposed master at once."""
        leader = self._follower.leader
        while leader is not None and leader.grpc_address == address:
            leader = await self._follower.wait_change(leader)
        return leader.grpc_address if leader is not None else None

    async def close(self) -> None:
        """End the ZooKeeper session. Idempotent."""
        await self._follower.close()

    def __repr__(self) -> str:
        return f"ZooKeeperMasterDetector({str(self._follower.url)!r})"


def create(url: str) -> ZooKeeperMasterDetector:
    """The detector for ``url``: the factory for ``register_scheme("zk", create)``."""
    return ZooKeeperMasterDetector(url)
