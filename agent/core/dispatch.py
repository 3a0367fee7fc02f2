"""``handle(state, event, now)``: the one way into the agent's core.

Each typed event (:mod:`agent.core.events`) is routed to the module that owns its concern;
master messages are decoded here. ``handle`` is also where an unexpected exception of a handler
stops: it is logged with the event that caused it (its repr cut short), the agent keeps
running, and where the event has an outcome someone waits for, the effects returned make it
explicit: a launch whose handling failed is undone and its tasks end TASK_FAILED, so none is
left STAGING with its resources counted. The executor API's refusals (``InvalidCall``,
``UnknownTarget``) are not faults: they pass through to the caller, and change nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from agent.core import executor_events, launches, master_events, restart, timers
from agent.core.effects import (
    CheckpointAgent,
    CheckpointContainerState,
    Effect,
    LookForContainer,
    StopAgent,
)
from agent.core.events import (
    AgentStopping,
    ContainerExited,
    ContainerLaunched,
    ContainerLaunchFailed,
    ContainerNeverStarted,
    ContainerRecovered,
    Disconnected,
    Event,
    ExecutorDisconnected,
    ExecutorMessage,
    ExecutorSubscribed,
    ExecutorUpdate,
    HealthChanged,
    HealthFailed,
    MasterMessageReceived,
    RecoverFromCheckpoint,
    RecoveryDone,
    TimerFired,
)
from agent.core.guards import guard_for
from agent.core.model import InvalidCall, UnknownTarget
from agent.core.state import AgentState
from protos.v1 import agent_internal_pb2, mesos_pb2

__all__ = ["handle"]

log = logging.getLogger(__name__)

_MAX_EVENT_REPR = 600


def describe(event: object) -> str:
    """A short repr of ``event`` for logs (a 5 MB TaskInfo must not flood them)."""
    text = repr(event)
    if len(text) > _MAX_EVENT_REPR:
        text = f"{text[:_MAX_EVENT_REPR]}... ({len(text)} characters)"
    return text


def handle(state: AgentState, event: Event, now: float) -> list[Effect]:
    """Apply ``event`` at time ``now`` to ``state``; return the effects to carry out, in order.

    Raises only the executor API's refusals (InvalidCall, UnknownTarget), which change nothing.
    Any other exception is a fault of the core: it is logged and counted in ``state.faults``
    (``state.last_fault`` says what it was), so tests and simulations can insist on none.
    """
    guard = guard_for(state, event)
    try:
        return _dispatch(state, event, now)
    except (InvalidCall, UnknownTarget):
        raise
    except Exception as error:  # Any fault of a handler: contained here, see the docstring.
        log.exception("The agent's core failed to handle %s", describe(event))
        state.faults += 1
        state.last_fault = f"{type(error).__name__}: {error} (handling {describe(event)})"[:2000]
        if guard is None:
            return []
        try:
            return guard.settle(state, f"{type(error).__name__}: {error}", now)
        except Exception:
            log.exception("Settling the outcome of %s failed too", describe(event))
            return []


def _dispatch(state: AgentState, event: Event, now: float) -> list[Effect]:
    match event:
        case MasterMessageReceived(message):
            return _master_message(state, message, now)
        case Disconnected():
            return master_events.disconnected(state)
        case ContainerLaunched(container_id, container_state):
            effects: list[Effect] = []
            if container_state is not None:
                effects += _checkpoint_container(state, container_id, container_state)
            return effects + executor_events.container_launched(state, container_id, now)
        case ContainerLaunchFailed(container_id, message):
            return executor_events.container_launch_failed(state, container_id, message, now)
        case ContainerExited(container_id, exit):
            return executor_events.container_exited(state, container_id, exit, now)
        case ContainerRecovered(container_id):
            return executor_events.container_recovered(state, container_id, now)
        case ContainerNeverStarted(container_id, message):
            return executor_events.container_never_started(state, container_id, message, now)
        case ExecutorSubscribed(framework_id, executor_id, subscribe):
            updates = [u.status for u in subscribe.unacknowledged_updates]
            tasks = list(subscribe.unacknowledged_tasks)
            return executor_events.executor_subscribe(
                state, framework_id, executor_id, tasks, updates, now=now
            )
        case ExecutorUpdate(framework_id, executor_id, status):
            return executor_events.executor_update(state, framework_id, executor_id, status, now)
        case ExecutorMessage(framework_id, executor_id, data):
            return executor_events.executor_message(state, framework_id, executor_id, data)
        case ExecutorDisconnected(framework_id, executor_id):
            return executor_events.executor_disconnected(state, framework_id, executor_id)
        case HealthChanged(framework_id, task_id, healthy):
            return executor_events.health_changed(state, framework_id, task_id, healthy, now)
        case HealthFailed(framework_id, task_id):
            return executor_events.health_failed(state, framework_id, task_id, now)
        case TimerFired(key):
            return timers.on_timer(state, key, now)
        case RecoverFromCheckpoint(agent):
            return [LookForContainer(c, s) for c, s in restart.recover(state, agent)]
        case RecoveryDone():
            return restart.recovery_done(state, now)
        case AgentStopping(kill_all):
            if kill_all:
                return master_events.shutdown_all(state, now)
            return restart.stop_unrecoverable(state, now)
    raise TypeError(f"not an agent event: {type(event).__name__}")


def _checkpoint_container(
    state: AgentState, container_id: str, container_state: dict[str, object]
) -> list[Effect]:
    """Record how to find a checkpointing framework's container again, before anything else."""
    owner = state.container_owner(container_id)
    if owner is None or not owner[0].checkpoint:
        return []
    executor, task = owner
    if task is None:
        return [CheckpointContainerState(*executor.key, container_id, None, container_state)]
    # A default executor's task: its container is recorded with the task, under the run.
    return [
        CheckpointContainerState(
            *executor.key, executor.container_id, task.task_id, container_state
        )
    ]


_MasterHandler = Callable[[AgentState, agent_internal_pb2.MasterMessage, float], list[Effect]]


def _master_message(
    state: AgentState, message: agent_internal_pb2.MasterMessage, now: float
) -> list[Effect]:
    kind = message.WhichOneof("payload")
    handler = _MASTER_HANDLERS.get(kind or "")
    if handler is None:
        log.info("Ignoring a %s message from the master", kind or "empty")
        return []
    return handler(state, message, now)


def _registered(
    state: AgentState, message: agent_internal_pb2.MasterMessage, now: float
) -> list[Effect]:
    agent_id = message.agent_registered.agent_id.value
    if not agent_id:
        log.error("Ignoring an AgentRegistered without an agent id")
        return []
    if state.agent_id not in (None, agent_id):
        log.error("The master registered this agent anew as %s", agent_id)
    effects = master_events.registered(state, agent_id, now)
    return [CheckpointAgent(_copy(state.agent_info)), *effects]


def _reregistered(
    state: AgentState, message: agent_internal_pb2.MasterMessage, now: float
) -> list[Effect]:
    if state.agent_id is None:
        log.error("Ignoring an AgentReregistered: this agent was never registered")
        return []
    effects = master_events.reregistered(state, now, message.agent_reregistered.reconciliations)
    return [CheckpointAgent(_copy(state.agent_info)), *effects]


def _kill(state: AgentState, message: agent_internal_pb2.MasterMessage, now: float) -> list[Effect]:
    kill = message.kill_task
    policy = kill.kill_policy if kill.HasField("kill_policy") else None
    return master_events.kill_task(state, kill.framework_id.value, kill.task_id.value, policy, now)


def _ack(state: AgentState, message: agent_internal_pb2.MasterMessage, now: float) -> list[Effect]:
    ack = message.status_update_acknowledgement
    return master_events.acknowledge(
        state, ack.framework_id.value, ack.task_id.value, ack.uuid, now
    )[1]


def _relay(
    state: AgentState, message: agent_internal_pb2.MasterMessage, now: float
) -> list[Effect]:
    relay = message.framework_to_executor
    return master_events.framework_message(
        state, relay.framework_id.value, relay.executor_id.value, relay.data
    )


def _shutdown_agent(
    state: AgentState, message: agent_internal_pb2.MasterMessage, now: float
) -> list[Effect]:
    why = message.shutdown_agent.message or "no reason given"
    log.warning("The master shut this agent down: %s", why)
    return [StopAgent(why)]


def _error(
    state: AgentState, message: agent_internal_pb2.MasterMessage, now: float
) -> list[Effect]:
    log.warning("The master reported an error: %s", message.error.message[:1000])
    return []


_MASTER_HANDLERS: dict[str, _MasterHandler] = {
    "agent_registered": _registered,
    "agent_reregistered": _reregistered,
    "run_task": lambda s, m, now: launches.run_task(s, m.run_task, now),
    "run_task_group": lambda s, m, now: launches.run_task_group(s, m.run_task_group, now),
    "kill_task": _kill,
    "status_update_acknowledgement": _ack,
    "framework_to_executor": _relay,
    "shutdown_framework": lambda s, m, now: master_events.shutdown_framework(
        s, m.shutdown_framework.framework_id.value, now
    ),
    "shutdown_executor": lambda s, m, now: master_events.shutdown_executor(
        s, m.shutdown_executor.framework_id.value, m.shutdown_executor.executor_id.value, now
    ),
    "reconcile_tasks": lambda s, m, now: master_events.reconcile(
        s, m.reconcile_tasks.framework_id.value, m.reconcile_tasks.statuses, now
    ),
    "update_framework": lambda s, m, now: master_events.update_framework(
        s, m.update_framework.framework_id.value, m.update_framework.framework_info
    ),
    "shutdown_agent": _shutdown_agent,
    "error": _error,
    "ping": lambda s, m, now: [],  # Answered by the master link itself.
}


def _copy(info: mesos_pb2.AgentInfo) -> mesos_pb2.AgentInfo:
    copy = mesos_pb2.AgentInfo()
    copy.CopyFrom(info)
    return copy
