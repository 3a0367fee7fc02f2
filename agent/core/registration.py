"""The messages that open a session with the master: RegisterAgent or ReregisterAgent.

Pure queries of the state (they change nothing): a fresh agent registers; one with an id
reregisters with everything it still runs or must report (each task with its latest state,
its acknowledged and pending updates), so the master can take it back without killing its
tasks. Frameworks being shut down are left out: the master has forgotten them.
"""

from __future__ import annotations

from agent.core.model import ExecutorKind, ExecutorRecord, FrameworkRecord, TaskRecord
from agent.core.state import AgentState
from protos.v1 import agent_internal_pb2, mesos_pb2

__all__ = [
    "AGENT_CAPABILITIES",
    "hello_message",
    "register_message",
    "reregister_message",
    "task_proto",
]

_Capability = mesos_pb2.AgentInfo.Capability

AGENT_CAPABILITIES = (
    _Capability.MULTI_ROLE,
    _Capability.HIERARCHICAL_ROLE,
    _Capability.RESERVATION_REFINEMENT,
)


def hello_message(state: AgentState, boot_id: str, version: str) -> agent_internal_pb2.AgentMessage:
    """The first message of a session: RegisterAgent without an id, else ReregisterAgent."""
    if state.agent_id is None:
        return register_message(state, boot_id, version)
    return reregister_message(state, boot_id, version)


def register_message(
    state: AgentState, boot_id: str, version: str
) -> agent_internal_pb2.AgentMessage:
    """RegisterAgent: the first message of an agent without an id."""
    message = agent_internal_pb2.AgentMessage()
    register = message.register_agent
    register.agent_info.CopyFrom(state.agent_info)
    register.agent_info.ClearField("id")
    register.version = version
    register.boot_id = boot_id
    register.agent_capabilities.extend(
        mesos_pb2.AgentInfo.Capability(type=c) for c in AGENT_CAPABILITIES
    )
    return message


def reregister_message(
    state: AgentState, boot_id: str, version: str
) -> agent_internal_pb2.AgentMessage:
    """ReregisterAgent: the agent's id and everything it still runs or must report."""
    message = agent_internal_pb2.AgentMessage()
    reregister = message.reregister_agent
    reregister.agent_info.CopyFrom(state.agent_info)
    reregister.boot_id = boot_id
    reregister.version = version
    reregister.agent_capabilities.extend(
        mesos_pb2.AgentInfo.Capability(type=c) for c in AGENT_CAPABILITIES
    )
    for framework in state.frameworks.values():
        if framework.shutting_down:
            continue
        reregister.frameworks.append(framework.info)
        for executor in framework.executors.values():
            if executor.kind is not ExecutorKind.COMMAND and executor.live:
                reregister.executor_infos.append(executor.info)
            for task in executor.tasks.values():
                reregister.tasks.append(task_proto(state, framework, executor, task))
    return message


def task_proto(
    state: AgentState, framework: FrameworkRecord, executor: ExecutorRecord, task: TaskRecord
) -> mesos_pb2.Task:
    """The ``mesos.v1.Task`` describing a task the agent holds."""
    info = task.info
    proto = mesos_pb2.Task(name=info.name, state=task.state)
    proto.task_id.value = task.task_id
    proto.framework_id.value = task.framework_id
    if executor.kind is not ExecutorKind.COMMAND:
        proto.executor_id.value = executor.executor_id
    if state.agent_id:
        proto.agent_id.value = state.agent_id
    proto.resources.extend(info.resources)
    stream = state.updates.get(task.framework_id, task.task_id)
    if stream is not None:
        if stream.last_acknowledged is not None:
            proto.statuses.append(stream.last_acknowledged)
        proto.statuses.extend(stream.pending)
        if stream.head is not None:
            proto.status_update_state = stream.head.state
            proto.status_update_uuid = stream.head.uuid
    for name in ("labels", "discovery", "container", "health_check", "kill_policy"):
        if info.HasField(name):
            getattr(proto, name).CopyFrom(getattr(info, name))
    user = info.command.user if info.command.HasField("user") else framework.info.user
    if user:
        proto.user = user
    for name, value in info.limits.items():
        proto.limits[name].CopyFrom(value)
    return proto
