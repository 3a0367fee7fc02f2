"""LaunchRefused: an agent refuses a launch reusing a live task's id; the live task is untouched."""

from __future__ import annotations

from protos.resources import Resources
from protos.v1 import agent_internal_pb2, mesos_pb2
from tests.unit.master.harness import FakeAgent, Harness, accept_call, command_task, uuid_bytes

Reason = mesos_pb2.TaskStatus


def refused(
    framework_id: str, task_id: str, message: str = "", reason: int | None = None
) -> agent_internal_pb2.AgentMessage:
    envelope = agent_internal_pb2.AgentMessage()
    body = envelope.launch_refused
    body.framework_id.value = framework_id
    body.task_id.value = task_id
    if message:
        body.message = message
    if reason is not None:
        body.reason = reason  # type: ignore[assignment]
    return envelope


def running_task(harness: Harness, agent: FakeAgent) -> str:
    """Subscribe a framework, launch 't1' (cpus:1;mem:128) and report it RUNNING."""
    framework_id, stream_id = harness.subscribe()
    harness.allocate()
    offer = harness.offers(framework_id)[-1]
    task = command_task("t1", agent.agent_id)
    harness.call(framework_id, stream_id, accept_call([offer.id.value], [task], refuse_seconds=0))
    harness.status_update(agent, framework_id, "t1", mesos_pb2.TASK_RUNNING, uuid_bytes(1))
    return framework_id


def allocated(harness: Harness, agent_id: str) -> Resources:
    total = Resources.EMPTY
    for resources in harness.master.state.allocator.agent_allocation(agent_id).values():
        total = total + resources
    return total


def test_a_refusal_reaches_the_framework_and_leaves_the_live_task_alone(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id = running_task(harness, agent)
    message = "task_id 't1' is in use by a task on this agent that has not finished"
    harness.agent_send(agent, refused(framework_id, "t1", message))
    error = harness.updates(framework_id)[-1]
    assert error.state == mesos_pb2.TASK_ERROR
    assert error.source == Reason.SOURCE_AGENT
    assert error.reason == Reason.REASON_TASK_INVALID
    assert error.message == message
    assert error.agent_id.value == agent.agent_id
    assert not error.HasField("uuid")  # Nothing for the scheduler to acknowledge.
    fw = harness.master.framework(framework_id)
    assert fw is not None
    task = fw.tasks["t1"]
    assert task.state == mesos_pb2.TASK_RUNNING
    assert task.status_update_uuid == uuid_bytes(1)
    assert allocated(harness, agent.agent_id) == Resources.parse("cpus:1;mem:128")
    # The live task still ends normally and is released once.
    harness.status_update(agent, framework_id, "t1", mesos_pb2.TASK_FINISHED, uuid_bytes(2))
    assert allocated(harness, agent.agent_id) == Resources.EMPTY


def test_a_refusal_carries_its_reason_and_a_default_message(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id = running_task(harness, agent)
    harness.agent_send(agent, refused(framework_id, "t1", reason=Reason.REASON_TASK_GROUP_INVALID))
    error = harness.updates(framework_id)[-1]
    assert error.reason == Reason.REASON_TASK_GROUP_INVALID
    assert error.message == "the agent refused to launch task 't1'"


def test_refusals_for_unknown_frameworks_or_without_task_id_are_dropped(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id = running_task(harness, agent)
    before = len(harness.updates())
    batch = [refused("no-such-framework", "t1", "x"), refused(framework_id, "", "x")]
    harness.master.agent_messages(agent.connection_id, batch, harness.now)
    assert len(harness.updates()) == before
    harness.master.validate()
