"""The asyncio side: the SDK's and the agent's zk:// master detectors and the leadership
iterator, following real contenders through a real ZooKeeper server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from agent.master_detector import ZooKeeperMasterDetector as AgentDetector
from agent.master_detector import is_zk_url, parse_zk_master
from emporion.testing.zookeeper import ZooKeeperCluster
from framework_sdk.detector import MasterDetector
from framework_sdk.zk_detector import ZooKeeperMasterDetector as SdkDetector
from framework_sdk.zk_detector import create
from protos.leader import Leadership, ZooKeeperContender, master_info_json
from protos.leader_aio import AsyncLeaderDetector, AsyncLeadership
from protos.leader_zk import ZooKeeperDetector
from protos.v1 import mesos_pb2
from tests.zk.conftest import ClientFactory

pytestmark = pytest.mark.zk

WAIT = 30.0


async def until(predicate: Callable[[], object]) -> None:
    """Poll ``predicate`` until true (the caller bounds the wait)."""
    while not predicate():
        await asyncio.sleep(0.02)


def contender(clients: ClientFactory, hosts: str, path: str, port: int) -> ZooKeeperContender:
    info = mesos_pb2.MasterInfo(id=f"m{port}", hostname="127.0.0.1", port=port)
    data = master_info_json(info, grpc_address=f"127.0.0.1:{port}")
    return ZooKeeperContender(clients(hosts), path, data)


def test_sdk_detector_finds_the_leader_and_follows_a_failover(
    zk_server: ZooKeeperCluster, zk_clients: ClientFactory, zk_path: str
) -> None:
    detector = SdkDetector(zk_server.url(zk_path))  # Made outside any loop, as drivers do.
    assert isinstance(detector, MasterDetector)
    a = contender(zk_clients, zk_server.hosts, zk_path, 6001)
    b = contender(zk_clients, zk_server.hosts, zk_path, 6002)

    async def main() -> list[str | None]:
        waiting = asyncio.ensure_future(detector.detect())  # Waits: nobody leads yet.
        a.start()
        first = await asyncio.wait_for(waiting, WAIT)
        b.start()
        await asyncio.wait_for(until(lambda: b.node is not None), WAIT)
        assert detector.leader is not None
        assert detector.leader.master_id == "m6001"
        change = asyncio.ensure_future(detector.wait_change(first))
        await asyncio.to_thread(a.withdraw)
        second = await asyncio.wait_for(change, WAIT)
        await detector.close()
        await detector.close()  # Idempotent.
        reopened = await asyncio.wait_for(detector.detect(), WAIT)  # A new session.
        await detector.close()
        return [first, second, reopened]

    try:
        assert asyncio.run(main()) == ["127.0.0.1:6001", "127.0.0.1:6002", "127.0.0.1:6002"]
    finally:
        b.withdraw()


def test_agent_detector_is_a_master_link_detector(
    zk_server: ZooKeeperCluster, zk_clients: ClientFactory, zk_path: str
) -> None:
    url = zk_server.url(zk_path)
    assert is_zk_url(url)
    assert not is_zk_url("127.0.0.1:5050")
    assert parse_zk_master(url).path == zk_path
    detector = AgentDetector(url, session_timeout=2.0)
    a = contender(zk_clients, zk_server.hosts, zk_path, 7001)

    async def main() -> tuple[str, str | None]:
        a.start()
        target = await asyncio.wait_for(detector(), WAIT)
        gone = asyncio.ensure_future(detector.wait_change(target))
        await asyncio.to_thread(a.withdraw)
        after = await asyncio.wait_for(gone, WAIT)
        await detector.close()
        return target, after

    assert asyncio.run(main()) == ("127.0.0.1:7001", None)


def test_leadership_iterator_yields_every_change_in_order(
    zk_server: ZooKeeperCluster, zk_clients: ClientFactory, zk_path: str
) -> None:
    a = contender(zk_clients, zk_server.hosts, zk_path, 8001)

    async def main() -> list[Leadership]:
        leadership = AsyncLeadership(a)
        a.start()
        elected = await asyncio.wait_for(leadership.wait_leading(), WAIT)
        assert leadership.leading
        await asyncio.to_thread(a.withdraw)
        lost = await asyncio.wait_for(leadership.next(), WAIT)
        leadership.close()
        return [elected, lost]

    elected, lost = asyncio.run(main())
    assert elected.leading
    assert elected.term == 1
    assert lost == Leadership(False, "withdrew", 1)


def test_async_detector_changes_start_with_the_current_leader(
    zk_server: ZooKeeperCluster, zk_clients: ClientFactory, zk_path: str
) -> None:
    a = contender(zk_clients, zk_server.hosts, zk_path, 9001)
    follower = ZooKeeperDetector(zk_clients(zk_server.hosts), zk_path)

    async def main() -> list[str | None]:
        detector = AsyncLeaderDetector(follower)
        follower.start()
        a.start()
        seen: list[str | None] = []
        async for leader in detector.changes():
            seen.append(leader.master_id if leader else None)
            if leader is not None:
                await asyncio.to_thread(a.withdraw)
            elif len(seen) > 1:
                break
        detector.close()
        return seen

    seen = asyncio.run(asyncio.wait_for(main(), WAIT))
    follower.close()
    assert seen[-2:] == ["m9001", None]


def test_detectors_refuse_malformed_urls() -> None:
    with pytest.raises(ValueError, match="needs a path"):
        create("zk://127.0.0.1:2181")
    with pytest.raises(ValueError, match="invalid port"):
        AgentDetector("zk://127.0.0.1:99999/emporion")
