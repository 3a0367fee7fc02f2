"""Status updates, acknowledgements, KILL, SHUTDOWN and MESSAGE."""

from __future__ import annotations

import pytest

from master.core import CallError, ErrorCode
from protos.resources import Resources
from protos.v1 import agent_internal_pb2, mesos_pb2
from tests.unit.master.harness import (
    Call,
    Event,
    FakeAgent,
    Harness,
    accept_call,
    command_task,
    uuid_bytes,
)


def launch(
    harness: Harness, agent: FakeAgent, *task_ids: str, **subscribe: object
) -> tuple[str, str]:
    """Subscribe a framework and launch ``task_ids`` (cpus:1;mem:128 each) on ``agent``."""
    framework_id, stream_id = harness.subscribe(**subscribe)  # type: ignore[arg-type]
    harness.allocate()
    offer = harness.offers(framework_id)[-1]
    tasks = [command_task(t, agent.agent_id) for t in task_ids]
    harness.call(framework_id, stream_id, accept_call([offer.id.value], tasks, refuse_seconds=0))
    return framework_id, stream_id


def ack(agent_id: str, task_id: str, uuid: bytes) -> Call:
    call = Call(type=Call.ACKNOWLEDGE)
    call.acknowledge.agent_id.value = agent_id
    call.acknowledge.task_id.value = task_id
    call.acknowledge.uuid = uuid
    return call


def allocated(harness: Harness, agent_id: str) -> Resources:
    total = Resources.EMPTY
    for resources in harness.master.state.allocator.agent_allocation(agent_id).values():
        total = total + resources
    return total


def test_update_is_forwarded_and_ack_relayed(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = launch(harness, agent, "t1")
    harness.status_update(agent, framework_id, "t1", mesos_pb2.TASK_RUNNING, uuid_bytes(1))
    (status,) = harness.updates(framework_id)
    assert status.state == mesos_pb2.TASK_RUNNING
    assert status.uuid == uuid_bytes(1)
    fw = harness.master.framework(framework_id)
    assert fw is not None
    task = fw.tasks["t1"]
    assert task.state == mesos_pb2.TASK_RUNNING
    assert task.status_update_uuid == uuid_bytes(1)
    harness.call(framework_id, stream_id, ack(agent.agent_id, "t1", uuid_bytes(1)))
    (relayed,) = harness.to_agent(agent.agent_id, "status_update_acknowledgement")
    body = relayed.status_update_acknowledgement
    assert (body.framework_id.value, body.task_id.value, body.uuid) == (
        framework_id,
        "t1",
        uuid_bytes(1),
    )


def test_terminal_update_releases_resources_and_ack_forgets_the_task(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, stream_id = launch(harness, agent, "t1")
    assert allocated(harness, agent.agent_id) == Resources.parse("cpus:1;mem:128")
    harness.status_update(agent, framework_id, "t1", mesos_pb2.TASK_FINISHED, uuid_bytes(1))
    assert allocated(harness, agent.agent_id) == Resources.EMPTY
    # Retried (not acknowledged yet): released once only (validate() checks the accounting).
    harness.status_update(agent, framework_id, "t1", mesos_pb2.TASK_FINISHED, uuid_bytes(1))
    fw = harness.master.framework(framework_id)
    assert fw is not None
    assert "t1" in fw.tasks
    harness.call(framework_id, stream_id, ack(agent.agent_id, "t1", uuid_bytes(1)))
    assert "t1" not in fw.tasks
    assert harness.master.agent(agent.agent_id).tasks == {}  # type: ignore[union-attr]


def test_latest_state_releases_resources_while_older_update_is_retried(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, stream_id = launch(harness, agent, "t1")
    harness.status_update(
        agent,
        framework_id,
        "t1",
        mesos_pb2.TASK_RUNNING,
        uuid_bytes(1),
        latest_state=mesos_pb2.TASK_FINISHED,
    )
    fw = harness.master.framework(framework_id)
    assert fw is not None
    task = fw.tasks["t1"]
    assert task.state == mesos_pb2.TASK_FINISHED
    assert task.status_update_state == mesos_pb2.TASK_RUNNING
    assert allocated(harness, agent.agent_id) == Resources.EMPTY
    # Acknowledging RUNNING does not forget the task: its terminal update is still to come.
    harness.call(framework_id, stream_id, ack(agent.agent_id, "t1", uuid_bytes(1)))
    assert "t1" in fw.tasks
    harness.status_update(agent, framework_id, "t1", mesos_pb2.TASK_FINISHED, uuid_bytes(2))
    harness.call(framework_id, stream_id, ack(agent.agent_id, "t1", uuid_bytes(2)))
    assert "t1" not in fw.tasks
    # The freed resources are offered again.
    harness.allocate()
    assert Resources.from_protos(harness.offers(framework_id)[-1].resources).get("cpus") == 4


def test_update_without_uuid_is_forwarded_and_terminal_one_forgets_the_task(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, _ = launch(harness, agent, "t1")
    harness.status_update(agent, framework_id, "t1", mesos_pb2.TASK_FAILED, None)
    (status,) = harness.updates(framework_id)
    assert not status.HasField("uuid")
    fw = harness.master.framework(framework_id)
    assert fw is not None
    assert fw.tasks == {}


def test_updates_of_disconnected_framework_still_update_the_task(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, stream_id = launch(harness, agent, "t1", failover_timeout=60)
    harness.close_stream(stream_id)
    harness.clear()
    harness.status_update(agent, framework_id, "t1", mesos_pb2.TASK_FINISHED, uuid_bytes(1))
    assert harness.updates(framework_id) == []  # Nobody to forward to; the agent retries.
    assert allocated(harness, agent.agent_id) == Resources.EMPTY


def test_update_for_torn_down_framework_shuts_it_down_on_the_agent(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, stream_id = launch(harness, agent, "t1")
    harness.call(framework_id, stream_id, Call(type=Call.TEARDOWN))
    harness.clear()
    harness.status_update(agent, framework_id, "t1", mesos_pb2.TASK_KILLED, uuid_bytes(1))
    (shutdown,) = harness.to_agent(agent.agent_id, "shutdown_framework")
    assert shutdown.shutdown_framework.framework_id.value == framework_id


@pytest.mark.parametrize(
    ("uuid", "message"),
    [(b"", "only updates carrying a uuid are acknowledged"), (b"short", "must be 16 bytes")],
)
def test_ack_without_a_proper_uuid_is_refused(
    harness: Harness, agent: FakeAgent, uuid: bytes, message: str
) -> None:
    framework_id, stream_id = launch(harness, agent, "t1")
    with pytest.raises(CallError) as raised:
        harness.call(framework_id, stream_id, ack(agent.agent_id, "t1", uuid))
    assert raised.value.code is ErrorCode.INVALID_ARGUMENT
    assert message in raised.value.message


def test_ack_checks_its_fields(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = launch(harness, agent, "t1")
    with pytest.raises(CallError, match="acknowledge is required"):
        harness.call(framework_id, stream_id, Call(type=Call.ACKNOWLEDGE))
    with pytest.raises(CallError, match="agent_id is required"):
        harness.call(framework_id, stream_id, ack("", "t1", uuid_bytes(1)))
    with pytest.raises(CallError, match="task_id is required"):
        harness.call(framework_id, stream_id, ack(agent.agent_id, "", uuid_bytes(1)))
    with pytest.raises(CallError) as raised:
        harness.call(framework_id, stream_id, ack("M-S77", "t1", uuid_bytes(1)))
    assert raised.value.code is ErrorCode.NOT_FOUND


def test_ack_for_disconnected_agent_is_dropped(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = launch(harness, agent, "t1")
    harness.status_update(agent, framework_id, "t1", mesos_pb2.TASK_RUNNING, uuid_bytes(1))
    harness.disconnect_agent(agent)
    harness.call(framework_id, stream_id, ack(agent.agent_id, "t1", uuid_bytes(1)))
    assert harness.to_agent(agent.agent_id, "status_update_acknowledgement") == []


# -- kill ------------------------------------------------------------------------------------


def kill(task_id: str, agent_id: str | None = None) -> Call:
    call = Call(type=Call.KILL)
    call.kill.task_id.value = task_id
    if agent_id is not None:
        call.kill.agent_id.value = agent_id
    return call


def test_kill_is_sent_to_the_agent_with_the_kill_policy(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = launch(harness, agent, "t1")
    call = kill("t1", agent.agent_id)
    call.kill.kill_policy.grace_period.nanoseconds = 3_000_000_000
    harness.call(framework_id, stream_id, call)
    (message,) = harness.to_agent(agent.agent_id, "kill_task")
    assert message.kill_task.task_id.value == "t1"
    assert message.kill_task.kill_policy.grace_period.nanoseconds == 3_000_000_000


def test_kill_of_unknown_task_answers_with_reconciliation(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, stream_id = launch(harness, agent, "t1")
    harness.call(framework_id, stream_id, kill("ghost", agent.agent_id))
    (status,) = harness.updates(framework_id)
    assert status.task_id.value == "ghost"
    assert status.state == mesos_pb2.TASK_LOST  # TASK_GONE for a PARTITION_AWARE framework.
    assert status.reason == mesos_pb2.TaskStatus.REASON_RECONCILIATION
    assert harness.to_agent(agent.agent_id, "kill_task") == []


def test_kill_on_a_disconnected_agent_is_sent_when_it_returns(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, stream_id = launch(harness, agent, "t1")
    harness.disconnect_agent(agent)
    harness.call(framework_id, stream_id, kill("t1"))
    assert harness.to_agent(agent.agent_id, "kill_task") == []
    task = mesos_pb2.Task(state=mesos_pb2.TASK_RUNNING)
    task.task_id.value = "t1"
    task.framework_id.value = framework_id
    task.agent_id.value = agent.agent_id
    task.resources.extend(Resources.parse("cpus:1;mem:128").to_protos(allocation_role="*"))
    harness.reregister_agent(agent.agent_id, tasks=[task])
    (message,) = harness.to_agent(agent.agent_id, "kill_task")
    assert message.kill_task.task_id.value == "t1"


def test_kill_naming_another_agent_is_refused(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = launch(harness, agent, "t1")
    with pytest.raises(CallError, match="is not the agent of task"):
        harness.call(framework_id, stream_id, kill("t1", "M-S5"))
    with pytest.raises(CallError, match=r"kill\.task_id is required"):
        harness.call(framework_id, stream_id, kill(""))


# -- shutdown, messages ------------------------------------------------------------------------


def test_shutdown_executor_goes_to_the_agent(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = harness.subscribe()
    call = Call(type=Call.SHUTDOWN)
    call.shutdown.executor_id.value = "e1"
    call.shutdown.agent_id.value = agent.agent_id
    harness.call(framework_id, stream_id, call)
    (message,) = harness.to_agent(agent.agent_id, "shutdown_executor")
    assert message.shutdown_executor.executor_id.value == "e1"
    assert message.shutdown_executor.framework_id.value == framework_id
    call.shutdown.agent_id.value = "M-S9"
    with pytest.raises(CallError) as raised:
        harness.call(framework_id, stream_id, call)
    assert raised.value.code is ErrorCode.NOT_FOUND


def test_framework_message_to_executor_and_back(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = harness.subscribe()
    call = Call(type=Call.MESSAGE)
    call.message.agent_id.value = agent.agent_id
    call.message.executor_id.value = "e1"
    call.message.data = b"hello"
    harness.call(framework_id, stream_id, call)
    (message,) = harness.to_agent(agent.agent_id, "framework_to_executor")
    assert message.framework_to_executor.data == b"hello"
    reply = agent_internal_pb2.AgentMessage()
    reply.executor_to_framework.framework_id.value = framework_id
    reply.executor_to_framework.executor_id.value = "e1"
    reply.executor_to_framework.data = b"hi"
    harness.agent_send(agent, reply)
    (event,) = harness.events(framework_id, Event.MESSAGE)
    assert (event.message.agent_id.value, event.message.executor_id.value, event.message.data) == (
        agent.agent_id,
        "e1",
        b"hi",
    )
    with pytest.raises(CallError, match=r"message\.executor_id is required"):
        harness.call(framework_id, stream_id, Call(type=Call.MESSAGE, message=Call.Message()))


def test_message_to_disconnected_agent_is_dropped(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = harness.subscribe()
    harness.disconnect_agent(agent)
    call = Call(type=Call.MESSAGE)
    call.message.agent_id.value = agent.agent_id
    call.message.executor_id.value = "e1"
    harness.call(framework_id, stream_id, call)
    assert harness.to_agent(agent.agent_id, "framework_to_executor") == []


def test_request_is_accepted_and_ignored(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = harness.subscribe()
    call = Call(type=Call.REQUEST)
    call.request.requests.add().resources.extend(Resources.parse("cpus:1").to_protos())
    assert harness.call(framework_id, stream_id, call) == []
    with pytest.raises(CallError, match="request is required"):
        harness.call(framework_id, stream_id, Call(type=Call.REQUEST))


def test_inverse_offer_and_operation_calls(harness: Harness) -> None:
    framework_id, stream_id = harness.subscribe()
    call = Call(type=Call.DECLINE_INVERSE_OFFERS)
    call.decline_inverse_offers.inverse_offer_ids.add(value="x")
    assert harness.call(framework_id, stream_id, call) == []
    call = Call(type=Call.ACKNOWLEDGE_OPERATION_STATUS)
    call.acknowledge_operation_status.uuid = uuid_bytes(1)
    with pytest.raises(CallError) as raised:
        harness.call(framework_id, stream_id, call)
    assert raised.value.code is ErrorCode.NOT_FOUND
    call = Call(type=Call.RECONCILE_OPERATIONS)
    call.reconcile_operations.operations.add().operation_id.value = "op1"
    harness.call(framework_id, stream_id, call)
    (event,) = harness.events(framework_id, Event.UPDATE_OPERATION_STATUS)
    assert event.update_operation_status.status.state == mesos_pb2.OPERATION_UNKNOWN


def test_a_batch_of_updates_releases_resources_together(harness: Harness, agent: FakeAgent) -> None:
    framework_id, _ = launch(harness, agent, "t1", "t2", "t3")
    batch = []
    for n, task_id in enumerate(("t1", "t2", "t3")):
        message = agent_internal_pb2.AgentMessage()
        message.status_update.framework_id.value = framework_id
        message.status_update.status.task_id.value = task_id
        message.status_update.status.state = mesos_pb2.TASK_FINISHED
        message.status_update.status.uuid = uuid_bytes(n + 1)
        batch.append(message)
        if n == 0:
            pong = agent_internal_pb2.AgentMessage()
            pong.pong.seq = 0
            batch.append(pong)  # Another kind in the middle hands over what came before.
    effects = harness._record(
        harness.master.agent_messages(agent.connection_id, batch, harness.now)
    )
    assert len(harness.updates(framework_id)) == 3
    assert len(effects) == 3
    assert allocated(harness, agent.agent_id) == Resources.EMPTY
    assert harness.master.state.pending_releases == {}
