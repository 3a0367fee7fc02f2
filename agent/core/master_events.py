"""Handlers of what the master tells the agent (launches are in :mod:`agent.core.launches`).

Registration, kills, shutdowns, acknowledgements, reconciliation and framework updates.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Sequence

from agent.core.default_executor import kill_default_task, shutdown_default
from agent.core.effects import (
    CheckpointFramework,
    DestroyContainer,
    Effect,
    SendToExecutor,
    SetTimer,
    SignalContainer,
)
from agent.core.launches import drop_state, task_id_in_use
from agent.core.lifecycle import (
    flush_held_messages,
    retire_executor_if_done,
    retire_framework_if_done,
    send_update,
    stream_closed,
)
from agent.core.messages import (
    kill_event,
    message_event,
    shutdown_event,
)
from agent.core.model import (
    ExecutorKind,
    ExecutorPhase,
    ExecutorRecord,
    FrameworkRecord,
    TaskRecord,
    grace_period,
)
from agent.core.state import AgentState
from agent.core.status_updates import AckOutcome
from protos.v1 import agent_internal_pb2, mesos_pb2

__all__ = [
    "acknowledge",
    "disconnected",
    "framework_message",
    "kill_task",
    "reconcile",
    "registered",
    "reregistered",
    "shutdown_all",
    "shutdown_executor",
    "shutdown_framework",
    "update_framework",
]

log = logging.getLogger(__name__)

_Reason = mesos_pb2.TaskStatus
_TASK_KILLING_STATE = mesos_pb2.FrameworkInfo.Capability.TASK_KILLING_STATE


def registered(state: AgentState, agent_id: str, now: float) -> list[Effect]:
    """The master accepted the agent under ``agent_id``: start forwarding updates."""
    state.agent_info.id.value = agent_id
    state.connected = True
    state.held_for_master.clear()  # A new agent to the master: it knows none of its executors.
    return state.updates.resume(now)


def reregistered(
    state: AgentState, now: float, reconciliations: Sequence[agent_internal_pb2.ReconcileTasks] = ()
) -> list[Effect]:
    """The master took the agent back: resend unacknowledged updates, answer reconciliation."""
    state.connected = True
    effects = flush_held_messages(state) + state.updates.resume(now)
    for entry in reconciliations:
        effects += reconcile(state, entry.framework_id.value, entry.statuses, now)
    return effects


def disconnected(state: AgentState) -> list[Effect]:
    """The master is gone: hold updates until the agent is registered again."""
    state.connected = False
    return state.updates.pause()


def kill_task(
    state: AgentState,
    framework_id: str,
    task_id: str,
    kill_policy: mesos_pb2.KillPolicy | None,
    now: float,
) -> list[Effect]:
    """Kill a task: signal a command task's processes (a task group's: the whole group's),
    or ask its executor to."""
    framework = state.frameworks.get(framework_id)
    task = framework.find_task(task_id) if framework is not None else None
    if task is None or framework is None:
        if state.updates.get(framework_id, task_id) is not None:
            return []  # Already terminal; its update is on the way.
        log.warning("Asked to kill unknown task %s of framework %s", task_id, framework_id)
        return send_update(
            state,
            framework_id,
            task_id,
            None,
            drop_state(framework.info if framework is not None else None),
            now=now,
            reason=_Reason.REASON_TASK_UNKNOWN,
            message="Cannot kill a task unknown to the agent",
        )
    if task.terminal or task.kill_requested:
        return []
    task.kill_requested = True
    task.kill_policy = kill_policy
    executor = framework.executors[task.executor_id]
    if executor.kind is ExecutorKind.COMMAND:
        return _kill_command_task(state, framework, executor, task, now)
    if executor.kind is ExecutorKind.DEFAULT:
        return kill_default_task(state, executor, task, kill_policy, now)
    if not task.launched:
        return _kill_queued(state, executor, task, now)
    if executor.connected:
        task.kill_sent = True
        event = kill_event(task_id, kill_policy)
        return [SendToExecutor(framework_id, executor.executor_id, event)]
    return []  # Sent when the executor (re-)subscribes.


def _kill_command_task(
    state: AgentState,
    framework: FrameworkRecord,
    executor: ExecutorRecord,
    task: TaskRecord,
    now: float,
) -> list[Effect]:
    if executor.phase is ExecutorPhase.LAUNCHING:
        # A launch still queued is cancelled (nothing is created); one in progress is
        # destroyed as soon as it is launched.
        executor.phase = ExecutorPhase.TERMINATING
        return [DestroyContainer(executor.container_id)]
    if executor.phase is not ExecutorPhase.RUNNING:
        return []
    executor.phase = ExecutorPhase.TERMINATING
    effects: list[Effect] = []
    if framework.has_capability(_TASK_KILLING_STATE):
        effects += send_update(
            state,
            framework.framework_id,
            task.task_id,
            executor.executor_id,
            mesos_pb2.TASK_KILLING,
            now=now,
            source=_Reason.SOURCE_EXECUTOR,
        )
    grace = grace_period(task.kill_policy, task.info)
    if grace <= 0:
        return [*effects, DestroyContainer(executor.container_id)]
    return [
        *effects,
        SignalContainer(executor.container_id, signal.SIGTERM),
        SetTimer(("kill", framework.framework_id, task.task_id), now + grace),
    ]


def _kill_queued(
    state: AgentState, executor: ExecutorRecord, task: TaskRecord, now: float
) -> list[Effect]:
    """Kill a task the executor has not been given: its whole launch (group) goes."""
    batch = next((b for b in executor.queue if task.task_id in b), (task.task_id,))
    if batch in executor.queue:
        executor.queue.remove(batch)
    effects: list[Effect] = []
    for task_id in batch:
        queued = executor.tasks.get(task_id)
        if queued is not None and not queued.terminal:
            effects += send_update(
                state,
                executor.framework_id,
                task_id,
                executor.executor_id,
                mesos_pb2.TASK_KILLED,
                now=now,
                reason=_Reason.REASON_TASK_KILLED_DURING_LAUNCH,
                message="Killed before delivery to the executor",
            )
    if executor.phase in (ExecutorPhase.LAUNCHING, ExecutorPhase.REGISTERING) and all(
        t.terminal for t in executor.tasks.values()
    ):
        # Nothing left for the executor to run: do not start (or keep) it.
        effects += _shutdown_executor(state, executor, now)
    return effects


def framework_message(
    state: AgentState, framework_id: str, executor_id: str, data: bytes
) -> list[Effect]:
    """Relay a scheduler's message to its executor (best effort: dropped if not subscribed)."""
    executor = state.executor(framework_id, executor_id)
    if executor is None or not executor.connected:
        log.info("Dropping a framework message for executor %s: not subscribed", executor_id)
        return []
    return [SendToExecutor(framework_id, executor_id, message_event(data))]


def shutdown_framework(state: AgentState, framework_id: str, now: float) -> list[Effect]:
    """Kill all of a framework's executors; its updates are dropped (nobody would ack).

    Also those of tasks the agent never held (answers to kills and reconciliations of unknown
    tasks), which would otherwise be retried for ever.
    """
    effects: list[Effect] = []
    for stream in state.updates:
        if stream.framework_id == framework_id:
            effects += state.updates.remove(framework_id, stream.task_id)
    framework = state.frameworks.get(framework_id)
    if framework is None:
        return effects
    framework.shutting_down = True
    for executor in list(framework.executors.values()):
        # Tasks that ended wait only for acknowledgements that will never come: forget
        # them now, and with them an executor that has ended too (else it stays for ever).
        for task in [t for t in executor.tasks.values() if t.terminal]:
            framework.remove_task(executor, task.task_id)
        effects += _shutdown_executor(state, executor, now)
        if executor.executor_id in framework.executors:
            effects += retire_executor_if_done(state, executor)
    if framework.framework_id in state.frameworks:
        effects += retire_framework_if_done(state, framework)
    return effects


def shutdown_executor(
    state: AgentState, framework_id: str, executor_id: str, now: float
) -> list[Effect]:
    """Shut one executor down (SHUTDOWN, then destroy after its grace period)."""
    executor = state.executor(framework_id, executor_id)
    if executor is None:
        return []
    return _shutdown_executor(state, executor, now)


def _shutdown_executor(state: AgentState, executor: ExecutorRecord, now: float) -> list[Effect]:
    if not executor.live:
        return []
    if executor.kind is ExecutorKind.DEFAULT:
        return shutdown_default(state, executor, now)
    executor.shutdown_requested = True
    framework = state.frameworks[executor.framework_id]
    if executor.kind is ExecutorKind.COMMAND:
        task = executor.tasks.get(executor.executor_id)
        if task is None or task.terminal:
            executor.phase = ExecutorPhase.TERMINATING
            return [DestroyContainer(executor.container_id)]
        task.kill_requested = True
        return _kill_command_task(state, framework, executor, task, now)
    phase = executor.phase
    executor.phase = ExecutorPhase.TERMINATING
    if phase is ExecutorPhase.LAUNCHING:
        # Cancelled if its launch is still queued; otherwise destroyed once launched.
        return [DestroyContainer(executor.container_id)]
    if executor.connected:
        grace = state.shutdown_grace(executor)
        return [
            SendToExecutor(executor.framework_id, executor.executor_id, shutdown_event()),
            SetTimer(("executor-shutdown", *executor.key), now + grace),
        ]
    return [DestroyContainer(executor.container_id)]


def shutdown_all(state: AgentState, now: float) -> list[Effect]:
    """Shut every framework down (the agent is leaving)."""
    effects: list[Effect] = []
    for framework_id in list(state.frameworks):
        effects += shutdown_framework(state, framework_id, now)
    return effects


def acknowledge(
    state: AgentState, framework_id: str, task_id: str, uuid: bytes, now: float
) -> tuple[AckOutcome, list[Effect]]:
    """The scheduler acknowledged an update: send the next one, or retire the task."""
    stream = state.updates.get(framework_id, task_id)
    executor_id = stream.executor_id if stream is not None else None
    outcome, effects = state.updates.acknowledge(framework_id, task_id, uuid, now)
    if outcome is AckOutcome.CLOSED:
        effects += stream_closed(state, framework_id, task_id, executor_id)
    elif outcome in (AckOutcome.UNEXPECTED, AckOutcome.UNKNOWN_STREAM):
        log.warning(
            "Ignoring acknowledgement of %s for task %s of framework %s: %s",
            uuid.hex(),
            task_id,
            framework_id,
            outcome.value,
        )
    return outcome, effects


def reconcile(
    state: AgentState, framework_id: str, statuses: Sequence[mesos_pb2.TaskStatus], now: float
) -> list[Effect]:
    """Answer for tasks the master believes are here but the agent does not know."""
    framework = state.frameworks.get(framework_id)
    effects: list[Effect] = []
    for status in statuses:
        task_id = status.task_id.value
        if not task_id or task_id_in_use(state, framework_id, task_id):
            continue
        effects += send_update(
            state,
            framework_id,
            task_id,
            None,
            drop_state(framework.info if framework is not None else None),
            now=now,
            reason=_Reason.REASON_RECONCILIATION,
            message="Task unknown to the agent",
        )
    return effects


def update_framework(
    state: AgentState, framework_id: str, info: mesos_pb2.FrameworkInfo
) -> list[Effect]:
    """A framework's info changed; ``checkpoint`` keeps the value its executors started with."""
    framework = state.frameworks.get(framework_id)
    if framework is None:
        return []
    updated = mesos_pb2.FrameworkInfo()
    updated.CopyFrom(info)
    updated.id.value = framework_id
    updated.checkpoint = framework.info.checkpoint
    framework.info = updated
    return [CheckpointFramework(framework_id, updated)] if framework.checkpoint else []
