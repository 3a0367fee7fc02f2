"""Restarts: rebuilding the state from a checkpoint, and stopping in a way one can restart from.

After a restart the agent rebuilds its frameworks, executors, tasks and update streams from
the checkpoint (:class:`~agent.core.recovery.RecoveredAgent`), asks the runtime to look for each
container that may still run, and once all are answered finishes what the restart cut short
(group kills, default executors whose tasks have all ended). Stopping to restart destroys only
what no restart could recover: the executors of frameworks that do not checkpoint.
"""

from __future__ import annotations

import logging

from agent.core.default_executor import recover_groups
from agent.core.effects import Effect
from agent.core.lifecycle import hold
from agent.core.model import (
    ExecutorKind,
    ExecutorPhase,
    ExecutorRecord,
    FrameworkRecord,
    NestedContainer,
    TaskRecord,
    Termination,
    executor_kind,
)
from agent.core.recovery import RecoveredAgent, RecoveredExecutor, RecoveredTask
from agent.core.state import AgentState
from agent.core.status_updates import StreamOwner
from agent.core.timers import end_executor
from protos.resources import Resources
from protos.v1 import mesos_pb2

__all__ = ["recover", "recovery_done", "stop_unrecoverable"]

log = logging.getLogger(__name__)

_Status = mesos_pb2.TaskStatus


def stop_unrecoverable(state: AgentState, now: float) -> list[Effect]:
    """The agent is stopping to restart: destroy the executors no restart could recover.

    Those of frameworks that do not checkpoint; their tasks become TASK_LOST (TASK_GONE
    for partition-aware frameworks) with REASON_AGENT_RESTARTED when their containers end.
    """
    effects: list[Effect] = []
    for executor in state.executors():
        if executor.checkpoint or not executor.live:
            continue
        framework = state.frameworks[executor.framework_id]
        task_state = (
            mesos_pb2.TASK_GONE
            if framework.has_capability(mesos_pb2.FrameworkInfo.Capability.PARTITION_AWARE)
            else mesos_pb2.TASK_LOST
        )
        effects += end_executor(
            state,
            executor,
            Termination(
                task_state,
                _Status.REASON_AGENT_RESTARTED,
                "The agent stopped; tasks of frameworks that do not checkpoint cannot"
                " survive its restart",
            ),
            now,
        )
    return effects


def recover(state: AgentState, agent: RecoveredAgent) -> list[tuple[str, dict[str, object] | None]]:
    """Rebuild the records of a checkpointed agent; return the containers to look for.

    Each returned ``(container_id, container_state)`` must be answered by the runtime with
    ``ContainerRecovered`` (still running) or ``ContainerExited`` (gone).
    """
    if state.connected or state.frameworks:
        raise RuntimeError("recover() must come first, before any master or task event")
    state.agent_info.id.CopyFrom(agent.agent_info.id)
    wanted: list[tuple[str, dict[str, object] | None]] = []
    for recovered_framework in agent.frameworks:
        framework_id = recovered_framework.framework_id
        framework = FrameworkRecord(framework_id, recovered_framework.info)
        state.frameworks[framework_id] = framework
        for recovered in recovered_framework.executors:
            wanted += _recover_executor(state, framework, recovered)
    state.recovering = bool(state.frameworks)
    return wanted


def _recover_executor(
    state: AgentState, framework: FrameworkRecord, recovered: RecoveredExecutor
) -> list[tuple[str, dict[str, object] | None]]:
    """Rebuild a checkpointed executor and its tasks; return the containers to look for."""
    framework_id = framework.framework_id
    kind = executor_kind(recovered.info)
    default = kind is ExecutorKind.DEFAULT
    executor = ExecutorRecord(
        framework_id,
        recovered.executor_id,
        kind,
        recovered.info,
        recovered.container_id,
        Resources.from_protos(recovered.info.resources),
        checkpoint=True,
        phase=ExecutorPhase.RUNNING if default else ExecutorPhase.LAUNCHING,
        recovered=not default,
    )
    wanted: list[tuple[str, dict[str, object] | None]] = []
    for task in recovered.tasks:
        task_id = task.info.task_id.value
        owner = StreamOwner(framework_id, recovered.executor_id, recovered.container_id, True)
        stream = state.updates.recover(owner, task_id, task.records)
        if stream is None:
            continue  # Its terminal update was acknowledged: nothing left to do.
        record = TaskRecord(
            framework_id,
            task_id,
            recovered.executor_id,
            task.info,
            Resources.from_protos(task.info.resources),
            state=stream.latest_state or mesos_pb2.TASK_STAGING,
            launched=True,
        )
        framework.add_task(executor, record)
        if not record.terminal:
            hold(state, record.resources)
        if default:
            wanted += _recover_nested(state, executor, record, task)
    framework.executors[executor.executor_id] = executor
    hold(state, executor.resources)
    if default:
        # A task whose group record was lost is still named by its group's other tasks.
        for record in executor.tasks.values():
            groups = (t.group for t in executor.tasks.values() if record.task_id in t.group)
            record.group = record.group or next(groups, ())
        return wanted  # A default executor has no container of its own.
    state.containers[executor.container_id] = executor.key
    return [(executor.container_id, recovered.container_state)]


def _recover_nested(
    state: AgentState, executor: ExecutorRecord, record: TaskRecord, task: RecoveredTask
) -> list[tuple[str, dict[str, object] | None]]:
    """Rebuild a default executor's task's container record; return it to look for."""
    record.group = task.group
    # Without a recorded id (a damaged checkpoint) the task's container cannot be found:
    # a fresh id is looked for in vain, and the task is reported lost with its group.
    container_id = task.container_id or state.new_container_id()
    launched = record.state not in (mesos_pb2.TASK_STAGING, mesos_pb2.TASK_STARTING)
    record.container = NestedContainer(container_id, launched=launched, gone=record.terminal)
    if record.terminal:
        return []
    state.containers[container_id] = executor.key
    return [(container_id, task.container_state)]


def recovery_done(state: AgentState, now: float) -> list[Effect]:
    """Every recovered container has been looked for: finish what the restart interrupted.

    That is: kill what remains of task groups one of whose tasks failed or was killed, and
    end default executors whose tasks have all ended.
    """
    if not state.recovering:
        return []
    state.recovering = False
    log.info(
        "Recovered %d frameworks, %d executors",
        len(state.frameworks),
        sum(1 for _ in state.executors()),
    )
    return recover_groups(state, now)
