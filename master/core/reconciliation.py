"""RECONCILE: the latest state of tasks, as UPDATE events with REASON_RECONCILIATION and no uuid.

Implicit reconciliation (no tasks named) answers for every task the master tracks for the
framework. Explicit reconciliation answers per task, as Mesos does:

1. task known: its latest delivered state (``status_update_state``, else ``state``);
2. unknown, its agent (or, with no agent named, any agent) not reregistered yet after a master
   restart: no answer; the framework asks again later;
3. unknown, agent registered: TASK_GONE;
4. unknown, agent unreachable: TASK_UNREACHABLE (with the time it became unreachable);
5. unknown, agent gone: TASK_GONE_BY_OPERATOR;
6. unknown, agent unknown: TASK_UNKNOWN.

Frameworks without PARTITION_AWARE get TASK_LOST instead in cases 3 to 6 (and for tasks on
unreachable agents).
"""

from __future__ import annotations

from master.core.errors import invalid
from master.core.events import master_status, update_event
from master.core.model import AgentPhase, Framework, Task
from master.core.state import MasterState
from protos.v1 import mesos_pb2, scheduler_pb2

__all__ = ["reconcile", "reconcile_one"]

_RECONCILIATION = mesos_pb2.TaskStatus.REASON_RECONCILIATION


def _known(state: MasterState, fw: Framework, task: Task, now: float) -> None:
    task_state = task.status_update_state if task.status_update_state is not None else task.state
    if task.unreachable_at is not None:
        task_state = mesos_pb2.TASK_UNREACHABLE
    if task_state == mesos_pb2.TASK_UNREACHABLE and not fw.partition_aware:
        task_state = mesos_pb2.TASK_LOST
    status = master_status(
        task.task_id,
        task_state,
        _RECONCILIATION,
        "Reconciliation: Latest task state",
        now,
        agent_id=task.agent_id,
        executor_id=task.executor_id,
        unreachable_at=task.unreachable_at,
    )
    latest = task.latest_status
    if latest is not None:
        if latest.HasField("healthy"):
            status.healthy = latest.healthy
        if latest.HasField("check_status"):
            status.check_status.CopyFrom(latest.check_status)
        if latest.HasField("container_status"):
            status.container_status.CopyFrom(latest.container_status)
    state.send_event(fw, update_event(status))


def reconcile_one(
    state: MasterState, fw: Framework, task_id: str, agent_id: str | None, now: float
) -> None:
    """Answer for one task (explicit reconciliation; also KILL of an unknown task)."""
    task = fw.tasks.get(task_id)
    if task is not None:
        _known(state, fw, task, now)
        return
    agent = state.agents.get(agent_id) if agent_id else None
    if (agent is not None and agent.phase is AgentPhase.RECOVERING) or (
        agent_id is None and state.recovering_agents > 0
    ):
        return  # Case 2: the task may be on an agent that has not come back yet.
    unreachable_at = None
    if agent is not None and agent.phase is AgentPhase.UNREACHABLE:
        task_state, message = mesos_pb2.TASK_UNREACHABLE, "Reconciliation: Task is unreachable"
        unreachable_at = agent.unreachable_at
    elif agent is not None:
        task_state, message = mesos_pb2.TASK_GONE, "Reconciliation: Task is unknown to the agent"
    elif agent_id is not None and agent_id in state.gone_agents:
        task_state, message = mesos_pb2.TASK_GONE_BY_OPERATOR, "Reconciliation: Task is gone"
    else:
        task_state, message = mesos_pb2.TASK_UNKNOWN, "Reconciliation: Task is unknown"
    if not fw.partition_aware:
        task_state = mesos_pb2.TASK_LOST
    status = master_status(
        task_id,
        task_state,
        _RECONCILIATION,
        message,
        now,
        agent_id=agent_id,
        unreachable_at=unreachable_at,
    )
    state.send_event(fw, update_event(status))


def reconcile(state: MasterState, fw: Framework, call: scheduler_pb2.Call, now: float) -> None:
    """RECONCILE (see the module docstring)."""
    if not call.HasField("reconcile"):
        raise invalid("reconcile is required in a RECONCILE call")
    wanted = call.reconcile.tasks
    for i, item in enumerate(wanted):
        if not item.task_id.value:
            raise invalid(f"reconcile.tasks[{i}].task_id is required")
    if not wanted:
        for task in list(fw.tasks.values()):
            _known(state, fw, task, now)
        return
    for item in wanted:
        agent_id = item.agent_id.value if item.HasField("agent_id") else None
        reconcile_one(state, fw, item.task_id.value, agent_id, now)
