"""Agent gateways of a secured master: the gateway serves TLS and authenticates agents with the
master's flags; who owns an agent id is still decided by the master (through the relay)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc import aio

from protos.resources import Resources
from protos.security import ClientCredential, TlsConfig
from protos.v1 import agent_internal_pb2
from tests.integration.security_auth.support import Secured, credential, fake_agent, secured_master
from tests.integration.security_auth.test_agent_ownership import (
    RESOURCES,
    assert_held,
    refused_reregistration,
    reregister,
)


async def refused(
    address: str, tls: TlsConfig | None, who: ClientCredential
) -> tuple[grpc.StatusCode, str]:
    """How the stream of an agent registering as ``who`` ends (it must not be answered)."""
    agent = await fake_agent(address, tls, who)
    hello = agent_internal_pb2.AgentMessage()
    hello.register_agent.agent_info.hostname = "refused-host"
    hello.register_agent.agent_info.resources.extend(Resources.parse(RESOURCES).to_protos())
    try:
        call = agent.stub.ConnectBatched(iter([agent_internal_pb2.AgentMessages(messages=[hello])]))
        with pytest.raises(aio.AioRpcError) as caught:
            await _no_reply(call)
        return caught.value.code(), caught.value.details() or ""
    finally:
        await agent.close()


async def _no_reply(call: aio.StreamStreamCall[Any, Any]) -> None:
    async for reply in call:
        raise AssertionError(f"answered: {reply}")


def test_a_secured_masters_gateway_authenticates_and_the_master_authorizes(
    secured: Secured, tmp_path: Path
) -> None:
    config = secured.master_config(registry="file", work_dir=tmp_path / "master", agent_gateways=1)
    tls = secured.tls()

    async def main() -> None:
        async with secured_master(config) as server:
            address = server.agent_address
            assert address is not None
            assert address != server.address
            agent = await fake_agent(address, tls, credential("agent-1"))
            agent_id = await agent.register(RESOURCES)
            await agent.close()
            # A wrong secret: refused by the gateway, before any session.
            code, details = await refused(address, tls, credential("agent-1", "not-the-secret"))
            assert code == grpc.StatusCode.UNAUTHENTICATED, details
            assert "authentication failed" in details
            # No TLS: the gateway serves TLS only.
            code, details = await refused(address, None, credential("agent-1"))
            assert code == grpc.StatusCode.UNAVAILABLE, details
            # Another principal reregistering agent-1's id: the master refuses it, by owner.
            error = await refused_reregistration(address, tls, credential("agent-2"), agent_id)
            assert_held(error, "agent-2", agent_id, "agent-1")
            real = await reregister(address, tls, credential("agent-1"), agent_id)
            assert not real.of("shutdown")
            await real.close()

    asyncio.run(main())
