"""Handlers of what containers, executors and health checks tell the agent.

Containers report launch, launch failure and exit; custom executors subscribe, send updates
and messages through the executor API; health checkers report health changes of command tasks.
Calls that are malformed or name something unknown raise :class:`InvalidCall` or
:class:`UnknownTarget` and change nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from agent.core.default_executor import (
    nested_exited,
    nested_launch_failed,
    nested_launched,
    nested_recovered,
)
from agent.core.effects import (
    CancelTimer,
    CloseExecutorStream,
    DestroyContainer,
    Effect,
    SendToExecutor,
    SendToMaster,
    SetTimer,
    StartHealthCheck,
    UpdateContainer,
)
from agent.core.launches import deliver, launch_executor
from agent.core.lifecycle import (
    fail_live_tasks,
    max_completion_timer,
    release,
    retire_executor_if_done,
    send_to_master_surely,
    send_update,
    task_state_changed,
)
from agent.core.master_events import kill_task
from agent.core.messages import (
    acknowledged_event,
    executor_to_framework_message,
    exited_executor_message,
    kill_event,
    shutdown_event,
    subscribed_event,
)
from agent.core.model import (
    ContainerExit,
    ExecutorKind,
    ExecutorPhase,
    ExecutorRecord,
    InvalidCall,
    NotAllowedNow,
    Termination,
    UnknownTarget,
    command_task_outcome,
    wait_status,
)
from agent.core.state import AgentState
from agent.core.status_updates import StreamOwner
from protos.v1 import mesos_pb2

__all__ = [
    "container_exited",
    "container_launch_failed",
    "container_launched",
    "container_recovered",
    "executor_disconnected",
    "executor_message",
    "executor_subscribe",
    "executor_update",
    "health_changed",
    "health_failed",
]

log = logging.getLogger(__name__)

_Status = mesos_pb2.TaskStatus
_LAUNCHING_STATES = (mesos_pb2.TASK_STAGING, mesos_pb2.TASK_STARTING)


def container_launched(state: AgentState, container_id: str, now: float) -> list[Effect]:
    """A container's process started."""
    executor = state.executor_of_container(container_id)
    if executor is None:
        log.warning("Destroying container %s: no executor owns it", container_id)
        return [DestroyContainer(container_id)]
    if executor.kind is ExecutorKind.DEFAULT:
        return nested_launched(state, executor, container_id, now)
    if executor.phase is ExecutorPhase.TERMINATING:
        return [DestroyContainer(container_id)]  # Killed or shut down while launching.
    if executor.phase is not ExecutorPhase.LAUNCHING:
        return []  # E.g. the executor subscribed before the launch was reported.
    if executor.kind is ExecutorKind.CUSTOM:
        executor.phase = ExecutorPhase.REGISTERING
        deadline = now + state.settings.executor_registration_timeout
        return [
            # Tasks may have joined while it was launching: size the container for them.
            UpdateContainer(container_id, executor.container_resources()),
            SetTimer(("executor-registration", *executor.key), deadline),
        ]
    executor.phase = ExecutorPhase.RUNNING
    return _command_task_running(state, executor, now)


def _command_task_running(state: AgentState, executor: ExecutorRecord, now: float) -> list[Effect]:
    task = executor.tasks.get(executor.executor_id)
    if task is None or task.terminal:
        return []
    effects: list[Effect] = []
    if task.state != mesos_pb2.TASK_RUNNING:
        effects += send_update(
            state,
            executor.framework_id,
            task.task_id,
            executor.executor_id,
            mesos_pb2.TASK_RUNNING,
            now=now,
            source=_Status.SOURCE_EXECUTOR,
            container_id=executor.container_id,
        )
        effects += max_completion_timer(task, now)
    if task.info.HasField("health_check"):
        effects.append(
            StartHealthCheck(
                executor.framework_id,
                task.task_id,
                executor.container_id,
                task.info.health_check,
            )
        )
    return effects


def container_launch_failed(
    state: AgentState, container_id: str, message: str, now: float
) -> list[Effect]:
    """A container could not be launched (fetch or launch error)."""
    executor = state.executor_of_container(container_id)
    if executor is None:
        return []
    if executor.kind is ExecutorKind.DEFAULT:
        return nested_launch_failed(state, executor, container_id, message, now)
    if executor.pending_termination is None and not executor.shutdown_requested:
        executor.pending_termination = Termination(
            mesos_pb2.TASK_FAILED,
            _Status.REASON_CONTAINER_LAUNCH_FAILED,
            f"Failed to launch container: {message}",
        )
    return container_exited(state, container_id, ContainerExit(message=message), now)


def container_recovered(state: AgentState, container_id: str, now: float) -> list[Effect]:
    """After an agent restart, a checkpointed container was found still running."""
    executor = state.executor_of_container(container_id)
    if executor is None:
        return [DestroyContainer(container_id)]
    if executor.kind is ExecutorKind.DEFAULT:
        return nested_recovered(state, executor, container_id, now)
    if executor.phase is not ExecutorPhase.LAUNCHING:
        return []  # Its end was reported first.
    if executor.kind is ExecutorKind.COMMAND:
        task = executor.tasks.get(executor.executor_id)
        if task is None or task.terminal:
            executor.phase = ExecutorPhase.TERMINATING
            return [DestroyContainer(container_id)]
        executor.phase = ExecutorPhase.RUNNING
        return _command_task_running(state, executor, now)
    executor.phase = ExecutorPhase.REGISTERING
    executor.recovered = True
    deadline = now + state.settings.executor_reregistration_timeout
    return [SetTimer(("executor-reregistration", *executor.key), deadline)]


def container_never_started(
    state: AgentState, container_id: str, message: str, now: float
) -> list[Effect]:
    """After a restart: a checkpointed container whose command never ran (the agent died
    while launching it). A command task is launched again: it is still STAGING and nothing of
    it ran, so it runs once. Anything else fails to launch, ``message`` saying why."""
    executor = state.executor_of_container(container_id)
    if (
        executor is not None
        and executor.kind is ExecutorKind.COMMAND
        and executor.phase is ExecutorPhase.LAUNCHING
    ):
        task = executor.tasks.get(executor.executor_id)
        if task is not None and not task.terminal and not task.kill_requested:
            log.info("Launching task %s again: %s", task.task_id, message)
            return launch_executor(state, state.frameworks[executor.framework_id], executor, now)
    return container_launch_failed(state, container_id, message, now)


def container_exited(
    state: AgentState, container_id: str, exit: ContainerExit, now: float
) -> list[Effect]:
    """A container's main process ended: settle its tasks, maybe retire the executor."""
    executor = state.executor_of_container(container_id)
    if executor is not None and executor.kind is ExecutorKind.DEFAULT:
        return nested_exited(state, executor, container_id, exit, now)
    if executor is None or executor.phase is ExecutorPhase.TERMINATED:
        return []
    executor.phase = ExecutorPhase.TERMINATED
    release(state, executor.resources)
    executor.exit = exit
    executor.connected = False
    effects: list[Effect] = [
        CancelTimer(("executor-registration", *executor.key)),
        CancelTimer(("executor-reregistration", *executor.key)),
        CancelTimer(("executor-shutdown", *executor.key)),
        CancelTimer(("kill", *executor.key)),
    ]
    framework = state.frameworks[executor.framework_id]
    if framework.shutting_down:
        # Nobody will acknowledge: forget the tasks instead of reporting them.
        for task in list(executor.tasks.values()):
            effects += task_state_changed(state, executor, task, mesos_pb2.TASK_KILLED)
            framework.remove_task(executor, task.task_id)
    elif executor.kind is ExecutorKind.COMMAND:
        effects += _command_task_ended(state, executor, exit, now)
    else:
        effects += _executor_ended(state, executor, exit, now)
        # Sent even when the launch failed: the master counts the executor as started.
        message = exited_executor_message(*executor.key, wait_status(exit))
        effects += send_to_master_surely(state, message)
        effects.append(CloseExecutorStream(*executor.key))
    return effects + retire_executor_if_done(state, executor)


def _command_task_ended(
    state: AgentState, executor: ExecutorRecord, exit: ContainerExit, now: float
) -> list[Effect]:
    task = executor.tasks.get(executor.executor_id)
    if task is None or task.terminal:
        return []
    source = _Status.SOURCE_EXECUTOR
    if task.kill_requested and task.state in _LAUNCHING_STATES:
        task_state: mesos_pb2.TaskState.ValueType = mesos_pb2.TASK_KILLED
        reason: mesos_pb2.TaskStatus.Reason.ValueType | None = (
            _Status.REASON_TASK_KILLED_DURING_LAUNCH
        )
        message = "Task killed while it was being launched"
    elif executor.pending_termination is not None:
        term = executor.pending_termination
        task_state, reason, message = term.state, term.reason, term.message
        source = _Status.SOURCE_AGENT
    else:
        task_state, reason, message = command_task_outcome(exit, task)
    return send_update(
        state,
        executor.framework_id,
        task.task_id,
        executor.executor_id,
        task_state,
        now=now,
        source=source,
        reason=reason,
        message=message,
        container_id=executor.container_id,
    )


def _executor_ended(
    state: AgentState, executor: ExecutorRecord, exit: ContainerExit, now: float
) -> list[Effect]:
    term = executor.pending_termination
    if exit.oom_killed:
        detail = f": {exit.message}" if exit.message else ""
        term = Termination(
            mesos_pb2.TASK_FAILED,
            _Status.REASON_CONTAINER_LIMITATION_MEMORY,
            f"Memory limit exceeded{detail}",
        )
    elif exit.disk_exceeded:
        detail = f": {exit.message}" if exit.message else ""
        term = Termination(
            mesos_pb2.TASK_FAILED,
            _Status.REASON_CONTAINER_LIMITATION_DISK,
            f"Disk limit exceeded{detail}",
        )
    elif term is None:
        term = Termination(
            mesos_pb2.TASK_FAILED,
            _Status.REASON_EXECUTOR_TERMINATED,
            f"Executor terminated: {exit.describe()}",
        )
    return fail_live_tasks(state, executor, term.state, term.reason, term.message, now=now)


def _custom_executor(state: AgentState, framework_id: str, executor_id: str) -> ExecutorRecord:
    executor = state.executor(framework_id, executor_id)
    if executor is None:
        raise UnknownTarget(
            f"executor {executor_id!r} of framework {framework_id!r} is not on this agent"
        )
    if executor.kind is not ExecutorKind.CUSTOM:
        raise NotAllowedNow(
            f"executor {executor_id!r} is the {executor.kind.value} executor the agent runs itself"
        )
    if executor.phase is ExecutorPhase.TERMINATED:
        raise NotAllowedNow(f"executor {executor_id!r} has terminated")
    return executor


def executor_subscribe(
    state: AgentState,
    framework_id: str,
    executor_id: str,
    unacknowledged_tasks: Sequence[mesos_pb2.TaskInfo],
    unacknowledged_updates: Sequence[mesos_pb2.TaskStatus],
    *,
    now: float,
) -> list[Effect]:
    """An executor (re-)subscribed: greet it, reconcile what it has, hand it its tasks.

    Updates it holds that the agent lacks are taken; tasks the agent delivered but the
    executor never got are delivered again; queued launches and pending kills go out.
    """
    executor = _custom_executor(state, framework_id, executor_id)
    framework = state.frameworks[framework_id]
    executor.connected = True
    effects: list[Effect] = [
        CancelTimer(("executor-registration", *executor.key)),
        CancelTimer(("executor-reregistration", *executor.key)),
        SendToExecutor(
            framework_id,
            executor_id,
            subscribed_event(
                executor.info, framework.info, state.agent_info, executor.container_id
            ),
        ),
    ]
    if executor.phase is ExecutorPhase.TERMINATING:
        grace = state.shutdown_grace(executor)
        return [
            *effects,
            SendToExecutor(framework_id, executor_id, shutdown_event()),
            SetTimer(("executor-shutdown", *executor.key), now + grace),
        ]
    executor.phase = ExecutorPhase.RUNNING
    executor.recovered = False
    for status in unacknowledged_updates:
        try:
            effects += _executor_update(state, executor, status, now)
        except (InvalidCall, UnknownTarget) as error:
            log.warning("Skipping an unacknowledged update from %s: %s", executor_id, error)
    known = {t.task_id.value for t in unacknowledged_tasks}
    known |= {s.task_id.value for s in unacknowledged_updates}
    lost = [
        t.task_id
        for t in executor.tasks.values()
        if t.launched and t.state == mesos_pb2.TASK_STAGING and t.task_id not in known
    ]
    for task_id in lost:  # Delivered before, never received: deliver again.
        task = executor.tasks[task_id]
        if not task.launched:
            continue  # Re-sent already as part of its group.
        batch = task.group or (task_id,)
        for member in batch:
            if member in executor.tasks:
                executor.tasks[member].launched = False
        effects += deliver(state, executor, batch)
    for batch in executor.queue:
        effects += deliver(state, executor, batch)
    executor.queue.clear()
    for task in executor.tasks.values():
        if task.kill_requested and not task.kill_sent and not task.terminal:
            task.kill_sent = True
            event = kill_event(task.task_id, task.kill_policy)
            effects.append(SendToExecutor(framework_id, executor_id, event))
    return effects


def executor_disconnected(state: AgentState, framework_id: str, executor_id: str) -> list[Effect]:
    """An executor's event stream ended; it may subscribe again (its process is watched)."""
    executor = state.executor(framework_id, executor_id)
    if executor is not None:
        executor.connected = False
        for task in executor.tasks.values():
            if not task.terminal:
                task.kill_sent = False  # The KILL may be lost with the stream: send it again.
    return []


def executor_update(
    state: AgentState, framework_id: str, executor_id: str, status: mesos_pb2.TaskStatus, now: float
) -> list[Effect]:
    """An executor sent a status update (UPDATE): take it, then acknowledge it."""
    executor = _custom_executor(state, framework_id, executor_id)
    if not executor.connected:
        raise NotAllowedNow(f"executor {executor_id!r} is not subscribed: SUBSCRIBE first")
    return _executor_update(state, executor, status, now)


def _executor_update(
    state: AgentState, executor: ExecutorRecord, status: mesos_pb2.TaskStatus, now: float
) -> list[Effect]:
    task_id = status.task_id.value
    if not task_id:
        raise InvalidCall("update.status.task_id is empty")
    if len(status.uuid) != 16:
        raise InvalidCall(f"update.status.uuid must be 16 bytes, not {len(status.uuid)}")
    if status.state == mesos_pb2.TASK_STAGING:
        raise InvalidCall("update.status.state TASK_STAGING cannot be sent by an executor")
    ack = SendToExecutor(
        executor.framework_id, executor.executor_id, acknowledged_event(task_id, status.uuid)
    )
    stream = state.updates.get(executor.framework_id, task_id)
    if stream is not None and status.uuid in stream.received:
        return [ack]  # A duplicate: the agent has it already.
    task = executor.tasks.get(task_id)
    if task is None:
        raise UnknownTarget(
            f"update.status.task_id {task_id!r} is not a task of executor {executor.executor_id!r}"
        )
    if task.terminal:
        raise NotAllowedNow(
            f"update.status: task {task_id!r} is already terminal"
            f" ({mesos_pb2.TaskState.Name(task.state)})"
        )
    if not task.launched:
        raise NotAllowedNow(
            f"update.status: task {task_id!r} has not been given to executor"
            f" {executor.executor_id!r} yet"
        )
    update = mesos_pb2.TaskStatus()
    update.CopyFrom(status)
    update.source = _Status.SOURCE_EXECUTOR
    update.executor_id.value = executor.executor_id
    if state.agent_id:
        update.agent_id.value = state.agent_id
    if not update.HasField("timestamp"):
        update.timestamp = now
    update.container_status.container_id.value = executor.container_id
    owner = StreamOwner(*executor.key, executor.container_id, executor.checkpoint)
    _, effects = state.updates.update(update, owner, now)
    effects += task_state_changed(state, executor, task, update.state)
    effects.append(ack)
    return effects


def executor_message(
    state: AgentState, framework_id: str, executor_id: str, data: bytes
) -> list[Effect]:
    """An executor sent a framework message (MESSAGE): relay it to the master."""
    executor = _custom_executor(state, framework_id, executor_id)
    return [SendToMaster(executor_to_framework_message(*executor.key, data))]


def health_changed(
    state: AgentState, framework_id: str, task_id: str, healthy: bool, now: float
) -> list[Effect]:
    """A task's health changed (command task or task group): report it on TASK_RUNNING."""
    framework = state.frameworks.get(framework_id)
    task = framework.find_task(task_id) if framework is not None else None
    if framework is None or task is None or task.state != mesos_pb2.TASK_RUNNING:
        return []
    executor = framework.executors[task.executor_id]
    if task.kill_requested or executor.kind is ExecutorKind.CUSTOM:
        return []
    container_id = executor.container_id
    if task.container is not None:
        container_id = task.container.container_id
    return send_update(
        state,
        framework_id,
        task_id,
        executor.executor_id,
        mesos_pb2.TASK_RUNNING,
        now=now,
        source=_Status.SOURCE_EXECUTOR,
        reason=_Status.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED,
        healthy=healthy,
        container_id=container_id,
    )


def health_failed(state: AgentState, framework_id: str, task_id: str, now: float) -> list[Effect]:
    """A task failed too many health checks in a row: kill it (and its group)."""
    framework = state.frameworks.get(framework_id)
    task = framework.find_task(task_id) if framework is not None else None
    if task is None or task.terminal or task.kill_requested:
        return []
    task.killed_by_health_check = True
    return kill_task(state, framework_id, task_id, None, now)
