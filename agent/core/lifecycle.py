"""What every handler shares: sending a task's update, recording its new state, retiring what ended.

A reliable update is created here and handed to the status update manager; a task's terminal
state stops what watched it (kill and completion timers, health checks) and shrinks its
executor's container. A task is forgotten once its terminal update is acknowledged; an executor
once its container is gone and its tasks forgotten (its checkpoint removed, its sandbox handed
to the garbage collector); a framework once it has no executor left.
"""

from __future__ import annotations

from agent.core.effects import (
    CancelTimer,
    CloseExecutorStream,
    Effect,
    RemoveExecutorCheckpoint,
    RemoveFrameworkCheckpoint,
    ScheduleSandboxGC,
    SendToMaster,
    SetTimer,
    StopHealthCheck,
    UpdateContainer,
)
from agent.core.messages import make_status
from agent.core.model import (
    ExecutorKind,
    ExecutorPhase,
    ExecutorRecord,
    FrameworkRecord,
    TaskRecord,
)
from agent.core.state import MAX_COMPLETED_FRAMEWORKS, AgentState
from agent.core.status_updates import StreamOwner, is_terminal
from protos.resources import Resources
from protos.v1 import mesos_pb2
from protos.v1.agent_internal_pb2 import AgentMessage

__all__ = [
    "fail_live_tasks",
    "max_completion_timer",
    "flush_held_messages",
    "send_to_master_surely",
    "hold",
    "release",
    "retire_executor_if_done",
    "retire_framework_if_done",
    "send_update",
    "stream_closed",
    "task_state_changed",
]

_SOURCE_AGENT = mesos_pb2.TaskStatus.SOURCE_AGENT


def hold(state: AgentState, resources: Resources) -> None:
    """Count ``resources`` as held (a task admitted, an executor started)."""
    in_use = state.scalars_in_use
    for name, n in resources.non_revocable().scalar_thousandths().items():
        in_use[name] = in_use.get(name, 0) + n


def release(state: AgentState, resources: Resources) -> None:
    """Stop counting ``resources`` (a task ended or was forgotten, an executor ended)."""
    in_use = state.scalars_in_use
    for name, n in resources.non_revocable().scalar_thousandths().items():
        in_use[name] = in_use.get(name, 0) - n


def send_to_master_surely(state: AgentState, message: AgentMessage) -> list[Effect]:
    """Send ``message`` now, or, with no session open, once the next one is.

    For what the master cannot learn otherwise: an executor that ended between the agent's
    (re)registration message and the master's reply is in the report the master rebuilds the
    agent from, and would be counted running for ever if its exit were dropped.
    """
    if state.connected:
        return [SendToMaster(message)]
    state.held_for_master.append(message)
    return []


def flush_held_messages(state: AgentState) -> list[Effect]:
    """The session is open: send what was held for it."""
    held, state.held_for_master = state.held_for_master, []
    return [SendToMaster(m) for m in held]


def send_update(
    state: AgentState,
    framework_id: str,
    task_id: str,
    executor_id: str | None,
    task_state: mesos_pb2.TaskState.ValueType,
    *,
    now: float,
    source: mesos_pb2.TaskStatus.Source.ValueType = _SOURCE_AGENT,
    reason: mesos_pb2.TaskStatus.Reason.ValueType | None = None,
    message: str | None = None,
    healthy: bool | None = None,
    container_id: str | None = None,
) -> list[Effect]:
    """Create a reliable update for a task and hand it to the status update manager."""
    framework = state.frameworks.get(framework_id)
    executor = state.executor(framework_id, executor_id) if executor_id else None
    task = executor.tasks.get(task_id) if executor is not None else None
    status = make_status(
        task_id,
        task_state,
        source=source,
        now=now,
        uuid=state.new_uuid(),
        agent_id=state.agent_id,
        executor_id=executor_id,
        reason=reason,
        message=message,
        healthy=healthy,
        container_id=container_id,
    )
    owner = StreamOwner(framework_id, executor_id)
    if framework is not None and executor is not None:
        owner = StreamOwner(framework_id, executor_id, executor.container_id, executor.checkpoint)
    _, effects = state.updates.update(status, owner, now)
    if task is not None and executor is not None:
        effects += task_state_changed(state, executor, task, task_state)
    return effects


def task_state_changed(
    state: AgentState,
    executor: ExecutorRecord,
    task: TaskRecord,
    task_state: mesos_pb2.TaskState.ValueType,
) -> list[Effect]:
    """Record a task's new state; on a terminal one stop what watched it."""
    was_terminal = task.terminal
    task.state = task_state
    task.launched = True
    if not is_terminal(task_state) or was_terminal:
        return []
    state.tasks_ended[task_state] = state.tasks_ended.get(task_state, 0) + 1
    release(state, task.resources)
    effects: list[Effect] = [
        CancelTimer(("kill", task.framework_id, task.task_id)),
        CancelTimer(("max-completion", task.framework_id, task.task_id)),
    ]
    if executor.kind is not ExecutorKind.CUSTOM:
        effects.append(StopHealthCheck(task.framework_id, task.task_id))
    elif executor.phase in (ExecutorPhase.REGISTERING, ExecutorPhase.RUNNING):
        # The task's share of the container is released as soon as it is terminal.
        effects.append(UpdateContainer(executor.container_id, executor.container_resources()))
    return effects


def max_completion_timer(task: TaskRecord, now: float) -> list[Effect]:
    """Arm the timer that kills ``task`` at its ``max_completion_time``, if it has one.

    Keyed by the task, so :func:`task_state_changed` cancels it whatever the executor kind.
    """
    if not task.info.HasField("max_completion_time"):
        return []
    deadline = now + max(0.0, task.info.max_completion_time.nanoseconds / 1e9)
    return [SetTimer(("max-completion", task.framework_id, task.task_id), deadline)]


def fail_live_tasks(
    state: AgentState,
    executor: ExecutorRecord,
    task_state: mesos_pb2.TaskState.ValueType,
    reason: mesos_pb2.TaskStatus.Reason.ValueType,
    message: str,
    *,
    now: float,
) -> list[Effect]:
    """Send ``task_state`` for every task of ``executor`` that is not terminal yet."""
    executor.queue.clear()
    effects: list[Effect] = []
    for task in list(executor.tasks.values()):
        if not task.terminal:
            effects += send_update(
                state,
                executor.framework_id,
                task.task_id,
                executor.executor_id,
                task_state,
                now=now,
                reason=reason,
                message=message,
            )
    return effects


def stream_closed(
    state: AgentState, framework_id: str, task_id: str, executor_id: str | None
) -> list[Effect]:
    """A task's terminal update was acknowledged: forget the task, maybe its executor."""
    executor = state.executor(framework_id, executor_id) if executor_id else None
    if executor is None:
        return []
    state.frameworks[framework_id].remove_task(executor, task_id)
    return retire_executor_if_done(state, executor)


def retire_executor_if_done(state: AgentState, executor: ExecutorRecord) -> list[Effect]:
    """Remove an executor whose container is gone and whose tasks are all done."""
    if executor.phase is not ExecutorPhase.TERMINATED or executor.tasks:
        return []
    framework = state.frameworks[executor.framework_id]
    del framework.executors[executor.executor_id]
    state.containers.pop(executor.container_id, None)
    effects: list[Effect] = [
        CancelTimer(("executor-registration", *executor.key)),
        CancelTimer(("executor-reregistration", *executor.key)),
        CancelTimer(("executor-shutdown", *executor.key)),
        ScheduleSandboxGC(executor.framework_id, executor.executor_id, executor.container_id),
    ]
    if executor.kind is ExecutorKind.CUSTOM:
        effects.append(CloseExecutorStream(*executor.key))
    if executor.checkpoint:
        effects.append(RemoveExecutorCheckpoint(*executor.key))
    return effects + retire_framework_if_done(state, framework)


def retire_framework_if_done(state: AgentState, framework: FrameworkRecord) -> list[Effect]:
    """Remove a framework with no executors left (and, if shut down, its streams)."""
    if framework.executors:
        return []
    del state.frameworks[framework.framework_id]
    completed = state.completed_framework_users
    completed.pop(framework.framework_id, None)
    completed[framework.framework_id] = framework.info.user
    while len(completed) > MAX_COMPLETED_FRAMEWORKS:
        del completed[next(iter(completed))]
    effects: list[Effect] = []
    if framework.shutting_down:
        for stream in state.updates:
            if stream.framework_id == framework.framework_id:
                effects += state.updates.remove(stream.framework_id, stream.task_id)
    if framework.checkpoint:
        effects.append(RemoveFrameworkCheckpoint(framework.framework_id))
    return effects
