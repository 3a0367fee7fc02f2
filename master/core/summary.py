"""``/master/state-summary``: agents and frameworks with task counts by state, without tasks.

Split from :mod:`master.core.snapshot` (whose building blocks it uses) so that the HTTP layer
can assemble the same answer from parts (:mod:`master.http.fragments`): an agent's entry is
:func:`~master.core.snapshot.agent_json` followed by :func:`summary_count_fields` of its
:func:`agent_summary_counts`, and the counts are a small value that many agents share.
"""

from __future__ import annotations

from collections.abc import Callable

from master.core.master import Master
from master.core.model import Agent, Framework, Task
from master.core.operator_json import Visibility, task_visibility
from master.core.snapshot import (
    JSON,
    REGISTERED_PHASES,
    agent_json,
    framework_summary,
    state_counts,
)
from master.core.state import MasterState
from protos.v1 import mesos_pb2

__all__ = [
    "SummaryCounts",
    "agent_summary_counts",
    "completed_tasks_by_agent",
    "framework_count_fields",
    "framework_summaries",
    "state_summary",
    "summary_count_fields",
]

_SUMMARY_STATES = (
    mesos_pb2.TASK_STAGING,
    mesos_pb2.TASK_STARTING,
    mesos_pb2.TASK_RUNNING,
    mesos_pb2.TASK_KILLING,
    mesos_pb2.TASK_FINISHED,
    mesos_pb2.TASK_KILLED,
    mesos_pb2.TASK_FAILED,
    mesos_pb2.TASK_LOST,
    mesos_pb2.TASK_ERROR,
    mesos_pb2.TASK_UNREACHABLE,
)
"""The per-state task counts of ``/master/state-summary`` (Mesos's list)."""
_STATE_NAMES = tuple(mesos_pb2.TaskState.Name(s) for s in _SUMMARY_STATES)

SummaryCounts = tuple[tuple[int, ...], tuple[str, ...]]
"""An agent's task counts in the order of :data:`_SUMMARY_STATES`, and the sorted ids of the
frameworks of those tasks."""

_NO_TASKS: SummaryCounts = ((0,) * len(_SUMMARY_STATES), ())


def completed_tasks_by_agent(
    state: MasterState, shown: Callable[[Task], bool] | None = None
) -> dict[str, list[Task]]:
    """The completed tasks the history keeps, by agent id (only those ``shown`` shows)."""
    done_on: dict[str, list[Task]] = {}
    for task in state.history.all_completed_tasks():
        if shown is None or shown(task):
            done_on.setdefault(task.agent_id, []).append(task)
    return done_on


def agent_summary_counts(
    agent: Agent, done_on: dict[str, list[Task]], shown: Callable[[Task], bool] | None = None
) -> SummaryCounts:
    """What state-summary says of an agent's tasks, live (those ``shown`` shows) and completed
    (``done_on``, :func:`completed_tasks_by_agent`), as a value (hashable, and the same for
    every agent without tasks)."""
    live = agent.tasks.values()
    done = done_on.get(agent.agent_id, ())
    if not live and not done:
        return _NO_TASKS
    tasks = [*(t for t in live if shown is None or shown(t)), *done]
    counts = state_counts(tasks)
    return (
        tuple(counts.get(s, 0) for s in _SUMMARY_STATES),
        tuple(sorted({t.framework_id for t in tasks})),
    )


def summary_count_fields(counts: SummaryCounts) -> JSON:
    """The fields state-summary adds to an agent: its task count in each state (Mesos's
    ``TASK_RUNNING`` and so on), then ``framework_ids``."""
    by_state, framework_ids = counts
    out: JSON = dict(zip(_STATE_NAMES, by_state, strict=True))
    out["framework_ids"] = list(framework_ids)
    return out


def _count_fields(counts: dict[int, int]) -> JSON:
    return {name: counts.get(s, 0) for name, s in zip(_STATE_NAMES, _SUMMARY_STATES, strict=True)}


def framework_count_fields(
    state: MasterState, fw: Framework, visible: Visibility | None = None
) -> JSON:
    """The fields state-summary adds to a framework: its task count in each state (completed
    tasks the history keeps included), then ``slave_ids``, the agents its tasks are on (only
    what ``visible`` shows counts)."""
    tasks = [*fw.tasks.values(), *state.history.completed_tasks_of(fw.framework_id)]
    if visible is not None:
        tasks = [t for t in tasks if visible.can_view_task(t, fw.info)]
    out = _count_fields(state_counts(tasks))
    out["slave_ids"] = sorted({t.agent_id for t in tasks if t.agent_id})
    return out


def framework_summaries(state: MasterState, visible: Visibility | None = None) -> list[JSON]:
    """The frameworks of state-summary (those ``visible`` shows): each
    :func:`~master.core.snapshot.framework_summary` with its :func:`framework_count_fields`."""
    frameworks = []
    for fw in state.frameworks.values():
        if visible is None or visible.can_view_framework(fw.info):
            entry = framework_summary(state, fw)
            entry.update(framework_count_fields(state, fw, visible))
            frameworks.append(entry)
    return frameworks


def state_summary(master: Master, visible: Visibility | None = None) -> JSON:
    """``/master/state-summary``: agents and frameworks without their tasks, each with its
    task counts by state (completed tasks the history keeps included) and the ids of the
    frameworks (agents) it is linked to by tasks (only what ``visible`` shows counts)."""
    state = master.state
    shown = task_visibility(state, visible) if visible is not None else None
    done_on = completed_tasks_by_agent(state, shown)
    slaves = []
    for agent in state.agents.values():
        if agent.phase not in REGISTERED_PHASES:
            continue
        entry = agent_json(state, agent)
        entry.update(summary_count_fields(agent_summary_counts(agent, done_on, shown)))
        slaves.append(entry)
    return {
        "hostname": master.master_info.hostname,
        "slaves": slaves,
        "frameworks": framework_summaries(state, visible),
    }
