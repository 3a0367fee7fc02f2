"""ExecutorClient (asyncio) against a scripted agent: subscribing, updates, reconnecting, errors."""

from __future__ import annotations

from typing import TypeVar

import grpc
import pytest

from framework_sdk import messages
from framework_sdk.errors import NotSubscribedError, SubscriptionError
from framework_sdk.executor_aio import AgentCallRefusedError, ExecutorClient
from framework_sdk.executor_config import ExecutorEnvironmentError
from framework_sdk.executor_session import (
    Acknowledged,
    Disconnected,
    Error,
    ExecutorEvent,
    Heartbeat,
    Launch,
    Message,
    Shutdown,
    Subscribed,
)
from tests.unit.sdk.scripted_service import off_loop, run
from tests.unit.sdk_executor.scripted_agent import (
    ScriptedAgent,
    error_event,
    heartbeat_event,
    launch_event,
    message_event,
)

T = TypeVar("T")


async def next_event(client: ExecutorClient, *, heartbeats: bool = False) -> ExecutorEvent:
    return await anext(client.events(heartbeats=heartbeats))


async def next_of(client: ExecutorClient, kind: type[T]) -> T:
    """The next event of ``kind``, skipping acknowledgements."""
    while True:
        event = await next_event(client)
        if isinstance(event, kind):
            return event
        assert isinstance(event, Acknowledged), f"expected {kind.__name__}, got {event!r}"


def running(task_id: str) -> messages.TaskStatus:
    status = messages.TaskStatus(state=messages.TASK_RUNNING)
    status.task_id.value = task_id
    return status


def test_subscribe_launch_update_ack_message(agent: ScriptedAgent) -> None:
    async def body() -> None:
        async with ExecutorClient(environ=agent.environ()) as client:
            first = await next_event(client)
            assert isinstance(first, Subscribed)
            assert not first.resubscribed
            assert client.agent_info is not None
            assert client.agent_info.id.value == "agent-1"
            [subscribe] = agent.subscribe_calls
            assert subscribe.executor_id.value == "executor-1"
            agent.send(launch_event("t1"), message_event(b"ping 1"), heartbeat_event())
            launch = await next_event(client)
            assert isinstance(launch, Launch)
            assert launch.task.task_id.value == "t1"
            assert await next_event(client) == Message(b"ping 1")
            uuid = await client.update(running("t1"))
            ack = await next_event(client)  # Heartbeats are skipped by default.
            assert isinstance(ack, Acknowledged)
            assert ack.uuid == uuid
            assert client.session.unacknowledged_updates == []
            await client.message(b"pong 1")
            assert await off_loop(lambda: agent.wait_messages(1)) == [b"pong 1"]
            [update] = await off_loop(lambda: agent.wait_updates(1))
            assert update.uuid == uuid
            assert update.source == messages.SOURCE_EXECUTOR

    run(body)


def test_heartbeats_when_asked(agent: ScriptedAgent) -> None:
    async def body() -> None:
        async with ExecutorClient(environ=agent.environ()) as client:
            await next_event(client, heartbeats=True)
            agent.send(heartbeat_event())
            assert await next_event(client, heartbeats=True) == Heartbeat()

    run(body)


def test_reconnect_resends_unacknowledged_updates_and_tasks(agent: ScriptedAgent) -> None:
    async def body() -> None:
        agent.auto_ack = False
        environ = agent.environ(checkpoint=True)
        async with ExecutorClient(environ=environ) as client:
            await next_event(client)
            agent.send(launch_event("t1"), launch_event("t2"))
            await next_event(client)
            await next_event(client)
            uuid = await client.update(running("t1"))
            agent.auto_ack = True
            # The agent restarts: the port goes away for a while, then serves again.
            agent.stop()
            assert isinstance(await next_event(client), Disconnected)
            # Sent while disconnected: queued for the next SUBSCRIBE.
            later = await client.update(running("t2"))
            agent.start()
            again = await next_of(client, Subscribed)
            assert again.resubscribed
            resubscribe = agent.subscribe_calls[-1]
            resent = [u.status.uuid for u in resubscribe.subscribe.unacknowledged_updates]
            assert resent == [uuid, later]
            tasks = [t.task_id.value for t in resubscribe.subscribe.unacknowledged_tasks]
            assert tasks == ["t1", "t2"]
            # The agent acknowledges what SUBSCRIBE carried.
            acks = {(await next_of(client, Acknowledged)).uuid for _ in range(2)}
            assert acks == {uuid, later}
            assert client.session.unacknowledged_updates == []

    run(body)


def test_non_checkpointing_executor_is_told_to_shut_down(agent: ScriptedAgent) -> None:
    async def body() -> None:
        async with ExecutorClient(environ=agent.environ(checkpoint=False)) as client:
            await next_event(client)
            agent.fail_stream(grpc.StatusCode.UNAVAILABLE, "agent gone")
            assert isinstance(await next_event(client), Disconnected)
            shutdown = await next_event(client)
            assert isinstance(shutdown, Shutdown)
            assert not shutdown.by_agent
            assert [e async for e in client.events()] == []  # The client ended.
            assert client.closed
        assert len(agent.subscribe_calls) == 1

    run(body)


def test_stream_ended_cleanly_counts_as_lost(agent: ScriptedAgent) -> None:
    async def body() -> None:
        async with ExecutorClient(environ=agent.environ(checkpoint=True)) as client:
            await next_event(client)
            agent.end_stream()
            assert isinstance(await next_event(client), Disconnected)
            assert (await next_of(client, Subscribed)).resubscribed

    run(body)


def test_recovery_timeout_ends_in_shutdown(agent: ScriptedAgent) -> None:
    async def body() -> None:
        environ = agent.environ(checkpoint=True, recovery_timeout="300ms", backoff_max="20ms")
        async with ExecutorClient(environ=environ) as client:
            await next_event(client)
            agent.stop()
            assert isinstance(await next_event(client), Disconnected)
            shutdown = await next_event(client)
            assert isinstance(shutdown, Shutdown)
            assert "within 0.3s" in shutdown.reason
            assert client.closed

    run(body)


def test_refused_subscription_raises(agent: ScriptedAgent) -> None:
    async def body() -> None:
        agent.refuse_next("Subscribe", grpc.StatusCode.NOT_FOUND, "executor unknown here")
        client = ExecutorClient(environ=agent.environ())
        with pytest.raises(SubscriptionError, match="executor unknown here"):
            await client.__aenter__()
        events = [e async for e in client.events()]
        assert len(events) == 1
        assert isinstance(events[0], Error)

    run(body)


def test_unavailable_agent_is_retried_before_the_first_subscription(agent: ScriptedAgent) -> None:
    async def body() -> None:
        for _ in range(3):
            agent.refuse_next("Subscribe", grpc.StatusCode.UNAVAILABLE, "starting up")
        async with ExecutorClient(environ=agent.environ()) as client:
            assert isinstance(await next_event(client), Subscribed)
        assert len(agent.subscribe_calls) == 4

    run(body)


def test_error_event_ends_the_client(agent: ScriptedAgent) -> None:
    async def body() -> None:
        async with ExecutorClient(environ=agent.environ()) as client:
            await next_event(client)
            agent.send(error_event("framework removed"))
            assert await next_event(client) == Error("framework removed")
            assert client.closed
            with pytest.raises(NotSubscribedError):
                await client.message(b"too late")

    run(body)


def test_refused_update_is_dropped_and_raised(agent: ScriptedAgent) -> None:
    async def body() -> None:
        async with ExecutorClient(environ=agent.environ()) as client:
            await next_event(client)
            agent.refuse_next("Update", grpc.StatusCode.NOT_FOUND, "task 't9' is unknown")
            with pytest.raises(AgentCallRefusedError, match="refused by the agent"):
                await client.update(running("t9"))
            assert client.session.unacknowledged_updates == []
            staging = running("t1")
            staging.state = messages.TASK_STAGING
            with pytest.raises(ValueError, match="TASK_STAGING"):
                await client.update(staging)

    run(body)


def test_message_while_disconnected_is_not_sent(agent: ScriptedAgent) -> None:
    async def body() -> None:
        environ = agent.environ(checkpoint=True)
        async with ExecutorClient(environ=environ) as client:
            await next_event(client)
            agent.stop()
            assert isinstance(await next_event(client), Disconnected)
            with pytest.raises(NotSubscribedError):
                await client.message(b"lost")
            agent.start()
            await next_of(client, Subscribed)
        assert agent.messages == []

    run(body)


def test_missing_environment_is_named() -> None:
    with pytest.raises(ExecutorEnvironmentError, match="MESOS_AGENT_ENDPOINT"):
        ExecutorClient(environ={})
