"""``zk://`` master detection for the agent: follow the leading master through ZooKeeper.

The agent's :class:`~agent.runtime.master_link.MasterLink` asks a *detector* (an async callable
returning a gRPC target) where the master is before each connection attempt.
:class:`ZooKeeperMasterDetector` is that callable for ``--master zk://h1:2181,h2:2181/emporion``:
it watches the masters' candidate znodes (Mesos's ``json.info_NNNNNNNNNN``) and answers the
leading master's gRPC address, waiting while no master leads. Its ``wait_change`` lets the link
drop a session with a master that stopped leading without waiting for its pings to time out.
The ZooKeeper session starts on first use and ends with ``close()``.
"""

from __future__ import annotations

from protos.leader_aio import ZooKeeperLeaderFollower
from protos.leader_info import LeaderInfo, ZkUrl, parse_zk_url

__all__ = ["ZooKeeperMasterDetector", "is_zk_url", "parse_zk_master"]


def is_zk_url(text: str) -> bool:
    """Whether a ``--master`` value names ZooKeeper (``zk://...``) rather than ``host:port``."""
    return text.strip().lower().startswith("zk://")


def parse_zk_master(text: str) -> ZkUrl:
    """A ``--master zk://...`` value, parsed; ValueError naming what is wrong."""
    return parse_zk_url(text)


class ZooKeeperMasterDetector:
    """ZooKeeperMasterDetector: ``await detector()`` is the leading master's gRPC target.

    Raises ValueError at construction for a malformed URL.
    """

    def __init__(self, url: str | ZkUrl, *, session_timeout: float = 10.0) -> None:
        self._follower = ZooKeeperLeaderFollower(url, session_timeout=session_timeout)

    @property
    def url(self) -> ZkUrl:
        """The ZooKeeper URL followed."""
        return self._follower.url

    @property
    def leader(self) -> LeaderInfo | None:
        """The leading master as last seen, or None."""
        return self._follower.leader

    async def __call__(self) -> str:
        """Where the leading master takes agents (its gateways' port if it has gateways, else
        its gRPC ``host:port``); waits while no master leads."""
        leader = await self._follower.wait_leader()
        return leader.agents_target

    async def wait_change(self, target: str) -> str | None:
        """After a call: wait until the leader is no longer at ``target``; the new leader's
        target, or None while none leads."""
        leader = self._follower.leader
        while leader is not None and leader.agents_target == target:
            leader = await self._follower.wait_change(leader)
        return leader.agents_target if leader is not None else None

    async def close(self) -> None:
        """End the ZooKeeper session. Idempotent."""
        await self._follower.close()

    def __repr__(self) -> str:
        return f"ZooKeeperMasterDetector({str(self._follower.url)!r})"
