"""Masters elected through ZooKeeper: one leads, the others refuse naming it, handover.

Real ``python -m master --zk`` processes and a real ZooKeeper server.
"""

from __future__ import annotations

import asyncio
import signal

import grpc
import pytest

from emporion.testing.master_processes import leader_of, probe
from protos.v1 import agent_internal_pb2, agent_internal_pb2_grpc
from tests.integration.ha.conftest import MasterFactory, leaders, wait_one_leader

pytestmark = pytest.mark.zk


def test_exactly_one_leads_and_the_others_name_it(zk_masters: MasterFactory) -> None:
    masters = zk_masters(3)
    leader = wait_one_leader(masters)
    for master in masters:
        if master is leader:
            continue
        answer = probe(master.address)
        assert answer.code == grpc.StatusCode.UNAVAILABLE
        assert answer.details == f"not the leading master; the leader is at {leader.address}"
        assert answer.leader == leader.address
    assert probe(leader.address).code == grpc.StatusCode.INVALID_ARGUMENT


def test_a_follower_refuses_agent_streams_naming_the_leader(zk_masters: MasterFactory) -> None:
    masters = zk_masters(2)
    leader = wait_one_leader(masters)
    follower = next(m for m in masters if m is not leader)

    async def connect() -> grpc.aio.AioRpcError:
        async with grpc.aio.insecure_channel(follower.address) as channel:
            stub = agent_internal_pb2_grpc.AgentGatewayStub(channel)
            call = stub.Connect(iter([agent_internal_pb2.AgentMessage()]))
            try:
                await call.read()
            except grpc.aio.AioRpcError as error:
                return error
        raise AssertionError("a follower took an agent stream")

    error = asyncio.run(connect())
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert leader.address in (error.details() or "")
    assert leader_of(error.trailing_metadata()) == leader.address


def test_clean_shutdown_hands_over(zk_masters: MasterFactory) -> None:
    # A session timeout far longer than the wait below: only the withdrawal can hand over.
    masters = zk_masters(2, session_timeout=60.0)
    leader = wait_one_leader(masters)
    other = next(m for m in masters if m is not leader)
    assert leader.stop(signal.SIGTERM) == 0
    assert wait_one_leader([other], timeout=15.0) is other
    assert leaders(masters) == [other]
