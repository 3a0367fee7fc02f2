"""``GET /metrics/snapshot`` on the agent: Mesos's ``slave/*`` figures, as a flat JSON object.

The names are those a Mesos agent serves (``src/slave/metrics.cpp``), which mesos_exporter and
dashboards built for Mesos read: ``slave/uptime_secs``, ``slave/registered``,
``slave/{cpus,mem,disk,gpus}_{total,used,percent}``, ``slave/tasks_<state>`` (live tasks by
state, and for terminal states the tasks that reached it since the agent started),
``slave/executors_{registering,running,terminating,terminated}`` and
``slave/frameworks_active``. Not kept: ``slave/container_launch_errors`` (a launch that fails
is a TASK_FAILED with its reason, counted in ``slave/tasks_failed``). Emporion adds
``slave/faults`` (inputs its core contained). Read from the state machine when asked: nothing
is counted twice. ``?jsonp=`` as on the master.
"""

# No ``from __future__ import annotations``: FastAPI must see the ``Query`` of a parameter.

import time
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from agent.core import AgentState
from agent.core.model import ExecutorPhase
from protos.mesos_json import answer
from protos.v1 import mesos_pb2

__all__ = ["agent_metrics_snapshot", "metrics_snapshot_router"]

_LIVE = ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING")
_ENDED = (
    "TASK_FINISHED",
    "TASK_FAILED",
    "TASK_KILLED",
    "TASK_LOST",
    "TASK_ERROR",
    "TASK_DROPPED",
    "TASK_GONE",
    "TASK_GONE_BY_OPERATOR",
)
_EXECUTOR_PHASES = {
    ExecutorPhase.LAUNCHING: "registering",
    ExecutorPhase.REGISTERING: "registering",
    ExecutorPhase.RUNNING: "running",
    ExecutorPhase.TERMINATING: "terminating",
    ExecutorPhase.TERMINATED: "terminated",
}


def _metric(state_name: str) -> str:
    return "slave/tasks_" + state_name.removeprefix("TASK_").lower()


def agent_metrics_snapshot(
    state: AgentState, *, connected: bool, start_time: float, now: float
) -> dict[str, float]:
    """The agent's figures (module docstring)."""
    out: dict[str, float] = {
        "slave/uptime_secs": max(0.0, now - start_time),
        "slave/registered": 1.0 if connected else 0.0,
        "slave/frameworks_active": float(len(state.frameworks)),
        "slave/faults": float(state.faults),
    }
    total = state.total.non_revocable().scalar_totals()
    used = state.allocated().non_revocable().scalar_totals()
    for name in ("cpus", "mem", "disk", "gpus"):
        have, taken = total.get(name, 0.0), used.get(name, 0.0)
        out[f"slave/{name}_total"] = have
        out[f"slave/{name}_used"] = taken
        out[f"slave/{name}_percent"] = taken / have if have else 0.0
    for name in (*_LIVE, *_ENDED):
        out[_metric(name)] = 0.0
    for phase in set(_EXECUTOR_PHASES.values()):
        out[f"slave/executors_{phase}"] = 0.0
    for executor in state.executors():
        out[f"slave/executors_{_EXECUTOR_PHASES[executor.phase]}"] += 1
        for task in executor.tasks.values():
            name = mesos_pb2.TaskState.Name(task.state)
            if name in _LIVE:
                out[_metric(name)] += 1
    for task_state, count in state.tasks_ended.items():
        name = mesos_pb2.TaskState.Name(task_state)  # type: ignore[arg-type]
        out[_metric(name)] = out.get(_metric(name), 0.0) + count
    return out


def metrics_snapshot_router(
    state: Callable[[], AgentState],
    connected: Callable[[], bool],
    start_time: float,
    clock: Callable[[], float] = time.time,
) -> APIRouter:
    """``GET /metrics/snapshot`` (module docstring)."""
    router = APIRouter()

    @router.get("/metrics/snapshot")
    async def snapshot(
        jsonp_callback: Annotated[str | None, Query(alias="jsonp")] = None,
    ) -> Response:
        figures = agent_metrics_snapshot(
            state(), connected=connected(), start_time=start_time, now=clock()
        )
        status, media_type, body = answer(figures, jsonp_callback)
        return Response(body, status_code=status, media_type=media_type)

    return router
