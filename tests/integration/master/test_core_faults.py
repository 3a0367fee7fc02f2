"""A fault inside the master's core reaches no peer as UNKNOWN and no other peer at all.

Faults are injected into the real master (in this process, over real gRPC): a scheduler call
handler, an agent message handler and the status update bookkeeping raise for one framework or
one agent. The call that met the fault is answered ``INTERNAL`` naming it; the faulty agent
message is skipped, its session goes on; a status update whose bookkeeping failed still reaches
its framework; every other framework and agent carries on as if nothing happened. Bytes that are
not the message a method takes are refused with ``INVALID_ARGUMENT``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from grpc import aio

import master.core.liveness
import master.core.master
import master.core.tasks
from master.core import metrics_snapshot
from master.runtime import MasterServer
from protos.v1 import agent_internal_pb2, mesos_pb2
from tests.integration.master.clients import (
    Call,
    FakeAgent,
    Scheduler,
    quick_config,
    running_master,
    wait_for,
)
from tests.integration.master.test_master_grpc import launch_call

GARBAGE = b"\xff\xff\xff\x01not a protobuf"


def _faulty(original: Callable[..., Any], when: Callable[..., bool]) -> Callable[..., Any]:
    def handler(*args: Any) -> Any:
        if when(*args):
            raise RuntimeError("injected fault")
        return original(*args)

    return handler


async def _running(server: MasterServer, scheduler: Scheduler, agent: FakeAgent, task: str) -> str:
    """Launch ``task`` on ``agent`` for ``scheduler`` and report it RUNNING; its uuid-less id."""
    await wait_for(lambda: bool(scheduler.offers()), "an offer")
    offer = [o for o in scheduler.offers() if o.agent_id.value == agent.agent_id][-1]
    await scheduler.call(launch_call(offer, task, resources="cpus:0.5;mem:64"), "Accept")
    await wait_for(
        lambda: any(m.run_task.task.task_id.value == task for m in agent.of("run_task")), "RunTask"
    )
    await agent.status_update(
        scheduler.framework_id, task, mesos_pb2.TASK_RUNNING, uuid.uuid4().bytes
    )
    await wait_for(lambda: bool(scheduler.updates(task)), f"{task} RUNNING")
    return task


def test_a_call_handler_fault_fails_that_call_only(monkeypatch: pytest.MonkeyPatch) -> None:
    victims: set[str] = set()
    kill = master.core.master._HANDLERS[Call.KILL]
    monkeypatch.setitem(
        master.core.master._HANDLERS,
        Call.KILL,
        _faulty(kill, lambda state, fw, call, now: fw.framework_id in victims),
    )

    async def main() -> None:
        async with running_master(quick_config()) as server:
            agent = FakeAgent(server.address)
            a, b = Scheduler(server.address), Scheduler(server.address)
            try:
                await agent.register("cpus:4;mem:1024")
                victims.add(await a.subscribe())
                await b.subscribe()
                await _running(server, a, agent, "a1")
                await _running(server, b, agent, "b1")
                kill_a1 = Call(type=Call.KILL)
                kill_a1.kill.task_id.value = "a1"
                with pytest.raises(aio.AioRpcError) as raised:
                    await a.call(kill_a1, "Kill")
                assert raised.value.code() == grpc.StatusCode.INTERNAL
                details = raised.value.details() or ""
                assert "KILL call of framework" in details
                assert "RuntimeError: injected fault" in details
                # The other framework's KILL reaches the agent; framework a may go on calling.
                kill_b1 = Call(type=Call.KILL)
                kill_b1.kill.task_id.value = "b1"
                await b.call(kill_b1, "Kill")
                await wait_for(lambda: bool(agent.of("kill_task")), "KillTask for b1")
                assert [m.kill_task.task_id.value for m in agent.of("kill_task")] == ["b1"]
                revive = Call(type=Call.REVIVE)
                revive.revive.SetInParent()
                await a.call(revive, "Revive")
                results = await a.batch([kill_a1, revive])
                assert [code for code, _ in results] == [grpc.StatusCode.INTERNAL.value[0], 0]
                core = server.core
                assert core is not None
                assert core.state.faults == 2
                metrics = metrics_snapshot(core, now=0.0, start_time=0.0)
                assert metrics["master/faults"] == 2
                core.validate()
            finally:
                await a.close()
                await b.close()
                await agent.close()

    asyncio.run(main())


@pytest.mark.parametrize("via", ["master", "gateway"])
def test_an_agent_message_fault_skips_that_message_only(
    monkeypatch: pytest.MonkeyPatch, via: str
) -> None:
    """Also with the agents behind a gateway (``--agent-gateways``): the faults stay with the
    message that met them, not with the relay the gateway's sessions share."""
    victims: set[str] = set()
    monkeypatch.setattr(
        master.core.liveness,
        "pong",
        _faulty(master.core.liveness.pong, lambda state, agent, seq: agent.agent_id in victims),
    )
    broken_tasks = {"v2"}
    monkeypatch.setattr(
        master.core.tasks,
        "status_update",
        _faulty(
            master.core.tasks.status_update,
            lambda state, agent, update, now: update.status.task_id.value in broken_tasks,
        ),
    )

    async def main() -> None:
        # The first ping within 24 x 0.5 s (master.core.liveness.ping_interval); the victim's
        # pongs fail, and 0.5 s x 60 keeps it reachable for the whole test.
        config = quick_config(
            agent_ping_timeout=0.5,
            max_agent_ping_timeouts=60,
            agent_gateways=1 if via == "gateway" else 0,
        )
        async with running_master(config) as server:
            agents = server.agent_address if via == "gateway" else server.address
            assert agents is not None
            victim, other = FakeAgent(agents), FakeAgent(agents, batched=True)
            scheduler = Scheduler(server.address)
            try:
                victims.add(await victim.register("cpus:2;mem:512", hostname="victim"))
                await other.register("cpus:2;mem:512", hostname="other")
                await scheduler.subscribe()
                await wait_for(lambda: len(victim.of("ping")) >= 1, "a ping to the victim")
                # Its pongs fail in the core; its session and its tasks are unaffected.
                await _running(server, scheduler, victim, "v1")
                await _running(server, scheduler, other, "o1")
                # A status update whose bookkeeping fails still reaches the framework.
                await _running(server, scheduler, victim, "v2")
                fin = victim.status_update_message(
                    scheduler.framework_id, "v1", mesos_pb2.TASK_FINISHED, uuid.uuid4().bytes
                )
                await victim.send(fin)
                await wait_for(
                    lambda: (
                        [s.state for s in scheduler.updates("v1")][-1] == mesos_pb2.TASK_FINISHED
                    ),
                    "v1 FINISHED",
                )
                core = server.core
                assert core is not None
                assert core.state.faults >= 2
                for agent in (victim, other):
                    record = core.agent(agent.agent_id)
                    assert record is not None
                    assert record.connection_id is not None
                assert not victim.of("error")
            finally:
                await scheduler.close()
                await victim.close()
                await other.close()

    asyncio.run(main())


def test_bytes_that_do_not_parse_are_refused_as_invalid_argument() -> None:
    async def main() -> None:
        async with running_master(quick_config()) as server:
            channel = aio.insecure_channel(server.address)
            scheduler = Scheduler(server.address)
            agent = FakeAgent(server.address)
            try:
                for method in ("Accept", "Batch"):
                    with pytest.raises(aio.AioRpcError) as raised:
                        await channel.unary_unary(
                            f"/mesos.v1.scheduler.Scheduler/{method}", None, None
                        )(GARBAGE)
                    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                    details = raised.value.details() or ""
                    assert "is not a valid mesos.v1.scheduler.Call" in details
                with pytest.raises(aio.AioRpcError) as raised:
                    async for _ in channel.unary_stream(
                        "/mesos.v1.scheduler.Scheduler/Subscribe", None, None
                    )(GARBAGE):
                        pass
                assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                # An agent session whose first message does not parse is refused the same way.
                connect = channel.stream_stream(
                    "/emporion.internal.v1.AgentGateway/Connect", None, None
                )

                async def one() -> Any:
                    yield GARBAGE

                with pytest.raises(aio.AioRpcError) as raised:
                    async for _ in connect(one()):
                        pass
                assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert "AgentMessage" in (raised.value.details() or "")
                # The master serves everyone else as before.
                await agent.register("cpus:1;mem:128")
                await scheduler.subscribe()
                await wait_for(lambda: bool(scheduler.offers()), "an offer")
                core = server.core
                assert core is not None
                assert core.state.faults == 0
            finally:
                await scheduler.close()
                await agent.close()
                await channel.close(None)

    asyncio.run(main())


def test_a_garbled_message_mid_session_ends_that_agent_session_with_an_error() -> None:
    async def main() -> None:
        async with running_master(quick_config()) as server:
            channel = aio.insecure_channel(server.address)
            other = FakeAgent(server.address)
            try:
                await other.register("cpus:1;mem:128", hostname="other")
                register = agent_internal_pb2.AgentMessage()
                register.register_agent.agent_info.hostname = "garbler"
                connect = channel.stream_stream(
                    "/emporion.internal.v1.AgentGateway/Connect", None, None
                )

                async def messages() -> Any:
                    yield register.SerializeToString()
                    yield GARBAGE

                received = []
                async for raw in connect(messages()):
                    received.append(agent_internal_pb2.MasterMessage.FromString(raw))
                kinds = [m.WhichOneof("payload") for m in received]
                assert "agent_registered" in kinds
                errors = [m.error.message for m in received if m.HasField("error")]
                assert errors
                assert "is not a valid emporion.internal.v1.AgentMessage" in errors[0]
                core = server.core
                assert core is not None
                record = core.agent(other.agent_id)
                assert record is not None
                assert record.connection_id is not None
            finally:
                await other.close()
                await channel.close(None)

    asyncio.run(main())
