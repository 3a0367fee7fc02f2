"""Task status updates and the calls about running tasks: ACKNOWLEDGE, KILL, SHUTDOWN, MESSAGE.

Status updates come from agents with a uuid and are retried by the agent until acknowledged. The
master updates the task to the update's ``latest_state`` (the newest state the agent knows,
possibly ahead of the update being delivered), releases its resources the first time that state
is terminal, remembers the delivered update's state and uuid, and forwards the update to the
scheduler if it is subscribed. The scheduler's ACKNOWLEDGE is relayed to the agent; once the
acknowledged update is the task's terminal one, the master forgets the task.
"""

from __future__ import annotations

from master.core.errors import CallError, ErrorCode, invalid, shown
from master.core.events import message_event, update_event
from master.core.model import TERMINAL_STATES, Agent, AgentPhase, Framework
from master.core.reconciliation import reconcile_one
from master.core.state import MasterState, log
from master.core.validation import check_uuid
from protos.v1 import agent_internal_pb2, mesos_pb2, scheduler_pb2

__all__ = [
    "acknowledge",
    "executor_message",
    "framework_message",
    "kill",
    "launch_refused",
    "shutdown_executor",
    "status_update",
]

_MasterMessage = agent_internal_pb2.MasterMessage
_Status = mesos_pb2.TaskStatus


def status_update(
    state: MasterState, agent: Agent, update: agent_internal_pb2.StatusUpdate, now: float
) -> None:
    """An agent reports a task's state (see the module docstring)."""
    framework_id = update.framework_id.value
    status = update.status
    fw = state.frameworks.get(framework_id)
    if fw is None:
        state.history.count("master/invalid_status_updates")
        if framework_id in state.completed:
            message = _MasterMessage()
            message.shutdown_framework.framework_id.value = framework_id
            state.send_to_agent(agent, message)
        log.debug("status update for unknown framework %s dropped", framework_id)
        return
    state.history.count("master/valid_status_updates")
    task = fw.tasks.get(status.task_id.value)
    if task is not None and task.agent_id == agent.agent_id:
        latest = update.latest_state if update.HasField("latest_state") else status.state
        prior, task.state = task.state, latest
        task.unreachable_at = None
        if latest in TERMINAL_STATES:
            state.release_task(task)
        task.status_update_state = status.state
        task.status_update_uuid = status.uuid if status.HasField("uuid") else None
        task.latest_status = status
        state.history.task_updated(task, status, prior, now)
        if task.status_update_uuid is None and status.state in TERMINAL_STATES:
            state.forget_task(task)  # Nothing will acknowledge it.
    state.send_event(fw, update_event(status))


def launch_refused(
    state: MasterState, agent: Agent, refused: agent_internal_pb2.LaunchRefused, now: float
) -> None:
    """An agent refused a launch reusing the id of a task it still runs: tell the framework.

    The framework gets an unreliable TASK_ERROR (no uuid: nothing to acknowledge). The master's
    record of a task with that id is left alone: it describes the task the agent kept running,
    whereas a TASK_ERROR status update would end it here while it runs on.
    """
    fw = state.frameworks.get(refused.framework_id.value)
    task_id = refused.task_id.value
    if fw is None or not task_id:
        log.debug("launch refusal for unknown framework or no task id dropped")
        return
    reason = refused.reason if refused.HasField("reason") else _Status.REASON_TASK_INVALID
    status = mesos_pb2.TaskStatus(
        state=mesos_pb2.TASK_ERROR,
        source=_Status.SOURCE_AGENT,
        reason=reason,
        message=refused.message or f"the agent refused to launch task {shown(task_id)}",
        timestamp=now,
    )
    status.task_id.value = task_id
    status.agent_id.value = agent.agent_id
    state.send_event(fw, update_event(status))


def acknowledge(state: MasterState, fw: Framework, call: scheduler_pb2.Call) -> None:
    """ACKNOWLEDGE: relay to the agent; forget the task once its terminal update is acked."""
    if not call.HasField("acknowledge"):
        raise invalid("acknowledge is required in an ACKNOWLEDGE call")
    # Each field is read once: every protobuf attribute access builds a new Python object, and
    # this runs for every status update a busy framework acknowledges.
    ack = call.acknowledge
    agent_id = ack.agent_id.value
    task_id = ack.task_id.value
    uuid = ack.uuid
    if not agent_id:
        raise invalid("acknowledge.agent_id is required")
    if not task_id:
        raise invalid("acknowledge.task_id is required")
    check_uuid(uuid, "acknowledge.uuid")
    agent = state.agents.get(agent_id)
    if agent is None:
        raise CallError(ErrorCode.NOT_FOUND, f"acknowledge.agent_id {shown(agent_id)} is unknown")
    task = fw.tasks.get(task_id)
    if (
        task is not None
        and task.agent_id == agent_id
        and task.status_update_uuid == uuid
        and task.status_update_state in TERMINAL_STATES
    ):
        state.forget_task(task)
    if agent.connection_id is None:
        # The agent resends the update once it is back, and the scheduler acknowledges again.
        log.debug("acknowledgement for disconnected agent %s dropped", agent_id)
        return
    message = _MasterMessage()
    relayed = message.status_update_acknowledgement
    relayed.framework_id.value = fw.framework_id
    relayed.task_id.value = task_id
    relayed.uuid = uuid
    state.send_to_agent(agent, message)


def kill(state: MasterState, fw: Framework, call: scheduler_pb2.Call, now: float) -> None:
    """KILL: tell the task's agent (later, if it is away); an unknown task is reconciled."""
    if not call.HasField("kill"):
        raise invalid("kill is required in a KILL call")
    payload = call.kill
    task_id = payload.task_id.value
    if not task_id:
        raise invalid("kill.task_id is required")
    agent_id = payload.agent_id.value if payload.HasField("agent_id") else None
    task = fw.tasks.get(task_id)
    if task is None or task.unreachable_at is not None:
        reconcile_one(state, fw, task_id, agent_id, now)
        return
    if agent_id is not None and agent_id != task.agent_id:
        raise invalid(
            f"kill.agent_id {shown(agent_id)} is not the agent of task {shown(task_id)}"
            f" ({task.agent_id!r})"
        )
    agent = state.agents[task.agent_id]
    message = _MasterMessage()
    message.kill_task.framework_id.value = fw.framework_id
    message.kill_task.task_id.value = task_id
    if payload.HasField("kill_policy"):
        message.kill_task.kill_policy.CopyFrom(payload.kill_policy)
    if not state.send_to_agent(agent, message):
        task.kill_pending = True  # Sent when the agent reregisters.


def _connected_agent(state: MasterState, agent_id: str, where: str) -> Agent | None:
    """The named agent if connected; None if known but away; NOT_FOUND if unknown."""
    if not agent_id:
        raise invalid(f"{where} is required")
    agent = state.agents.get(agent_id)
    if agent is None:
        raise CallError(ErrorCode.NOT_FOUND, f"{where} {shown(agent_id)} is unknown")
    if agent.phase is not AgentPhase.CONNECTED:
        log.info("%s %s is not connected; dropping the call", where, agent_id)
        return None
    return agent


def shutdown_executor(state: MasterState, fw: Framework, call: scheduler_pb2.Call) -> None:
    """SHUTDOWN: ask the agent to stop an executor and its tasks."""
    if not call.HasField("shutdown"):
        raise invalid("shutdown is required in a SHUTDOWN call")
    payload = call.shutdown
    if not payload.executor_id.value:
        raise invalid("shutdown.executor_id is required")
    agent = _connected_agent(state, payload.agent_id.value, "shutdown.agent_id")
    if agent is not None:
        message = _MasterMessage()
        message.shutdown_executor.framework_id.value = fw.framework_id
        message.shutdown_executor.executor_id.value = payload.executor_id.value
        state.send_to_agent(agent, message)


def framework_message(state: MasterState, fw: Framework, call: scheduler_pb2.Call) -> None:
    """MESSAGE: opaque data for an executor (best effort)."""
    if not call.HasField("message"):
        raise invalid("message is required in a MESSAGE call")
    payload = call.message
    if not payload.executor_id.value:
        raise invalid("message.executor_id is required")
    agent = _connected_agent(state, payload.agent_id.value, "message.agent_id")
    if agent is not None:
        message = _MasterMessage()
        out = message.framework_to_executor
        out.framework_id.value = fw.framework_id
        out.executor_id.value = payload.executor_id.value
        out.data = payload.data
        state.send_to_agent(agent, message)


def executor_message(
    state: MasterState, agent: Agent, message: agent_internal_pb2.ExecutorToFramework
) -> None:
    """Opaque data from an executor: a MESSAGE event to its scheduler (dropped if away)."""
    fw = state.frameworks.get(message.framework_id.value)
    if fw is None:
        state.history.count("master/invalid_executor_to_framework_messages")
        return
    state.history.count("master/valid_executor_to_framework_messages")
    state.send_event(fw, message_event(agent.agent_id, message.executor_id.value, message.data))
