"""Builders of master messages and effect filters for the agent core's unit tests."""

from __future__ import annotations

from collections.abc import Sequence

from agent.core import AgentState
from agent.core.effects import Effect, ForwardUpdate, SendToExecutor, SendToMaster
from protos.resources import Resources
from protos.v1 import agent_internal_pb2, executor_pb2, mesos_pb2

FW = "fw-1"


def framework_info(
    checkpoint: bool = False, capabilities: Sequence[int] = ()
) -> mesos_pb2.FrameworkInfo:
    info = mesos_pb2.FrameworkInfo(name="test", user="", checkpoint=checkpoint)
    info.id.value = FW
    for capability in capabilities:
        info.capabilities.add(type=capability)
    return info


def task_info(
    task_id: str, resources: str = "cpus:1;mem:128", command: str | None = "true"
) -> mesos_pb2.TaskInfo:
    task = mesos_pb2.TaskInfo(name=task_id)
    task.task_id.value = task_id
    task.resources.extend(Resources.parse(resources).to_protos())
    if command is not None:
        task.command.value = command
    return task


def executor_info(
    executor_id: str = "ex", resources: str = "cpus:0.1;mem:32"
) -> mesos_pb2.ExecutorInfo:
    info = mesos_pb2.ExecutorInfo(type=mesos_pb2.ExecutorInfo.CUSTOM)
    info.executor_id.value = executor_id
    info.command.value = "run-executor"
    info.resources.extend(Resources.parse(resources).to_protos())
    return info


def default_executor_info(
    executor_id: str = "dex", resources: str = "cpus:0.1;mem:32"
) -> mesos_pb2.ExecutorInfo:
    """A DEFAULT ExecutorInfo (no command): the agent plays the default executor."""
    info = mesos_pb2.ExecutorInfo(type=mesos_pb2.ExecutorInfo.DEFAULT)
    info.executor_id.value = executor_id
    info.resources.extend(Resources.parse(resources).to_protos())
    return info


def run_group(
    tasks: Sequence[mesos_pb2.TaskInfo],
    checkpoint: bool = False,
    executor: mesos_pb2.ExecutorInfo | None = None,
    capabilities: Sequence[int] = (),
) -> agent_internal_pb2.RunTaskGroup:
    """A RunTaskGroup of ``tasks`` for the default executor 'dex' (unless ``executor``)."""
    run = agent_internal_pb2.RunTaskGroup()
    run.framework_info.CopyFrom(framework_info(checkpoint, capabilities))
    run.executor.CopyFrom(executor if executor is not None else default_executor_info())
    run.task_group.tasks.extend(tasks)
    return run


def run_task(
    task: mesos_pb2.TaskInfo,
    checkpoint: bool = False,
    executor: mesos_pb2.ExecutorInfo | None = None,
    capabilities: Sequence[int] = (),
) -> agent_internal_pb2.RunTask:
    run = agent_internal_pb2.RunTask()
    run.framework_info.CopyFrom(framework_info(checkpoint, capabilities))
    run.framework_id.value = FW
    run.task.CopyFrom(task)
    if executor is not None:
        run.executor.CopyFrom(executor)
    return run


def forwarded(effects: Sequence[Effect]) -> list[tuple[str, int]]:
    """(task id, state) of every update forwarded to the master."""
    return [
        (e.status.task_id.value, e.status.state) for e in effects if isinstance(e, ForwardUpdate)
    ]


def forwarded_statuses(effects: Sequence[Effect]) -> list[mesos_pb2.TaskStatus]:
    return [e.status for e in effects if isinstance(e, ForwardUpdate)]


def to_executor(effects: Sequence[Effect]) -> list[executor_pb2.Event]:
    return [e.event for e in effects if isinstance(e, SendToExecutor)]


def to_master(effects: Sequence[Effect]) -> list[agent_internal_pb2.AgentMessage]:
    return [e.message for e in effects if isinstance(e, SendToMaster)]


def of_type(effects: Sequence[Effect], kind: type[Effect]) -> list[Effect]:
    return [e for e in effects if isinstance(e, kind)]


def ack_head(state: AgentState, task_id: str, now: float = 1.0) -> list[Effect]:
    """Acknowledge the update in flight for ``task_id``; return the effects."""
    stream = state.updates.get(FW, task_id)
    assert stream is not None
    assert stream.head is not None
    return state.acknowledge(FW, task_id, stream.head.uuid, now)[1]


def ack_all(state: AgentState, task_id: str, now: float = 1.0) -> list[Effect]:
    """Acknowledge updates of ``task_id`` until its stream is empty or closed."""
    effects: list[Effect] = []
    while (stream := state.updates.get(FW, task_id)) is not None and stream.head is not None:
        effects += state.acknowledge(FW, task_id, stream.head.uuid, now)[1]
    return effects
