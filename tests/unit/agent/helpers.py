"""Builders of master messages and effect filters for the agent core's unit tests."""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.message import Message

from agent.core import AgentState, RecoveredAgent, events, handle
from agent.core.effects import (
    Effect,
    ForwardUpdate,
    LookForContainer,
    SendToExecutor,
    SendToMaster,
)
from protos.resources import Resources
from protos.v1 import agent_internal_pb2, executor_pb2, mesos_pb2

FW = "fw-1"

LookedFor = tuple[str, dict[str, object] | None]


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
    return handle(state, master_ack(FW, task_id, stream.head.uuid), now)


def ack_all(state: AgentState, task_id: str, now: float = 1.0) -> list[Effect]:
    """Acknowledge updates of ``task_id`` until its stream is empty or closed."""
    effects: list[Effect] = []
    while (stream := state.updates.get(FW, task_id)) is not None and stream.head is not None:
        effects += handle(state, master_ack(FW, task_id, stream.head.uuid), now)
    return effects


# -- events: what the tests feed the core through ``handle`` --


def from_master(**payload: Message) -> events.MasterMessageReceived:
    """A master message with one payload field set, e.g. ``from_master(run_task=run)``."""
    message = agent_internal_pb2.MasterMessage()
    [(name, value)] = payload.items()
    getattr(message, name).CopyFrom(value)
    return events.MasterMessageReceived(message)


def master_registered(agent_id: str) -> events.MasterMessageReceived:
    """The master's AgentRegistered reply."""
    reply = agent_internal_pb2.AgentRegistered()
    reply.agent_id.value = agent_id
    return from_master(agent_registered=reply)


def master_reregistered(
    reconciliations: Sequence[agent_internal_pb2.ReconcileTasks] = (), agent_id: str = "agent-1"
) -> events.MasterMessageReceived:
    """The master's AgentReregistered reply (with tasks to reconcile)."""
    reply = agent_internal_pb2.AgentReregistered()
    reply.agent_id.value = agent_id
    reply.reconciliations.extend(reconciliations)
    return from_master(agent_reregistered=reply)


def master_kill(
    framework_id: str, task_id: str, policy: mesos_pb2.KillPolicy | None = None
) -> events.MasterMessageReceived:
    """KillTask."""
    kill = agent_internal_pb2.KillTask()
    kill.framework_id.value = framework_id
    kill.task_id.value = task_id
    if policy is not None:
        kill.kill_policy.CopyFrom(policy)
    return from_master(kill_task=kill)


def master_ack(framework_id: str, task_id: str, uuid: bytes) -> events.MasterMessageReceived:
    """A StatusUpdateAcknowledgement."""
    ack = agent_internal_pb2.StatusUpdateAcknowledgement(uuid=uuid)
    ack.framework_id.value = framework_id
    ack.task_id.value = task_id
    return from_master(status_update_acknowledgement=ack)


def master_relay(framework_id: str, executor_id: str, data: bytes) -> events.MasterMessageReceived:
    """FrameworkToExecutor: a scheduler's message for its executor."""
    relay = agent_internal_pb2.FrameworkToExecutor(data=data)
    relay.framework_id.value = framework_id
    relay.executor_id.value = executor_id
    return from_master(framework_to_executor=relay)


def master_shutdown_framework(framework_id: str) -> events.MasterMessageReceived:
    """ShutdownFramework."""
    shutdown = agent_internal_pb2.ShutdownFramework()
    shutdown.framework_id.value = framework_id
    return from_master(shutdown_framework=shutdown)


def master_shutdown_executor(framework_id: str, executor_id: str) -> events.MasterMessageReceived:
    """ShutdownExecutor."""
    shutdown = agent_internal_pb2.ShutdownExecutor()
    shutdown.framework_id.value = framework_id
    shutdown.executor_id.value = executor_id
    return from_master(shutdown_executor=shutdown)


def master_reconcile(
    framework_id: str, statuses: Sequence[mesos_pb2.TaskStatus]
) -> events.MasterMessageReceived:
    """ReconcileTasks."""
    reconcile = agent_internal_pb2.ReconcileTasks()
    reconcile.framework_id.value = framework_id
    reconcile.statuses.extend(statuses)
    return from_master(reconcile_tasks=reconcile)


def master_update_framework(
    framework_id: str, info: mesos_pb2.FrameworkInfo
) -> events.MasterMessageReceived:
    """UpdateFramework."""
    update = agent_internal_pb2.UpdateFramework()
    update.framework_id.value = framework_id
    update.framework_info.CopyFrom(info)
    return from_master(update_framework=update)


def subscribe_call(
    tasks: Sequence[mesos_pb2.TaskInfo] = (), updates: Sequence[mesos_pb2.TaskStatus] = ()
) -> executor_pb2.Call.Subscribe:
    """An executor's SUBSCRIBE with the tasks and updates it holds unacknowledged."""
    subscribe = executor_pb2.Call.Subscribe()
    subscribe.unacknowledged_tasks.extend(tasks)
    for status in updates:
        subscribe.unacknowledged_updates.add().status.CopyFrom(status)
    return subscribe


def recover(state: AgentState, agent: RecoveredAgent, now: float = 0.0) -> list[LookedFor]:
    """Feed RecoverFromCheckpoint; return the (container id, state) of each LookForContainer."""
    effects = handle(state, events.RecoverFromCheckpoint(agent), now)
    assert all(isinstance(e, LookForContainer) for e in effects), effects
    return [(e.container_id, e.state) for e in effects if isinstance(e, LookForContainer)]
