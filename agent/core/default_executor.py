"""The default executor: task groups that the agent runs itself, each task in its own container.

Mesos runs a task group under its built-in *default executor*, a process that asks the agent
for one nested container per task. Here the agent plays that executor itself, as it plays the
command executor, so a group costs no executor process. Its rules (after Mesos's
``src/launcher/default_executor.cpp`` and the scheduler API's KILL):

* **Atomic launch.** A group's containers are launched together, and its tasks become
  TASK_RUNNING together once every one of them has started. If one cannot be launched, the
  others are destroyed and every task of the group fails with REASON_CONTAINER_LAUNCH_FAILED.
* **A group ends together.** When a task fails or is killed, the rest of its group is killed
  (so the scheduler's KILL of one task kills the whole group); a task that finishes leaves the
  others running. Each task keeps its own updates, kill policy, health checks and
  ``max_completion_time``, and its terminal update is sent once its container is gone.
* **The executor ends with its last task** (the master then gets ExitedExecutor, status 0).
  Its own resources count as allocated until then; no container is sized for them.
"""

from __future__ import annotations

import signal

from agent.core.effects import (
    DestroyContainer,
    Effect,
    LaunchContainer,
    SetTimer,
    SignalContainer,
    StartHealthCheck,
)
from agent.core.lifecycle import (
    max_completion_timer,
    release,
    retire_executor_if_done,
    send_to_master_surely,
    send_update,
    task_state_changed,
)
from agent.core.messages import exited_executor_message
from agent.core.model import (
    ContainerExit,
    ExecutorKind,
    ExecutorPhase,
    ExecutorRecord,
    FrameworkRecord,
    TaskRecord,
    Termination,
    command_task_outcome,
    grace_period,
)
from agent.core.state import AgentState, nested_task
from protos.v1 import mesos_pb2

__all__ = [
    "end_default",
    "end_default_if_done",
    "kill_default_task",
    "launch_group",
    "nested_exited",
    "nested_kill_due",
    "nested_launch_failed",
    "nested_launched",
    "nested_recovered",
    "recover_groups",
    "shutdown_default",
]

_Status = mesos_pb2.TaskStatus
_LAUNCHING = (mesos_pb2.TASK_STAGING, mesos_pb2.TASK_STARTING)
_ENDS_GROUP = (mesos_pb2.TASK_FAILED, mesos_pb2.TASK_KILLED)
_TASK_KILLING_STATE = mesos_pb2.FrameworkInfo.Capability.TASK_KILLING_STATE


def launch_group(
    state: AgentState,
    framework: FrameworkRecord,
    executor: ExecutorRecord,
    task_ids: tuple[str, ...],
    now: float,
) -> list[Effect]:
    """Launch one container per task of a group just admitted."""
    effects: list[Effect] = []
    for task_id in task_ids:
        task = executor.tasks[task_id]
        nested = task.container
        assert nested is not None
        state.containers[nested.container_id] = executor.key
        command = task.info.command
        user = (command.user if command.HasField("user") else framework.info.user) or None
        if command.uris:  # Fetching may take a while: say the task is being prepared.
            effects += send_update(
                state,
                executor.framework_id,
                task_id,
                executor.executor_id,
                mesos_pb2.TASK_STARTING,
                now=now,
                source=_Status.SOURCE_EXECUTOR,
            )
        effects.append(
            LaunchContainer(
                executor.framework_id,
                executor.executor_id,
                nested.container_id,
                command,
                task.resources,
                user,
                task_id,
                executor.checkpoint,
                grace_period(None, task.info),
                parent_container_id=executor.container_id,
            )
        )
    return effects


def _group(executor: ExecutorRecord, task: TaskRecord) -> list[TaskRecord]:
    """The tasks of ``task``'s group that the executor still holds, ``task`` included."""
    return [executor.tasks[t] for t in task.group or (task.task_id,) if t in executor.tasks]


def nested_launched(
    state: AgentState, executor: ExecutorRecord, container_id: str, now: float
) -> list[Effect]:
    """A task's container started; the group runs once all its containers have."""
    task = nested_task(executor, container_id)
    if task is None or task.container is None or task.container.gone:
        return [DestroyContainer(container_id)]
    task.container.launched = True
    if task.pending_termination is not None:
        return [DestroyContainer(container_id)]  # Its group failed or was killed meanwhile.
    group = _group(executor, task)
    if not all(m.container is not None and m.container.launched for m in group):
        return []
    effects: list[Effect] = []
    for member in group:
        effects += _nested_running(state, executor, member, now)
    for member in group:  # Those that ended meanwhile are reported after their RUNNING.
        if member.container is not None and member.container.gone and not member.terminal:
            effects += _nested_ended(state, executor, member, now)
    return effects + end_default_if_done(state, executor, now)


def _nested_running(
    state: AgentState, executor: ExecutorRecord, task: TaskRecord, now: float
) -> list[Effect]:
    """A launched task runs: announce it (unless it was already), start its checks."""
    nested = task.container
    assert nested is not None
    effects: list[Effect] = []
    if task.state in _LAUNCHING:
        effects += send_update(
            state,
            executor.framework_id,
            task.task_id,
            executor.executor_id,
            mesos_pb2.TASK_RUNNING,
            now=now,
            source=_Status.SOURCE_EXECUTOR,
            container_id=nested.container_id,
        )
        effects += max_completion_timer(task, now)
    if task.info.HasField("health_check") and nested.live:
        effects.append(
            StartHealthCheck(
                executor.framework_id,
                task.task_id,
                nested.container_id,
                task.info.health_check,
                executor_id=executor.executor_id,
                parent_container_id=executor.container_id,
            )
        )
    return effects


def _container_gone(
    state: AgentState, executor: ExecutorRecord, container_id: str, exit: ContainerExit
) -> TaskRecord | None:
    """Forget a task's container and record how it ended; the task, or None if already done.

    None means the container is unknown or was already handled: a second report changes nothing.
    """
    task = nested_task(executor, container_id)
    state.containers.pop(container_id, None)
    if task is None or task.container is None or task.container.gone:
        return None
    task.container.gone = True
    task.container.exit = exit
    return task


def nested_launch_failed(
    state: AgentState, executor: ExecutorRecord, container_id: str, message: str, now: float
) -> list[Effect]:
    """A task's container could not be launched: its whole group fails."""
    task = _container_gone(state, executor, container_id, ContainerExit(message=message))
    if task is None:
        return end_default_if_done(state, executor, now)
    effects = _fail_group_launch(state, executor, task, message, now)
    return effects + end_default_if_done(state, executor, now)


def _fail_group_launch(
    state: AgentState, executor: ExecutorRecord, task: TaskRecord, message: str, now: float
) -> list[Effect]:
    """``task`` could not be launched: destroy the rest of its group, fail every task."""
    reason = _Status.REASON_CONTAINER_LAUNCH_FAILED
    if task.pending_termination is None:
        task.pending_termination = Termination(
            mesos_pb2.TASK_FAILED, reason, f"Failed to launch container: {message}"
        )
    effects: list[Effect] = []
    for member in _group(executor, task):
        if member is task or member.terminal:
            continue
        if member.pending_termination is None:
            member.pending_termination = Termination(
                mesos_pb2.TASK_FAILED,
                reason,
                f"Task group not launched: the container of task {task.task_id!r} failed to"
                f" launch: {message}",
            )
        effects += _end_nested(state, executor, member, now)
    if not task.terminal:
        effects += _nested_ended(state, executor, task, now)
    return effects


def nested_exited(
    state: AgentState, executor: ExecutorRecord, container_id: str, exit: ContainerExit, now: float
) -> list[Effect]:
    """A task's container ended (and was destroyed): report the task, apply group rules."""
    task = _container_gone(state, executor, container_id, exit)
    if task is None:
        return end_default_if_done(state, executor, now)
    nested = task.container
    assert nested is not None
    if not nested.launched:
        # It ended before its start was known (e.g. lost while the agent was down): it never
        # ran as part of its group, which therefore fails to launch.
        effects = _fail_group_launch(state, executor, task, exit.message or exit.describe(), now)
    elif task.state in _LAUNCHING and task.pending_termination is None:
        return []  # Its group is still being launched: reported once the group runs.
    else:
        effects = _nested_ended(state, executor, task, now)
    return effects + end_default_if_done(state, executor, now)


def nested_recovered(
    state: AgentState, executor: ExecutorRecord, container_id: str, now: float
) -> list[Effect]:
    """After an agent restart, a task's container was found still running."""
    task = nested_task(executor, container_id)
    if task is None or task.container is None or task.terminal or task.container.gone:
        return [DestroyContainer(container_id)]
    if task.state in _LAUNCHING:  # The restart interrupted its group's launch.
        return nested_launched(state, executor, container_id, now)
    task.container.launched = True
    return _nested_running(state, executor, task, now)


def _nested_ended(
    state: AgentState, executor: ExecutorRecord, task: TaskRecord, now: float
) -> list[Effect]:
    """Report a task whose container is gone; a failure or kill takes its group down."""
    nested = task.container
    assert nested is not None
    if state.frameworks[executor.framework_id].shutting_down:
        # Nobody will acknowledge: forget the task instead of reporting it.
        effects = task_state_changed(state, executor, task, mesos_pb2.TASK_KILLED)
        state.frameworks[executor.framework_id].remove_task(executor, task.task_id)
        return effects
    term = task.pending_termination
    source: mesos_pb2.TaskStatus.Source.ValueType = _Status.SOURCE_EXECUTOR
    reason: mesos_pb2.TaskStatus.Reason.ValueType | None
    if term is not None:
        task_state, reason, message = term.state, term.reason, term.message
        source = _Status.SOURCE_AGENT
    else:
        task_state, reason, message = command_task_outcome(nested.exit or ContainerExit(), task)
        cause = task.group_kill_cause
        if cause is not None and task_state == mesos_pb2.TASK_KILLED and reason is None:
            message = f"Killed with its task group because {cause}: {message}"
    effects = send_update(
        state,
        executor.framework_id,
        task.task_id,
        executor.executor_id,
        task_state,
        now=now,
        source=source,
        reason=reason,
        message=message,
        container_id=nested.container_id,
    )
    if term is None and task_state in _ENDS_GROUP:
        why = "failed" if task_state == mesos_pb2.TASK_FAILED else "was killed"
        effects += _kill_group(state, executor, task, f"task {task.task_id!r} {why}", now)
    return effects


def _end_nested(
    state: AgentState, executor: ExecutorRecord, task: TaskRecord, now: float
) -> list[Effect]:
    """Make a task's container go (its ``pending_termination`` is set): destroy it if it
    runs, report the task if it is gone already, or wait for its launch to be reported."""
    nested = task.container
    assert nested is not None
    if nested.gone:
        return [] if task.terminal else _nested_ended(state, executor, task, now)
    # Not launched yet: a launch still queued is cancelled (nothing is created), one in
    # progress is destroyed as soon as it is reported.
    return [DestroyContainer(nested.container_id)]


def end_default_if_done(state: AgentState, executor: ExecutorRecord, now: float) -> list[Effect]:
    """End a default executor whose tasks have all ended and whose containers are gone."""
    if executor.kind is not ExecutorKind.DEFAULT or executor.phase is ExecutorPhase.TERMINATED:
        return []
    for task in executor.tasks.values():
        if not task.terminal or (task.container is not None and task.container.live):
            return []
    executor.phase = ExecutorPhase.TERMINATED
    release(state, executor.resources)
    executor.exit = ContainerExit(status=0)
    effects: list[Effect] = []
    if not state.frameworks[executor.framework_id].shutting_down:
        effects += send_to_master_surely(state, exited_executor_message(*executor.key, 0))
    return effects + retire_executor_if_done(state, executor)


def kill_default_task(
    state: AgentState,
    executor: ExecutorRecord,
    task: TaskRecord,
    kill_policy: mesos_pb2.KillPolicy | None,
    now: float,
) -> list[Effect]:
    """Kill a task of the default executor, and with it the rest of its group."""
    if task.killed_by_health_check:
        cause = f"task {task.task_id!r} failed its health checks"
    elif task.completion_time_reached:
        cause = f"task {task.task_id!r} reached its max_completion_time"
    else:
        cause = f"task {task.task_id!r} was killed"
    effects = _kill_nested(state, executor, task, kill_policy, now)
    effects += _kill_group(state, executor, task, cause, now)
    return effects + end_default_if_done(state, executor, now)


def _kill_group(
    state: AgentState, executor: ExecutorRecord, trigger: TaskRecord, cause: str, now: float
) -> list[Effect]:
    """Kill the tasks of ``trigger``'s group that are still live and not being killed."""
    effects: list[Effect] = []
    for member in _group(executor, trigger):
        if member is trigger or member.terminal or member.kill_requested:
            continue
        member.group_kill_cause = cause
        effects += _kill_nested(state, executor, member, None, now)
    return effects


def _kill_nested(
    state: AgentState,
    executor: ExecutorRecord,
    task: TaskRecord,
    kill_policy: mesos_pb2.KillPolicy | None,
    now: float,
) -> list[Effect]:
    """Kill one task: SIGTERM to its container, SIGKILL after the grace period."""
    task.kill_requested = True
    task.kill_policy = kill_policy
    nested = task.container
    assert nested is not None
    if task.state in _LAUNCHING:  # Its group does not run yet: it never will.
        if task.pending_termination is None:
            task.pending_termination = Termination(
                mesos_pb2.TASK_KILLED,
                _Status.REASON_TASK_KILLED_DURING_LAUNCH,
                "Task killed while it was being launched",
            )
        return _end_nested(state, executor, task, now)
    if nested.gone:
        return []
    framework = state.frameworks[executor.framework_id]
    effects: list[Effect] = []
    if framework.has_capability(_TASK_KILLING_STATE) and not framework.shutting_down:
        effects += send_update(
            state,
            executor.framework_id,
            task.task_id,
            executor.executor_id,
            mesos_pb2.TASK_KILLING,
            now=now,
            source=_Status.SOURCE_EXECUTOR,
            container_id=nested.container_id,
        )
    grace = grace_period(kill_policy, task.info)
    if grace <= 0:
        return [*effects, DestroyContainer(nested.container_id)]
    return [
        *effects,
        SignalContainer(nested.container_id, signal.SIGTERM),
        SetTimer(("kill", task.framework_id, task.task_id), now + grace),
    ]


def nested_kill_due(state: AgentState, framework_id: str, task_id: str) -> list[Effect] | None:
    """A kill's grace period ended: SIGKILL (destroy) the task's container if it still runs.

    None when the task is not one of a default executor's.
    """
    framework = state.frameworks.get(framework_id)
    task = framework.find_task(task_id) if framework is not None else None
    if task is None or task.container is None:
        return None
    nested = task.container
    if task.kill_requested and nested.launched and nested.live:
        return [DestroyContainer(nested.container_id)]
    return []


def shutdown_default(state: AgentState, executor: ExecutorRecord, now: float) -> list[Effect]:
    """Shut the default executor down: every task is killed; it ends with the last one."""
    executor.shutdown_requested = True
    executor.phase = ExecutorPhase.TERMINATING
    effects: list[Effect] = []
    for task in list(executor.tasks.values()):
        if not task.terminal and not task.kill_requested:
            effects += _kill_nested(state, executor, task, None, now)
    return effects + end_default_if_done(state, executor, now)


def end_default(
    state: AgentState, executor: ExecutorRecord, why: Termination, now: float
) -> list[Effect]:
    """Destroy every task's container at once; the live tasks end as ``why`` says."""
    executor.phase = ExecutorPhase.TERMINATING
    effects: list[Effect] = []
    for task in list(executor.tasks.values()):
        if not task.terminal:
            task.pending_termination = why
            effects += _end_nested(state, executor, task, now)
    return effects + end_default_if_done(state, executor, now)


def recover_groups(state: AgentState, now: float) -> list[Effect]:
    """After recovery: finish group kills a restart interrupted, end finished executors."""
    effects: list[Effect] = []
    for executor in state.executors():
        if executor.kind is not ExecutorKind.DEFAULT:
            continue
        for task in list(executor.tasks.values()):
            if task.terminal and task.state in _ENDS_GROUP:
                why = "failed" if task.state == mesos_pb2.TASK_FAILED else "was killed"
                effects += _kill_group(state, executor, task, f"task {task.task_id!r} {why}", now)
        effects += end_default_if_done(state, executor, now)
    return effects
