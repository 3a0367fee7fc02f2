"""Read-only snapshots of the master's state as plain JSON data, in Mesos's shapes.

The HTTP API (``master.http``, ``docs/http-api.md``) serves these; they are pure functions of a
:class:`~master.core.master.Master` (and the times passed in), so they are tested without a
server. Every function returns fresh dicts, lists, strings and numbers: nothing that aliases the
state, nothing that needs more than ``json.dumps``.

Shapes follow Mesos's ``/master/state`` and friends where Mesos has the field (``slave_id``,
``used_resources``, ``TASK_RUNNING`` counts, metric names such as ``master/cpus_used``).
Resources are Mesos's JSON summary: ``{"cpus": 4.0, "gpus": 0.0, "mem": 4096.0, "disk": 0.0,
"ports": "[31000-32000]"}`` (scalars summed over reservations, revocable ones as
``<name>_revocable``, ranges and sets as strings).

Completed tasks and frameworks come from the master's history (:mod:`master.core.history`,
bounded by ``--max-completed-frameworks`` and ``--max-completed-tasks-per-framework``); a task
carries its statuses, oldest first (at most :data:`~master.core.history.MAX_STATUSES`).
Frameworks, tasks and executors a ``visible`` (the reader's ``view_*`` ACLs) refuses are left
out; None shows everything.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any, Literal

from google.protobuf import json_format

from master.core.history import CompletedFramework
from master.core.master import Master
from master.core.model import Agent, AgentPhase, Executor, Framework, Offer, Task
from master.core.operator_json import Visibility, attributes_json, task_visibility
from master.core.state import MasterState
from protos.mesos_json import agent_pid, resources_json
from protos.resources import Resources
from protos.v1 import mesos_pb2

__all__ = [
    "DEFAULT_TASK_LIMIT",
    "JSON",
    "REGISTERED_PHASES",
    "TASK_GAUGE_STATES",
    "TERMINAL_COUNTER_STATES",
    "agent_head_json",
    "agent_info_json",
    "agent_json",
    "agent_resources_json",
    "agent_tail_json",
    "framework_summary",
    "state_counts",
    "agents_snapshot",
    "framework_json",
    "frameworks_snapshot",
    "metrics_snapshot",
    "offer_json",
    "offered_resources",
    "resources_json",
    "state_snapshot",
    "task_json",
    "tasks_snapshot",
    "used_resources",
]

JSON = dict[str, Any]
"""A JSON object."""

DEFAULT_TASK_LIMIT = 100
"""Tasks listed by ``/master/tasks`` when no ``limit`` is given (Mesos's ``TASK_LIMIT``)."""

TASK_GAUGE_STATES = (
    mesos_pb2.TASK_STAGING,
    mesos_pb2.TASK_STARTING,
    mesos_pb2.TASK_RUNNING,
    mesos_pb2.TASK_KILLING,
    mesos_pb2.TASK_UNREACHABLE,
)
"""The states counted by the ``master/tasks_<state>`` gauges (Mesos's gauges)."""

TERMINAL_COUNTER_STATES = (
    mesos_pb2.TASK_FINISHED,
    mesos_pb2.TASK_FAILED,
    mesos_pb2.TASK_KILLED,
    mesos_pb2.TASK_LOST,
    mesos_pb2.TASK_ERROR,
    mesos_pb2.TASK_DROPPED,
    mesos_pb2.TASK_GONE,
    mesos_pb2.TASK_GONE_BY_OPERATOR,
)
"""The states counted by the ``master/tasks_<state>`` counters: tasks that reached each since
this master took the lead (Mesos's counters)."""

_METRIC_RESOURCES = ("cpus", "mem", "disk", "gpus")
REGISTERED_PHASES = (AgentPhase.CONNECTED, AgentPhase.DISCONNECTED)
"""Agents Mesos calls registered: known and not waiting to reregister nor unreachable (those
``/master/slaves`` and ``/master/state-summary`` list)."""
_state_name = mesos_pb2.TaskState.Name


# -- building blocks ----------------------------------------------------------------------------


def _sum(resources: Iterable[Resources]) -> Resources:
    """The sum of ``resources``; one part is its own sum (most agents hold one offer or
    task shape, and ``Resources`` is immutable: no new value to build and hash)."""
    total: Resources | None = None
    for part in resources:
        total = part if total is None else total + part
    return Resources.EMPTY if total is None else total


def _quantities(resources: Resources) -> dict[str, float]:
    """Scalar totals (Mesos's ResourceQuantities), zeros left out."""
    return {n: v / 1000 for n, v in sorted(resources.scalar_thousandths().items()) if v}


_TOTALS_JSON: dict[Resources, tuple[JSON, JSON, JSON]] = {}
_USED_JSON: dict[Resources, JSON] = {}
_JSON_CACHE_MAX = 4096


def _cached_resources_json(resources: Resources) -> JSON:
    """``resources_json``, remembered by value (a copy each time: callers may change it).

    Most agents hold nothing or the same few task shapes, and building the summary was most of
    the cost of ``/master/state-summary`` at 50,000 agents; ``Resources`` is immutable and
    hashes once.
    """
    cached = _USED_JSON.get(resources)
    if cached is None:
        if len(_USED_JSON) >= _JSON_CACHE_MAX:
            _USED_JSON.clear()
        cached = _USED_JSON[resources] = resources_json(resources)
    return dict(cached)


def _totals_json(total: Resources) -> tuple[JSON, JSON, JSON]:
    """An agent's ``resources``, ``reserved_resources`` and ``unreserved_resources``, remembered
    by its total (agents of one shape share one): copies, as above."""
    cached = _TOTALS_JSON.get(total)
    if cached is None:
        reserved = {
            role: resources_json(total.reserved(role)) for role in sorted(total.reservation_roles())
        }
        if len(_TOTALS_JSON) >= _JSON_CACHE_MAX:
            _TOTALS_JSON.clear()
        cached = _TOTALS_JSON[total] = (
            resources_json(total),
            reserved,
            resources_json(total.unreserved()),
        )
    resources, reserved, unreserved = cached
    return dict(resources), {r: dict(v) for r, v in reserved.items()}, dict(unreserved)


def _proto_json(message: Any) -> JSON:
    result: JSON = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return result


def _labels(labels: mesos_pb2.Labels) -> list[JSON]:
    return [_proto_json(label) for label in labels.labels]


def _holders(owner: Framework | Agent) -> list[Task | Executor]:
    """A framework's or agent's tasks and executors."""
    return [*owner.tasks.values(), *owner.executors.values()]


def offered_resources(state: MasterState, offer_ids: Collection[str]) -> Resources:
    """What the outstanding offers of ``offer_ids`` (an agent's or a framework's) offer,
    summed in the order of their ids (one offer, the usual case: its resources as they are,
    nothing built)."""
    if len(offer_ids) == 1:
        (offer_id,) = offer_ids
        offer = state.offers.get(offer_id)
        return offer.resources if offer is not None else Resources.EMPTY
    return _sum(o.resources for o in map(state.offers.get, sorted(offer_ids)) if o)


def _used(holders: Iterable[Task | Executor]) -> Resources:
    """What tasks and executors still hold (their resources count as allocated)."""
    return _sum(h.resources for h in holders if h.allocated)


# -- tasks, offers, frameworks, agents ----------------------------------------------------------


def task_json(task: Task) -> JSON:
    """A task as Mesos shows it, with its statuses oldest first."""
    out: JSON = {
        "id": task.task_id,
        "name": task.info.name if task.info is not None else "",
        "framework_id": task.framework_id,
        "executor_id": task.executor_id or "",
        "slave_id": task.agent_id,
        "state": _state_name(task.state),  # type: ignore[arg-type]
        "resources": resources_json(task.resources),
        "role": task.role,
        "statuses": [],
    }
    for status in task.statuses:
        entry: JSON = {"state": _state_name(status.state), "timestamp": status.timestamp}  # type: ignore[arg-type]
        if status.healthy is not None:
            entry["healthy"] = status.healthy
        out["statuses"].append(entry)
    latest = task.latest_status
    if not task.statuses and latest is not None:  # Learnt of from a reregistration.
        out["statuses"].append({"state": _state_name(latest.state), "timestamp": latest.timestamp})
    if task.info is not None and task.info.HasField("labels"):
        out["labels"] = _labels(task.info.labels)
    return out


def offer_json(offer: Offer) -> JSON:
    """An outstanding offer as Mesos shows it."""
    return {
        "id": offer.offer_id,
        "framework_id": offer.framework_id,
        "slave_id": offer.agent_id,
        "allocation_info": {"role": offer.role},
        "resources": resources_json(offer.resources),
    }


def _executor_json(executor: Executor) -> JSON:
    return {
        "executor_id": executor.executor_id,
        "name": executor.info.name if executor.info is not None else "",
        "framework_id": executor.framework_id,
        "slave_id": executor.agent_id,
        "role": executor.role,
        "resources": resources_json(executor.resources),
    }


def framework_summary(state: MasterState, fw: Framework) -> JSON:
    """A framework without its tasks: what state-summary and the full form share."""
    info = fw.info
    return {
        "id": fw.framework_id,
        "name": info.name,
        "used_resources": resources_json(_used(_holders(fw))),
        "offered_resources": resources_json(offered_resources(state, fw.offers)),
        "capabilities": sorted(
            mesos_pb2.FrameworkInfo.Capability.Type.Name(c.type) for c in info.capabilities
        ),
        "hostname": info.hostname,
        "webui_url": info.webui_url,
        "active": fw.connected,
        "connected": fw.connected,
    }


def framework_json(state: MasterState, fw: Framework, visible: Visibility | None = None) -> JSON:
    """A registered framework with its tasks, offers and executors (Mesos's full form).

    Emporion adds ``failover_deadline`` (when a disconnected framework is torn down) and
    ``suppressed_roles``.
    """
    info = fw.info
    out = framework_summary(state, fw)
    offers = [o for o in map(state.offers.get, sorted(fw.offers)) if o is not None]
    tasks: Iterable[Task] = fw.tasks.values()
    done: Iterable[Task] = state.history.completed_tasks_of(fw.framework_id)
    executors: Iterable[Executor] = fw.executors.values()
    if visible is not None:
        tasks = [t for t in tasks if visible.can_view_task(t, info)]
        done = [t for t in done if visible.can_view_task(t, info)]
        executors = [e for e in executors if visible.can_view_executor(e, info)]
    out.update(
        user=info.user,
        failover_timeout=info.failover_timeout,
        checkpoint=info.checkpoint,
        registered_time=fw.registered_at,
        unregistered_time=fw.disconnected_at or 0.0,
        failover_deadline=fw.failover_deadline,
        resources=resources_json(_used(_holders(fw)) + _sum(o.resources for o in offers)),
        suppressed_roles=sorted(fw.suppressed_roles),
        tasks=[task_json(t) for t in tasks if t.state != mesos_pb2.TASK_UNREACHABLE],
        unreachable_tasks=[task_json(t) for t in tasks if t.state == mesos_pb2.TASK_UNREACHABLE],
        completed_tasks=[task_json(t) for t in done],
        offers=[offer_json(o) for o in offers],
        executors=[_executor_json(e) for e in executors],
    )
    if info.roles:
        out["roles"] = sorted(info.roles)
    else:
        out["role"] = info.role or "*"
    if info.principal:
        out["principal"] = info.principal
    if info.HasField("labels"):
        out["labels"] = _labels(info.labels)
    return out


def _completed_framework_json(
    record: CompletedFramework, visible: Visibility | None = None
) -> JSON:
    """A torn-down framework (Mesos's ``completed_frameworks`` entries) with its tasks."""
    fw, info = record.framework, record.framework.info
    done = [t for t in record.tasks if visible is None or visible.can_view_task(t, info)]
    out: JSON = {
        "id": fw.framework_id,
        "name": info.name,
        "user": info.user,
        "hostname": info.hostname,
        "webui_url": info.webui_url,
        "active": False,
        "connected": False,
        "registered_time": fw.registered_at,
        "unregistered_time": record.removed_at,
        "unregistered_reason": record.reason,
        "tasks": [],
        "unreachable_tasks": [],
        "completed_tasks": [task_json(t) for t in done],
        "offers": [],
        "executors": [],
    }
    if info.roles:
        out["roles"] = sorted(info.roles)
    else:
        out["role"] = info.role or "*"
    return out


def agent_info_json(agent: Agent) -> JSON:
    """An agent's id, hostname, port, attributes and domain (``recovered_slaves`` entries)."""
    info = agent.info
    out: JSON = {
        "id": agent.agent_id,
        "hostname": info.hostname,
        "port": info.port,
        "attributes": attributes_json(info.attributes),
    }
    if info.HasField("domain"):
        out["domain"] = _proto_json(info.domain)
    return out


def used_resources(owner: Framework | Agent) -> Resources:
    """What a framework's or agent's tasks and executors hold (allocated)."""
    return _used(_holders(owner))


def agent_head_json(agent: Agent) -> JSON:
    """The first fields of :func:`agent_json`: :func:`agent_info_json`, ``pid`` and
    ``registered_time``."""
    out = agent_info_json(agent)
    out["pid"] = agent_pid(agent.info.hostname, agent.info.port)
    out["registered_time"] = agent.registered_at
    return out


def agent_resources_json(total: Resources, used: Resources, offered: Resources) -> JSON:
    """The resource fields of :func:`agent_json`, from an agent's total, used and offered
    resources (agents of one shape share them: the HTTP layer remembers them by value)."""
    resources, reserved, unreserved = _totals_json(total)
    return {
        "resources": resources,
        "used_resources": _cached_resources_json(used),
        "offered_resources": _cached_resources_json(offered),
        "reserved_resources": reserved,
        "unreserved_resources": unreserved,
    }


def agent_tail_json(agent: Agent) -> JSON:
    """The last fields of :func:`agent_json`, ``active`` ... ``phase``: a function of the
    agent's phase, version and capabilities only (the HTTP layer remembers it by those)."""
    return {
        "active": agent.connected,
        "deactivated": False,
        "version": agent.version,
        "capabilities": sorted(agent.capabilities),
        "phase": agent.phase.value,
    }


def agent_json(state: MasterState, agent: Agent) -> JSON:
    """A registered agent with its total, used, offered and reserved resources:
    :func:`agent_head_json`, :func:`agent_resources_json`, :func:`agent_tail_json`.

    ``active`` is whether it is connected (Emporion does not deactivate agents); Emporion adds
    ``phase`` (``connected``, ``disconnected``, ``recovering``, ``unreachable``).
    """
    out = agent_head_json(agent)
    used, offered = used_resources(agent), offered_resources(state, agent.offers)
    out.update(agent_resources_json(agent.total, used, offered))
    out.update(agent_tail_json(agent))
    return out


# -- endpoints ----------------------------------------------------------------------------------


def frameworks_snapshot(
    master: Master, framework_id: str | None = None, visible: Visibility | None = None
) -> JSON:
    """``/master/frameworks``: every registered framework (or only ``framework_id``)."""
    state = master.state
    return {
        "frameworks": [
            framework_json(state, fw, visible)
            for fw in state.frameworks.values()
            if (framework_id is None or fw.framework_id == framework_id)
            and (visible is None or visible.can_view_framework(fw.info))
        ],
        "completed_frameworks": [
            _completed_framework_json(record, visible)
            for record in state.history.completed_frameworks.values()
            if (framework_id is None or record.framework.framework_id == framework_id)
            and (visible is None or visible.can_view_framework(record.framework.info))
        ],
        "unregistered_frameworks": [],
    }


def agents_snapshot(master: Master, agent_id: str | None = None) -> JSON:
    """``/master/slaves``: registered agents, and those known from the registry that have not
    reregistered since the master started (``recovered_slaves``, their AgentInfo only)."""
    state = master.state
    chosen = [a for a in state.agents.values() if agent_id is None or a.agent_id == agent_id]
    return {
        "slaves": [agent_json(state, a) for a in chosen if a.phase in REGISTERED_PHASES],
        "recovered_slaves": [
            agent_info_json(a) for a in chosen if a.phase is AgentPhase.RECOVERING
        ],
    }


def state_snapshot(
    master: Master,
    *,
    version: str,
    start_time: float,
    elected_time: float | None,
    visible: Visibility | None = None,
) -> JSON:
    """``/master/state``: the leading master, its agents and frameworks (with their tasks,
    executors and outstanding offers). Times are seconds since the epoch."""
    state = master.state
    info = master.master_info
    phases = [a.phase for a in state.agents.values()]
    out: JSON = {
        "version": version,
        "id": info.id,
        "pid": info.pid,
        "hostname": info.hostname,
        "start_time": start_time,
        "leader": info.pid,
        "leader_info": _proto_json(info),
        "activated_slaves": phases.count(AgentPhase.CONNECTED),
        "deactivated_slaves": phases.count(AgentPhase.DISCONNECTED),
        "unreachable_slaves": phases.count(AgentPhase.UNREACHABLE),
        "recovering_slaves": phases.count(AgentPhase.RECOVERING),
    }
    if elected_time is not None:
        out["elected_time"] = elected_time
    out.update(agents_snapshot(master))
    out.update(frameworks_snapshot(master, visible=visible))
    out["orphan_tasks"] = []
    return out


def state_counts(tasks: Iterable[Task]) -> dict[int, int]:
    """How many of ``tasks`` are in each state."""
    counts: dict[int, int] = {}
    for task in tasks:
        counts[task.state] = counts.get(task.state, 0) + 1
    return counts


def tasks_snapshot(
    master: Master,
    *,
    limit: int = DEFAULT_TASK_LIMIT,
    offset: int = 0,
    order: Literal["asc", "des"] = "des",
    framework_id: str | None = None,
    task_id: str | None = None,
    visible: Visibility | None = None,
) -> JSON:
    """``/master/tasks``: up to ``limit`` tasks (live and completed) from ``offset``, ordered
    as Mesos orders them, by the time of their first status (``des``: newest first; STAGING at
    launch). Tasks without a status sort as the oldest, as in Mesos; ties keep the order the
    master tracks them in (live tasks, then completed). Raises ValueError for a negative
    ``limit`` or ``offset`` or an unknown ``order``.
    """
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    if order not in ("asc", "des"):
        raise ValueError(f"order must be 'asc' or 'des', got {order!r}")
    tasks = [
        task
        for fw in master.state.frameworks.values()
        if framework_id is None or fw.framework_id == framework_id
        for task in fw.tasks.values()
        if task_id is None or task.task_id == task_id
    ]
    history = master.state.history
    done = history.all_completed_tasks()
    if framework_id is not None:
        done = history.completed_tasks_of(framework_id)
    tasks.extend(t for t in done if task_id is None or t.task_id == task_id)
    if visible is not None:
        tasks = list(filter(task_visibility(master.state, visible), tasks))

    def stamp(task: Task) -> float:
        if task.statuses:
            return task.statuses[0].timestamp
        status = task.latest_status
        return status.timestamp if status is not None else float("-inf")

    # Sorted by the negated stamp for ``des`` so that equal stamps keep the tracking order.
    tasks.sort(key=stamp if order == "asc" else lambda t: -stamp(t))
    return {"tasks": [task_json(t) for t in tasks[offset : offset + limit]]}


# -- metrics ------------------------------------------------------------------------------------


def metrics_snapshot(master: Master | None, *, now: float, start_time: float) -> dict[str, float]:
    """``/metrics/snapshot``: Mesos's ``master/*`` gauges of a leading ``master``; with None (a
    master that does not lead) only ``master/elected`` (0) and ``master/uptime_secs``.

    Resources count over registered agents (connected or not); ``used`` is what tasks and
    executors hold, non-revocable; ``percent`` is used / total, 0 when there is none.
    """
    out: dict[str, float] = {
        "master/elected": 0.0 if master is None else 1.0,
        "master/uptime_secs": max(0.0, now - start_time),
    }
    if master is None:
        return out
    state = master.state
    registered = [a for a in state.agents.values() if a.phase in REGISTERED_PHASES]
    connected = sum(a.connected for a in registered)
    unreachable = sum(a.phase is AgentPhase.UNREACHABLE for a in state.agents.values())
    frameworks_connected = sum(fw.connected for fw in state.frameworks.values())
    frameworks_disconnected = len(state.frameworks) - frameworks_connected
    out.update(
        {
            "master/slaves_active": connected,
            "master/slaves_inactive": len(registered) - connected,
            "master/slaves_connected": connected,
            "master/slaves_disconnected": len(registered) - connected,
            "master/slaves_unreachable": unreachable,
            "master/frameworks_active": frameworks_connected,
            "master/frameworks_inactive": frameworks_disconnected,
            "master/frameworks_connected": frameworks_connected,
            "master/frameworks_disconnected": frameworks_disconnected,
            "master/outstanding_offers": len(state.offers),
            "master/faults": state.faults,
        }
    )
    counts = state_counts(t for fw in state.frameworks.values() for t in fw.tasks.values())
    for task_state in TASK_GAUGE_STATES:
        name = _state_name(task_state).removeprefix("TASK_").lower()
        out[f"master/tasks_{name}"] = counts.get(task_state, 0)
    ended = state.history.terminal
    for task_state in TERMINAL_COUNTER_STATES:
        name = _state_name(task_state).removeprefix("TASK_").lower()
        out[f"master/tasks_{name}"] = ended.get(task_state, 0)
    everything = _sum(a.total for a in registered)
    held = _used(h for a in registered for h in _holders(a))
    total, used = everything.non_revocable(), held.non_revocable()
    revocable_total, revocable_used = everything.revocable(), held.revocable()
    for name in _METRIC_RESOURCES:
        amount, busy = total.get(name), used.get(name)
        out[f"master/{name}_total"] = amount
        out[f"master/{name}_used"] = busy
        out[f"master/{name}_percent"] = busy / amount if amount else 0.0
        amount, busy = revocable_total.get(name), revocable_used.get(name)
        out[f"master/{name}_revocable_total"] = amount
        out[f"master/{name}_revocable_used"] = busy
        out[f"master/{name}_revocable_percent"] = busy / amount if amount else 0.0
    out.update(_MESOS_COUNTERS)
    out.update(state.history.counters)
    cycles = state.history.allocation_cycles
    out["allocator/mesos/allocation_runs"] = cycles.count
    out["allocator/recovery_paused"] = state.allocator.recovery_pause is not None  # 1 while paused
    for suffix, seconds in cycles.summary().items():
        if suffix != "count":
            out["allocator/mesos/allocation_run_ms" + (f"/{suffix}" if suffix else "")] = (
                seconds * 1000
            )
    return {key: float(value) for key, value in out.items()}


_MESOS_COUNTERS: dict[str, int] = dict.fromkeys(
    (
        "master/slave_registrations",
        "master/slave_reregistrations",
        "master/slave_removals",
        # Mesos's health checker scheduled agent shutdowns; Emporion marks an agent that
        # misses its pings unreachable instead (master/slaves_unreachable): none are scheduled.
        "master/slave_shutdowns_scheduled",
        "master/slave_shutdowns_canceled",
        "master/slave_shutdowns_completed",
        "master/valid_status_updates",
        "master/invalid_status_updates",
        "master/valid_status_update_acknowledgements",
        "master/invalid_status_update_acknowledgements",
        "master/valid_framework_to_executor_messages",
        "master/invalid_framework_to_executor_messages",
        "master/valid_executor_to_framework_messages",
        "master/invalid_executor_to_framework_messages",
    ),
    0,
)
"""Mesos's event counters, 0 until the first event (History.counters holds the counts)."""
