"""Builders of the wire messages the agent's core hands out (statuses, events, master messages).

The core keeps its state in plain records; these pure functions turn that state into the
protobuf messages its effects carry, so the conversion lives in one place.
"""

from __future__ import annotations

from protos.v1 import agent_internal_pb2, executor_pb2, mesos_pb2

__all__ = [
    "acknowledged_event",
    "exited_executor_message",
    "executor_to_framework_message",
    "kill_event",
    "launch_event",
    "launch_group_event",
    "launch_refused_message",
    "make_status",
    "message_event",
    "shutdown_event",
    "status_update_message",
    "subscribed_event",
]


def make_status(
    task_id: str,
    state: mesos_pb2.TaskState.ValueType,
    *,
    source: mesos_pb2.TaskStatus.Source.ValueType,
    now: float,
    uuid: bytes | None,
    agent_id: str | None = None,
    executor_id: str | None = None,
    reason: mesos_pb2.TaskStatus.Reason.ValueType | None = None,
    message: str | None = None,
    healthy: bool | None = None,
    container_id: str | None = None,
) -> mesos_pb2.TaskStatus:
    """A TaskStatus with the given fields (``uuid=None``: an unreliable update)."""
    status = mesos_pb2.TaskStatus(state=state, source=source, timestamp=now)
    status.task_id.value = task_id
    if uuid is not None:
        status.uuid = uuid
    if agent_id:
        status.agent_id.value = agent_id
    if executor_id:
        status.executor_id.value = executor_id
    if reason is not None:
        status.reason = reason
    if message:
        status.message = message
    if healthy is not None:
        status.healthy = healthy
    if container_id:
        status.container_status.container_id.value = container_id
    return status


def status_update_message(
    framework_id: str,
    executor_id: str | None,
    status: mesos_pb2.TaskStatus,
    latest_state: mesos_pb2.TaskState.ValueType,
) -> agent_internal_pb2.AgentMessage:
    """The AgentMessage forwarding ``status`` (with the task's newest state) to the master."""
    message = agent_internal_pb2.AgentMessage()
    update = message.status_update
    update.framework_id.value = framework_id
    if executor_id:
        update.executor_id.value = executor_id
    update.status.CopyFrom(status)
    update.latest_state = latest_state
    return message


def launch_refused_message(
    framework_id: str,
    task_id: str,
    message: str,
    reason: mesos_pb2.TaskStatus.Reason.ValueType,
) -> agent_internal_pb2.AgentMessage:
    """The AgentMessage refusing a launch that reuses the id of a task the agent still holds."""
    envelope = agent_internal_pb2.AgentMessage()
    refused = envelope.launch_refused
    refused.framework_id.value = framework_id
    refused.task_id.value = task_id
    refused.message = message
    refused.reason = reason
    return envelope


def exited_executor_message(
    framework_id: str, executor_id: str, status: int | None
) -> agent_internal_pb2.AgentMessage:
    """The AgentMessage telling the master an executor ended with wait status ``status``
    (None: it never started)."""
    message = agent_internal_pb2.AgentMessage()
    exited = message.exited_executor
    exited.framework_id.value = framework_id
    exited.executor_id.value = executor_id
    if status is not None:
        exited.status = status
    return message


def executor_to_framework_message(
    framework_id: str, executor_id: str, data: bytes
) -> agent_internal_pb2.AgentMessage:
    """The AgentMessage carrying an executor's framework message to the master."""
    message = agent_internal_pb2.AgentMessage()
    payload = message.executor_to_framework
    payload.framework_id.value = framework_id
    payload.executor_id.value = executor_id
    payload.data = data
    return message


def subscribed_event(
    executor_info: mesos_pb2.ExecutorInfo,
    framework_info: mesos_pb2.FrameworkInfo,
    agent_info: mesos_pb2.AgentInfo,
    container_id: str,
) -> executor_pb2.Event:
    """The SUBSCRIBED event that opens an executor's event stream."""
    event = executor_pb2.Event(type=executor_pb2.Event.SUBSCRIBED)
    event.subscribed.executor_info.CopyFrom(executor_info)
    event.subscribed.framework_info.CopyFrom(framework_info)
    event.subscribed.agent_info.CopyFrom(agent_info)
    event.subscribed.container_id.value = container_id
    return event


def launch_event(task: mesos_pb2.TaskInfo) -> executor_pb2.Event:
    """A LAUNCH event for one task."""
    event = executor_pb2.Event(type=executor_pb2.Event.LAUNCH)
    event.launch.task.CopyFrom(task)
    return event


def launch_group_event(tasks: list[mesos_pb2.TaskInfo]) -> executor_pb2.Event:
    """A LAUNCH_GROUP event for tasks launched together."""
    event = executor_pb2.Event(type=executor_pb2.Event.LAUNCH_GROUP)
    event.launch_group.task_group.tasks.extend(tasks)
    return event


def kill_event(task_id: str, kill_policy: mesos_pb2.KillPolicy | None) -> executor_pb2.Event:
    """A KILL event (with the scheduler's kill policy, if it gave one)."""
    event = executor_pb2.Event(type=executor_pb2.Event.KILL)
    event.kill.task_id.value = task_id
    if kill_policy is not None:
        event.kill.kill_policy.CopyFrom(kill_policy)
    return event


def acknowledged_event(task_id: str, uuid: bytes) -> executor_pb2.Event:
    """An ACKNOWLEDGED event: the agent has taken over the update with ``uuid``."""
    event = executor_pb2.Event(type=executor_pb2.Event.ACKNOWLEDGED)
    event.acknowledged.task_id.value = task_id
    event.acknowledged.uuid = uuid
    return event


def message_event(data: bytes) -> executor_pb2.Event:
    """A MESSAGE event with a scheduler's framework message."""
    event = executor_pb2.Event(type=executor_pb2.Event.MESSAGE)
    event.message.data = data
    return event


def shutdown_event() -> executor_pb2.Event:
    """A SHUTDOWN event: kill every task and exit."""
    return executor_pb2.Event(type=executor_pb2.Event.SHUTDOWN)
