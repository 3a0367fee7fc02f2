"""The issue's attacks on a secured master, each refused with its precise error, while the
legitimate framework and agent keep working (issue 14, items 1-3).

Every attacker here reaches the master over the network as the issue's did: a fake agent, an
agent impersonating a registered one, a framework taking over another's id, a framework asking
for a role or a user it may not have, and plaintext clients of a TLS master.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc import aio

from framework_sdk.aio import SchedulerClient
from framework_sdk.errors import SubscriptionError
from protos.v1 import agent_internal_pb2, mesos_pb2
from tests.integration.master.clients import Call, Event, FakeAgent, Scheduler, wait_for
from tests.integration.security_auth.support import (
    Secured,
    credential,
    fake_agent,
    scheduler,
    secured_master,
)


def framework(role: str, user: str = "tester") -> mesos_pb2.FrameworkInfo:
    return mesos_pb2.FrameworkInfo(user=user, name=f"fw-{role}", role=role, failover_timeout=60)


async def refused(awaitable: object) -> aio.AioRpcError:
    """The error a call (or stream) is refused with."""
    with pytest.raises(aio.AioRpcError) as caught:
        await awaitable  # type: ignore[misc]
    return caught.value


async def subscribe_refusal(
    client: Scheduler, info: mesos_pb2.FrameworkInfo, framework_id: str = ""
) -> aio.AioRpcError:
    """The error a SUBSCRIBE of ``info`` (failing over ``framework_id``) is refused with."""
    call = Call(type=Call.SUBSCRIBE)
    call.subscribe.framework_info.CopyFrom(info)
    if framework_id:
        call.framework_id.value = framework_id
        call.subscribe.framework_info.id.value = framework_id
    stream = client.stub.Subscribe(call, timeout=10)
    with pytest.raises(aio.AioRpcError) as caught:
        async for _ in stream:
            pass
    return caught.value


async def agent_refusal(agent: FakeAgent) -> aio.AioRpcError:
    """Register ``agent`` and return the error its session ends with."""
    message = agent_internal_pb2.AgentMessage()
    message.register_agent.agent_info.hostname = "attacker"
    message.register_agent.agent_info.resources.add(
        name="cpus", type=mesos_pb2.Value.SCALAR, scalar=mesos_pb2.Value.Scalar(value=64)
    )
    await agent.send(message)
    call = agent.stub.Connect(agent._messages())
    with pytest.raises(aio.AioRpcError) as caught:
        async for _ in call:
            pass
    return caught.value


def launch(offer: mesos_pb2.Offer, task_id: str, user: str | None) -> Call:
    call = Call(type=Call.ACCEPT)
    call.accept.offer_ids.add().CopyFrom(offer.id)
    operation = call.accept.operations.add(type=mesos_pb2.Offer.Operation.LAUNCH)
    task = operation.launch.task_infos.add(name=task_id)
    task.task_id.value = task_id
    task.agent_id.CopyFrom(offer.agent_id)
    task.command.value = "sleep 60"
    if user is not None:
        task.command.user = user
    task.resources.add(
        name="cpus", type=mesos_pb2.Value.SCALAR, scalar=mesos_pb2.Value.Scalar(value=0.1)
    )
    return call


def test_fake_agents_are_refused_and_offers_come_only_from_the_real_one(secured: Secured) -> None:
    async def main() -> None:
        async with secured_master(secured.master_config()) as server:
            address, tls = server.address, secured.tls()
            anonymous = await fake_agent(address, tls, None)
            error = await agent_refusal(anonymous)
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "no credentials given" in (error.details() or "")
            await anonymous.close()

            wrong = await fake_agent(address, tls, credential("agent-1", "guessed"))
            error = await agent_refusal(wrong)
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED
            assert error.details() == (
                "authentication failed: invalid credentials for principal 'agent-1'"
            )
            assert "guessed" not in str(error)
            await wrong.close()

            # A framework's principal is not an agent's: register_agents refuses it.
            framework_principal = await fake_agent(address, tls, credential("framework-a"))
            error = await agent_refusal(framework_principal)
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED
            assert error.details() == (
                "principal 'framework-a' is not authorized to register_agents: refused by the ACLs"
            )
            await framework_principal.close()

            real = await fake_agent(address, tls, credential("agent-1"))
            real_id = await real.register("cpus:4;mem:1024")
            fw = await scheduler(address, tls, credential("framework-a"))
            await fw.subscribe(framework("a"))
            await wait_for(lambda: bool(fw.offers()), "an offer")
            assert {o.agent_id.value for o in fw.offers()} == {real_id}
            assert server.core is not None
            assert list(server.core.state.agents) == [real_id]
            await fw.close()
            await real.close()

    asyncio.run(main())


def test_an_agent_cannot_be_impersonated(secured: Secured) -> None:
    async def main() -> None:
        # Pings every 24 x 0.2 s (master.core.liveness.ping_interval), so one comes while we wait.
        async with secured_master(secured.master_config(agent_ping_timeout=0.2)) as server:
            address, tls = server.address, secured.tls()
            real = await fake_agent(address, tls, credential("agent-1"))
            real_id = await real.register("cpus:4;mem:1024")

            # The id is public (/master/state); another agent principal reregisters under it.
            impostor = await fake_agent(address, tls, credential("agent-2"))
            message = agent_internal_pb2.AgentMessage()
            message.reregister_agent.agent_info.id.value = real_id
            message.reregister_agent.agent_info.hostname = "fake-host"
            await impostor.send(message)
            call = impostor.stub.Connect(impostor._messages())
            with pytest.raises(aio.AioRpcError) as caught:
                async for _ in call:
                    pass
            assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert caught.value.details() == (
                f"principal 'agent-2' is not authorized to register_agents: agent {real_id} is"
                " held by principal 'agent-1': only it may reregister that agent"
            )
            await impostor.close()

            # The real agent's session is untouched: still connected, still pinged.
            assert server.core is not None
            agent = server.core.agent(real_id)
            assert agent is not None
            assert agent.connection_id is not None
            pings = len(real.of("ping"))
            await wait_for(lambda: len(real.of("ping")) > pings, "a ping to the real agent")
            assert not real.of("shutdown")
            await real.close()

    asyncio.run(main())


def test_a_framework_cannot_be_taken_over(secured: Secured) -> None:
    async def main() -> None:
        async with secured_master(secured.master_config()) as server:
            address, tls = server.address, secured.tls()
            agent = await fake_agent(address, tls, credential("agent-1"))
            await agent.register("cpus:4;mem:1024")
            victim = await scheduler(address, tls, credential("framework-a"))
            victim_id = await victim.subscribe(framework("a"))
            await wait_for(lambda: bool(victim.offers()), "an offer")
            offer = victim.offers()[0]
            await victim.call(launch(offer, "t1", "tester"), "Accept")
            assert server.core is not None
            await wait_for(
                lambda: "t1" in server.core.framework(victim_id).tasks,  # type: ignore[union-attr]
                "the victim's task",
            )

            # SUBSCRIBE with the victim's id (and user): another principal is refused ...
            attacker = await scheduler(address, tls, credential("framework-b"))
            info = framework("b")
            error = await subscribe_refusal(attacker, info, victim_id)
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED
            assert error.details() == (
                f"principal 'framework-b' is not authorized to register_frameworks: framework"
                f" {victim_id} belongs to principal 'framework-a': only its owner may subscribe"
                " with its id"
            )
            # ... and so is a kill of the victim's task with the victim's stream id.
            kill = Call(type=Call.KILL)
            kill.framework_id.value = victim_id
            kill.kill.task_id.value = "t1"
            error = await refused(attacker.call(kill, "Kill", stream_id=victim.stream_id))
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED
            assert error.details() == (
                f"principal 'framework-b' is not authorized to call KILL: framework"
                f" {victim_id} belongs to principal 'framework-a'"
            )
            # A role the ACLs do not give it, and a principal that is not its own:
            error = await subscribe_refusal(attacker, framework("a"))
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED
            assert error.details() == (
                "principal 'framework-b' is not authorized to register_frameworks:"
                " role 'a' is not allowed"
            )
            claimed = framework("b")
            claimed.principal = "framework-a"
            error = await subscribe_refusal(attacker, claimed)
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "framework_info.principal 'framework-a' is not the authenticated one" in (
                error.details() or ""
            )
            # No credentials at all:
            anonymous = await scheduler(address, tls, None)
            error = await subscribe_refusal(anonymous, framework("a"))
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED
            await anonymous.close()
            await attacker.close()

            # The victim noticed nothing: no failover, its task still there, still subscribed.
            assert not victim.of(Event.ERROR)
            assert not victim.ended.is_set()
            fw = server.core.framework(victim_id)
            assert fw is not None
            assert fw.stream_id == victim.stream_id
            assert fw.info.principal == "framework-a"
            assert "t1" in fw.tasks
            await victim.close()
            await agent.close()

    asyncio.run(main())


def test_run_tasks_acl_refuses_users_not_allowed(secured: Secured) -> None:
    async def main() -> None:
        async with secured_master(secured.master_config()) as server:
            address, tls = server.address, secured.tls()
            agent = await fake_agent(address, tls, credential("agent-1"))
            await agent.register("cpus:4;mem:1024")
            fw = await scheduler(address, tls, credential("framework-a"))
            await fw.subscribe(framework("a"))
            await wait_for(lambda: bool(fw.offers()), "an offer")
            offer = fw.offers()[0]
            error = await refused(fw.call(launch(offer, "as-root", "root"), "Accept"))
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED
            assert error.details() == (
                "principal 'framework-a' is not authorized to run_tasks:"
                " tasks may not run as user 'root': running as root needs a run_tasks rule that"
                " allows it ('permissive' does not cover it)"
            )
            assert server.core is not None
            assert not server.core.framework(fw.framework_id).tasks  # type: ignore[union-attr]
            # The offer is untouched by the refusal: the same offer launches as an allowed user.
            await fw.call(launch(offer, "as-tester", None), "Accept")
            await wait_for(lambda: bool(agent.of("run_task")), "the launch at the agent")
            assert agent.of("run_task")[0].run_task.task.task_id.value == "as-tester"
            await fw.close()
            await agent.close()

    asyncio.run(main())


def test_plaintext_clients_of_a_tls_master_get_nothing(secured: Secured) -> None:
    async def main() -> None:
        async with secured_master(secured.master_config()) as server:
            plain = Scheduler(server.address)
            error = await subscribe_refusal(plain, framework("a"))
            assert error.code() in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            )
            await plain.close()
            assert server.core is not None
            assert not server.core.state.frameworks

    asyncio.run(main())


def test_mutual_tls_client_certificate_stands_as_the_principal(secured: Secured) -> None:
    config = secured.master_config(tls_require_client_cert=True)

    async def main() -> None:
        async with secured_master(config) as server:
            # framework-a's certificate, no secret: the subject CN is the principal.
            fw = await scheduler(server.address, secured.tls("framework-a"), None)
            framework_id = await fw.subscribe(framework("a"))
            assert server.core is not None
            owned = server.core.framework(framework_id)
            assert owned is not None
            assert owned.info.principal == "framework-a"
            await fw.close()
            # Without a client certificate the handshake itself fails.
            bare = await scheduler(server.address, secured.tls(), credential("framework-a"))
            error = await subscribe_refusal(bare, framework("a"))
            assert error.code() in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            )
            assert server.core.state.frameworks.keys() == {framework_id}
            await bare.close()

    asyncio.run(main())


def test_sdk_client_with_a_wrong_secret_ends_naming_the_refusal(secured: Secured) -> None:
    async def main() -> None:
        async with secured_master(secured.master_config()) as server:
            client = SchedulerClient(
                server.address,
                framework("a"),
                credential=mesos_pb2.Credential(principal="framework-a", secret="guess"),
                tls=secured.tls(),
            )
            with pytest.raises(SubscriptionError) as caught:
                async with client:
                    pass
            assert "UNAUTHENTICATED" in str(caught.value)
            assert "invalid credentials for principal 'framework-a'" in str(caught.value)
            assert "guess" not in str(caught.value)
            assert server.core is not None
            assert not server.core.state.frameworks

    asyncio.run(main())
