"""Timers: what the agent does when a deadline it set falls due.

Each ``SetTimer`` key names its purpose: ``status-update`` (retry an unacknowledged update),
``max-completion`` (a task ran out of time), ``kill`` (a kill's grace period ended: SIGKILL),
``executor-registration`` / ``executor-reregistration`` (an executor never subscribed) and
``executor-shutdown`` (an executor outlived its shutdown grace period). A timer whose purpose
was met meanwhile does nothing.
"""

from __future__ import annotations

from agent.core.default_executor import end_default, nested_kill_due
from agent.core.effects import DestroyContainer, Effect, TimerKey
from agent.core.master_events import kill_task
from agent.core.model import ExecutorKind, ExecutorPhase, ExecutorRecord, Termination
from agent.core.state import AgentState
from protos.v1 import mesos_pb2

__all__ = ["end_executor", "on_timer"]

_Status = mesos_pb2.TaskStatus


def on_timer(state: AgentState, key: TimerKey, now: float) -> list[Effect]:
    """A timer set by an earlier ``SetTimer`` effect fired."""
    kind, *rest = key
    if kind == "status-update":
        return state.updates.retry(rest[0], rest[1], now)
    if kind == "max-completion":
        return _completion_time_reached(state, rest[0], rest[1], now)
    if kind == "kill":  # Keyed by task: a default executor's task, or a command task.
        nested = nested_kill_due(state, rest[0], rest[1])
        if nested is not None:
            return nested
    executor = state.executor(rest[0], rest[1])
    if executor is None:
        return []
    if kind == "executor-registration":
        if executor.phase is ExecutorPhase.REGISTERING and not executor.recovered:
            timeout = state.settings.executor_registration_timeout
            return end_executor(
                state,
                executor,
                Termination(
                    mesos_pb2.TASK_FAILED,
                    _Status.REASON_EXECUTOR_REGISTRATION_TIMEOUT,
                    f"Executor did not register within {timeout:g} seconds",
                ),
                now,
            )
    elif kind == "executor-reregistration":
        if executor.phase is ExecutorPhase.REGISTERING and executor.recovered:
            timeout = state.settings.executor_reregistration_timeout
            return end_executor(
                state,
                executor,
                Termination(
                    mesos_pb2.TASK_FAILED,
                    _Status.REASON_EXECUTOR_REREGISTRATION_TIMEOUT,
                    f"Executor did not re-register within {timeout:g} seconds after the"
                    " agent restarted",
                ),
                now,
            )
    elif kind in ("executor-shutdown", "kill") and executor.phase is ExecutorPhase.TERMINATING:
        return [DestroyContainer(executor.container_id)]
    return []


def end_executor(
    state: AgentState, executor: ExecutorRecord, why: Termination, now: float
) -> list[Effect]:
    if executor.kind is ExecutorKind.DEFAULT:
        return end_default(state, executor, why, now)
    executor.pending_termination = why
    executor.phase = ExecutorPhase.TERMINATING
    return [DestroyContainer(executor.container_id)]


def _completion_time_reached(
    state: AgentState, framework_id: str, task_id: str, now: float
) -> list[Effect]:
    framework = state.frameworks.get(framework_id)
    task = framework.find_task(task_id) if framework is not None else None
    if task is None or task.terminal or task.kill_requested:
        return []
    task.completion_time_reached = True
    return kill_task(state, framework_id, task_id, None, now)
