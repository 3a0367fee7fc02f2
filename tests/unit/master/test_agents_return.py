"""What a master does as agents come back: the registry writes and allocations they cause.

A reregistration writes the registry only when it changes what the registry holds, as in Mesos
(MESOS-7711): an agent the registry admits, coming back with the same AgentInfo (after a broken
connection, or to a new leader after a failover), writes nothing; a changed AgentInfo, or an
agent coming back from unreachable, is written before it is answered. And while the agents a
new leader waits for are coming back, the runtime runs no allocation cycle soon after each of
them (only the periodic one), until the last is back.
"""

from __future__ import annotations

import asyncio

from master.core import PersistRegistry
from master.core.effects import Effect, SendToAgent
from master.core.model import AgentPhase
from master.registry import Operation
from master.registry.state import AdmitAgent
from master.runtime.driver import MasterRuntime
from master.runtime.outbox import AgentChannel, Outbox
from protos.resources import Resources
from protos.v1 import agent_internal_pb2
from tests.unit.master.harness import FakeAgent, Harness, registry_state


def _writes(effects: list[Effect]) -> list[Operation]:
    return [op for e in effects if isinstance(e, PersistRegistry) for op in e.operations]


def _answered(effects: list[Effect], agent_id: str) -> bool:
    return any(
        isinstance(e, SendToAgent)
        and e.agent_id == agent_id
        and e.message.HasField("agent_reregistered")
        for e in effects
    )


def test_an_unchanged_agent_writes_nothing_after_a_failover(
    harness: Harness, agent: FakeAgent
) -> None:
    new = harness.restart()
    _, effects = new.reregister_agent(agent.agent_id)
    assert _writes(effects) == []
    assert _answered(effects, agent.agent_id)
    record = new.master.agent(agent.agent_id)
    assert record is not None
    assert record.phase is AgentPhase.CONNECTED
    new.master.validate()


def test_an_unchanged_agent_writes_nothing_after_a_broken_connection(
    harness: Harness, agent: FakeAgent
) -> None:
    harness.disconnect_agent(agent)
    _, effects = harness.reregister_agent(agent.agent_id)
    assert _writes(effects) == []
    assert _answered(effects, agent.agent_id)


def test_a_changed_agent_info_is_written(harness: Harness, agent: FakeAgent) -> None:
    new = harness.restart()
    _, effects = new.reregister_agent(agent.agent_id, hostname="host2")
    assert [type(op) for op in _writes(effects)] == [AdmitAgent]
    assert registry_state(new).agents[agent.agent_id].hostname == "host2"


def test_an_unreachable_agent_is_made_reachable_in_the_registry(
    harness: Harness, agent: FakeAgent
) -> None:
    harness.disconnect_agent(agent)
    harness.advance(16)  # Pings missed: unreachable, in the registry too.
    assert agent.agent_id in registry_state(harness).unreachable
    _, effects = harness.reregister_agent(agent.agent_id)
    assert [type(op) for op in _writes(effects)] == [AdmitAgent]
    state = registry_state(harness)
    assert agent.agent_id in state.agents
    assert agent.agent_id not in state.unreachable


def _reregistration(agent_id: str, hostname: str) -> agent_internal_pb2.AgentMessage:
    message = agent_internal_pb2.AgentMessage()
    info = message.reregister_agent.agent_info
    info.id.value, info.hostname = agent_id, hostname
    info.resources.extend(
        Resources.parse("cpus:4;mem:4096;disk:10000;ports:[31000-32000]").to_protos()
    )
    return message


def _fatal(error: BaseException) -> None:
    raise AssertionError(f"registry write failed: {error}")


def test_no_allocation_soon_after_each_agent_until_the_last_is_back(harness: Harness) -> None:
    first = harness.register_agent(hostname="host1")
    second = harness.register_agent(hostname="host2")
    new = harness.restart()  # Both agents to come back.

    async def body() -> None:
        # The periodic cycle never comes; one soon after a change comes at the next turn.
        runtime = MasterRuntime(
            new.master,
            Outbox(new.registry, _fatal),
            allocation_interval=3600.0,
            allocation_delay=0.0,
            clock=lambda: new.now,
        )
        runtime.agent_connected("c1", AgentChannel(), _reregistration(first.agent_id, "host1"))
        await asyncio.sleep(0.01)
        assert runtime.allocations == 0  # One agent still to come.
        runtime.agent_connected("c2", AgentChannel(), _reregistration(second.agent_id, "host2"))
        await asyncio.sleep(0.01)
        assert runtime.allocations == 1  # The last one is back: one cycle offers them all.
        runtime.stop()

    asyncio.run(body())
    new.master.validate()
