"""The overview's gauges, read straight from the state machine: cheap enough to send every second.

``master/tasks_<state>``, ``master/slaves_*``, ``master/frameworks_*`` and
``master/outstanding_offers``, named as in ``/metrics/snapshot``. The operator API's GET_METRICS
has them too, but it also sums every agent's and task's resources (about 0.1 s per 20,000 tasks);
these need one integer count per live task (:func:`live_task_counts`, a few ms per 100,000),
one per agent and framework (:func:`herd_counts`), and the history's terminal counters.
"""

from __future__ import annotations

from collections.abc import Mapping

from master.core import TERMINAL_STATES, Master
from protos.v1 import mesos_pb2

__all__ = ["GAUGE_STATES", "gauges", "herd_counts", "live_task_counts", "metric_name"]

GAUGE_STATES = ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_UNREACHABLE")
"""The live states the overview always shows (zeros included)."""

_state_name = mesos_pb2.TaskState.Name


def metric_name(state: str) -> str:
    """``master/tasks_running`` for ``TASK_RUNNING``."""
    return "master/tasks_" + state.removeprefix("TASK_").lower()


def live_task_counts(master: Master) -> dict[str, int]:
    """The tasks the master tracks that have not ended, by state name."""
    counts: dict[int, int] = {}
    for fw in master.state.frameworks.values():
        for task in fw.tasks.values():
            counts[task.state] = counts.get(task.state, 0) + 1
    return {
        _state_name(state): count  # type: ignore[arg-type]
        for state, count in counts.items()
        if state not in TERMINAL_STATES
    }


def herd_counts(master: Master) -> dict[str, float]:
    """Agents by phase and frameworks by whether they are connected."""
    state = master.state
    phases = [agent.phase.value for agent in state.agents.values()]
    connected = sum(fw.connected for fw in state.frameworks.values())
    return {
        "master/slaves_connected": phases.count("connected"),
        "master/slaves_disconnected": phases.count("disconnected"),
        "master/slaves_unreachable": phases.count("unreachable"),
        "master/frameworks_active": connected,
        "master/frameworks_inactive": len(state.frameworks) - connected,
    }


def gauges(
    master: Master, task_counts: Mapping[str, int], herds: Mapping[str, float]
) -> dict[str, float]:
    """Every gauge, from live task counts and herd counts (kept or just counted) and the
    master's offers and terminal counters."""
    state = master.state
    out: dict[str, float] = dict(herds)
    out["master/outstanding_offers"] = len(state.offers)
    for name in GAUGE_STATES:
        out[metric_name(name)] = task_counts.get(name, 0)
    for name, count in task_counts.items():
        out.setdefault(metric_name(name), count)
    ended = state.history.terminal
    for task_state in sorted(TERMINAL_STATES):
        name = metric_name(_state_name(task_state))
        out[name] = ended.get(task_state, 0)
    return out
