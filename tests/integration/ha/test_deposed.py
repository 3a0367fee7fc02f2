"""A leader whose registry write is refused steps down at once and contends again.

In process (a :class:`~master.runtime.MasterServer` under ``--zk``) so the test can move the
registry under the leader: its next write fails the compare-and-set, as a deposed leader's
would, and it must reload from a fresh election instead of going on with stale state.
"""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from master.config import MasterConfig
from master.registry import UpdateWeights
from master.registry.zookeeper import ZooKeeperRegistry
from master.runtime import MasterServer
from protos.leader_info import parse_zk_url
from protos.leader_zk import KazooZnodeStore, zookeeper_client
from protos.v1 import mesos_pb2, scheduler_pb2, scheduler_pb2_grpc
from tests.integration.ha.conftest import WAIT

pytestmark = pytest.mark.zk


async def _until(predicate: object, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _subscribe_call(name: str) -> scheduler_pb2.Call:
    call = scheduler_pb2.Call(type=scheduler_pb2.Call.SUBSCRIBE)
    call.subscribe.framework_info.CopyFrom(
        mesos_pb2.FrameworkInfo(user="test", name=name, failover_timeout=300)
    )
    return call


async def _subscribed(address: str, name: str) -> bool:
    """Whether a SUBSCRIBE on ``address`` got SUBSCRIBED (False: the stream ended first)."""
    async with grpc.aio.insecure_channel(address) as channel:
        stream = scheduler_pb2_grpc.SchedulerStub(channel).Subscribe(_subscribe_call(name))
        try:
            async with asyncio.timeout(WAIT):
                async for event in stream:
                    return bool(event.type == scheduler_pb2.Event.SUBSCRIBED)
        except grpc.aio.AioRpcError:
            return False
        finally:
            stream.cancel()
    return False


def test_a_refused_write_makes_the_leader_reload_in_a_new_term(zk_url: str) -> None:
    url = parse_zk_url(zk_url)
    config = MasterConfig(
        port=0, zk=url, registry="zookeeper", zk_session_timeout=2.0, allocation_interval=0.2
    )
    client = zookeeper_client(url, session_timeout=5.0)
    client.start(timeout=WAIT)

    async def body() -> None:
        server = MasterServer(config)
        await server.start()
        try:
            await _until(lambda: server.leading, "the master leading")
            assert server.terms == 1
            assert await _subscribed(server.address, "first")
            # Someone else writes the registry (no fence): the leader's version is stale now.
            other = ZooKeeperRegistry(KazooZnodeStore(client), f"{url.path}/registry")
            other.load()
            other.apply([UpdateWeights({"moved": 3.0})])
            # Its next write (this framework's registration) is refused: it steps down ...
            assert not await _subscribed(server.address, "refused")
            # ... and, alone, leads again from a fresh load that has the other's write.
            await _until(lambda: server.terms == 2 and server.leading, "a second term")
            assert await _subscribed(server.address, "second")
            names = {r.info.name for r in other.load().frameworks.values()}
            assert {"first", "second"} <= names
            assert "refused" not in names
            assert other.load().weights == {"moved": 3.0}
        finally:
            await server.stop()

    try:
        asyncio.run(body())
    finally:
        client.stop()
        client.close()
