"""Agent-id ownership survives the master: the principal that registered an agent is kept in the
registry, so after a failover (three masters on ZooKeeper, the leader killed) or a restart (the
file registry) an impostor principal that reregisters the agent's id first is refused, naming
the owner, and the real agent reregisters as before. A registry written before owners were kept
has none recorded: the first reregistration claims the id, as a master's memory did.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc import aio

from master.registry.codec import StateCodec
from master.registry.file import FileRegistry
from protos.resources import Resources
from protos.security import ClientCredential, TlsConfig
from protos.v1 import agent_internal_pb2
from tests.integration.ha.conftest import WAIT, MasterFactory, wait_until
from tests.integration.master.clients import FakeAgent, wait_for
from tests.integration.security_auth.support import Secured, credential, fake_agent, secured_master
from tests.integration.security_auth.test_ha import leader_info, secured_flags

RESOURCES = "cpus:4;mem:1024"


def reregistration(agent_id: str) -> agent_internal_pb2.AgentMessage:
    """ReregisterAgent under ``agent_id``, with what the agent registered with."""
    message = agent_internal_pb2.AgentMessage()
    info = message.reregister_agent.agent_info
    info.id.value = agent_id
    info.hostname = "fake-host"
    info.resources.extend(Resources.parse(RESOURCES).to_protos())
    return message


async def _drain(call: aio.StreamStreamCall[Any, Any]) -> None:
    async for message in call:
        raise AssertionError(f"the impostor was answered: {message}")


async def refused_reregistration(
    address: str, tls: TlsConfig, who: ClientCredential, agent_id: str
) -> aio.AioRpcError:
    """``who`` reregisters ``agent_id``; the error that ends its stream (a master that does not
    lead yet, just elected, is asked again)."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while True:
        impostor = await fake_agent(address, tls, who)
        await impostor.send(reregistration(agent_id))
        try:
            with pytest.raises(aio.AioRpcError) as caught:
                await _drain(impostor.stub.Connect(impostor._messages()))
        finally:
            await impostor.close()
        not_leading = caught.value.code() == grpc.StatusCode.UNAVAILABLE
        if not not_leading or asyncio.get_running_loop().time() > deadline:
            return caught.value
        await asyncio.sleep(0.1)


async def reregister(
    address: str, tls: TlsConfig, who: ClientCredential, agent_id: str
) -> FakeAgent:
    """``who`` reregisters ``agent_id`` and is answered AgentReregistered."""
    agent = await fake_agent(address, tls, who)
    await agent.send(reregistration(agent_id))
    call = agent.stub.Connect(agent._messages())
    agent._reader = asyncio.get_running_loop().create_task(agent._read(call))
    await wait_for(lambda: bool(agent.of("agent_reregistered")), "AgentReregistered")
    agent.agent_id = agent_id
    return agent


def assert_held(error: aio.AioRpcError, principal: str, agent_id: str, owner: str) -> None:
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED, error
    assert error.details() == (
        f"principal {principal!r} is not authorized to register_agents: agent {agent_id} is"
        f" held by principal {owner!r}: only it may reregister that agent"
    )


@pytest.mark.zk
def test_agent_ownership_survives_a_failover(
    secured: Secured, zk_url: str, zk_masters: MasterFactory
) -> None:
    masters = zk_masters(3, extra_args=secured_flags(secured))
    first = leader_info(zk_url)
    tls = secured.tls()

    async def register() -> str:
        agent = await fake_agent(first.grpc_address, tls, credential("agent-1"))
        agent_id = await agent.register(RESOURCES)
        await agent.close()
        return agent_id

    agent_id = asyncio.run(register())
    next(m for m in masters if m.address == first.grpc_address).send(signal.SIGKILL)
    wait_until(
        lambda: leader_info(zk_url).grpc_address != first.grpc_address, "a new leader's znode"
    )
    second = leader_info(zk_url).grpc_address

    async def after_failover() -> None:
        # The impostor comes first: the new leader learnt the owner from the registry.
        error = await refused_reregistration(second, tls, credential("agent-2"), agent_id)
        assert_held(error, "agent-2", agent_id, "agent-1")
        real = await reregister(second, tls, credential("agent-1"), agent_id)
        assert not real.of("shutdown")
        await real.close()

    asyncio.run(after_failover())


def test_agent_ownership_survives_a_restart(secured: Secured, tmp_path: Path) -> None:
    config = secured.master_config(registry="file", work_dir=tmp_path / "master")
    tls = secured.tls()

    async def main() -> None:
        async with secured_master(config) as server:
            agent = await fake_agent(server.address, tls, credential("agent-1"))
            agent_id = await agent.register(RESOURCES)
            await agent.close()
        registry = FileRegistry(tmp_path / "master")
        assert registry.load().agent_principals == {agent_id: "agent-1"}
        async with secured_master(config) as server:
            error = await refused_reregistration(
                server.address, tls, credential("agent-2"), agent_id
            )
            assert_held(error, "agent-2", agent_id, "agent-1")
            real = await reregister(server.address, tls, credential("agent-1"), agent_id)
            await real.close()

    asyncio.run(main())


def test_a_registry_without_owners_lets_the_first_reregistration_claim(
    secured: Secured, tmp_path: Path
) -> None:
    config = secured.master_config(registry="file", work_dir=tmp_path / "master")
    tls = secured.tls()

    async def main() -> None:
        async with secured_master(config) as server:
            agent = await fake_agent(server.address, tls, credential("agent-1"))
            agent_id = await agent.register(RESOURCES)
            await agent.close()
        # The document as a master that kept no owners wrote it.
        document = tmp_path / "master" / "registry.json"
        state = FileRegistry(tmp_path / "master").load()
        state.agent_principals.clear()
        raw = json.loads(StateCodec().encode(state))
        del raw["agent_principals"]
        document.write_text(json.dumps(raw))
        (tmp_path / "master" / "registry.journal").unlink(missing_ok=True)
        assert FileRegistry(tmp_path / "master").load().agent_principals == {}
        async with secured_master(config) as server:
            # No owner recorded: the first principal to reregister claims the id, and holds it.
            claimer = await reregister(server.address, tls, credential("agent-2"), agent_id)
            await claimer.close()
            error = await refused_reregistration(
                server.address, tls, credential("agent-1"), agent_id
            )
            assert_held(error, "agent-1", agent_id, "agent-2")
        assert FileRegistry(tmp_path / "master").load().agent_principals == {agent_id: "agent-2"}

    asyncio.run(main())
