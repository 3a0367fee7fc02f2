"""The objects of Mesos's v1 operator API as JSON: Task, TaskStatus, Framework, Agent, Offer.

``POST /api/v1`` (``master.http.operator``) and its event stream answer in the JSON form of
Mesos's ``mesos.v1.master.Response`` and ``Event`` messages: snake_case fields, ids as
``{"value": ...}``, enums by name, times as ``{"nanoseconds": ...}``, resources as lists of
``mesos.v1.Resource``. The hot objects (tasks, statuses, resources) are built by hand, which is
several times cheaper than ``json_format``: a TASK_UPDATED event is built for every status
update while someone subscribes. Payloads the master only forwards (FrameworkInfo, AgentInfo,
ExecutorInfo, a TaskInfo's command and container) go through ``json_format``.

Each object carries Emporion's ``summary`` block (documented as an addition in
``docs/http-api.md``): plain numbers for the web UI's bars and tables.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from google.protobuf import json_format
from google.protobuf.message import Message

from master.core.history import CompletedFramework, StatusEntry
from master.core.model import Agent, AgentPhase, Executor, Framework, Offer, Task
from master.core.state import MasterState
from protos.resources import Resources
from protos.v1 import mesos_pb2

__all__ = [
    "JSON",
    "REGISTERED",
    "SUMMARY_NAMES",
    "Visibility",
    "agent_allocated_fraction",
    "agent_busy",
    "agent_v1",
    "attributes_json",
    "completed_framework_v1",
    "executor_v1",
    "framework_info_of",
    "framework_tasks_shown",
    "framework_v1",
    "nanos",
    "offer_v1",
    "proto_json",
    "resource_list",
    "status_v1",
    "summary",
    "task_status_v1",
    "task_v1",
    "task_visibility",
    "updated_time",
]

JSON = dict[str, Any]
"""A JSON object."""

SUMMARY_NAMES = ("cpus", "mem", "disk", "gpus")
"""The resources of every ``summary`` block."""

# Enum names by number, looked up in a dict: ``EnumTypeWrapper.Name`` costs a Python call each,
# and a TASK_UPDATED event names three of them.
_STATE_NAMES = {number: name for name, number in mesos_pb2.TaskState.items()}
_SOURCE_NAMES = {number: name for name, number in mesos_pb2.TaskStatus.Source.items()}
_REASON_NAMES = {number: name for name, number in mesos_pb2.TaskStatus.Reason.items()}
_DEFAULT_STATE = _STATE_NAMES[mesos_pb2.TaskStatus().state]
_DEFAULT_SOURCE = _SOURCE_NAMES[mesos_pb2.TaskStatus().source]
_state_name = _STATE_NAMES.__getitem__
_source_name = _SOURCE_NAMES.__getitem__
_reason_name = _REASON_NAMES.__getitem__
_TASK_INFO_EXTRAS = ("command", "container", "discovery", "health_check", "kill_policy", "labels")
_DYNAMIC = "DYNAMIC"


class Visibility(Protocol):
    """Which frameworks, tasks and executors one reader may see (the ``view_frameworks`` and
    ``view_tasks`` ACLs: :mod:`master.auth.view` builds one per principal). Every view and
    snapshot takes one, or None to show everything; what it refuses is left out, as Mesos
    leaves out what its ObjectApprovers refuse (not an error)."""

    def can_view_framework(self, info: mesos_pb2.FrameworkInfo) -> bool:
        """Whether the framework of ``info`` may be shown."""
        ...

    def can_view_task(self, task: Task, info: mesos_pb2.FrameworkInfo) -> bool:
        """Whether ``task`` (of the framework of ``info``) may be shown."""
        ...

    def shows_every_task_of(self, info: mesos_pb2.FrameworkInfo) -> bool:
        """Whether every task of the framework of ``info`` may be shown (no check per task)."""
        ...

    def can_view_executor(self, executor: Executor, info: mesos_pb2.FrameworkInfo) -> bool:
        """Whether ``executor`` (of the framework of ``info``) may be shown."""
        ...


def framework_info_of(state: MasterState, framework_id: str) -> mesos_pb2.FrameworkInfo | None:
    """The FrameworkInfo of a registered or completed framework (None: neither)."""
    fw = state.frameworks.get(framework_id)
    if fw is not None:
        return fw.info
    record = state.history.completed_frameworks.get(framework_id)
    return record.framework.info if record is not None else None


def framework_tasks_shown(visible: Visibility, info: mesos_pb2.FrameworkInfo | None) -> bool | None:
    """Whether ``visible`` shows every task of a framework (True), none (False: the framework
    is hidden or unknown), or must be asked about each (None)."""
    if info is None or not visible.can_view_framework(info):
        return False
    return True if visible.shows_every_task_of(info) else None


def task_visibility(state: MasterState, visible: Visibility) -> Callable[[Task], bool]:
    """Whether ``visible`` shows a task, its framework looked up once per framework (a task
    of a framework the master no longer knows is not shown): a framework's tasks are all
    shown, all hidden, or (None) asked about one by one."""
    frameworks: dict[str, tuple[bool | None, mesos_pb2.FrameworkInfo | None]] = {}

    def can(task: Task) -> bool:
        framework_id = task.framework_id
        try:
            every, info = frameworks[framework_id]
        except KeyError:
            info = framework_info_of(state, framework_id)
            every = framework_tasks_shown(visible, info)
            frameworks[framework_id] = (every, info)
        if every is not None:
            return every
        assert info is not None
        return visible.can_view_task(task, info)

    return can


def proto_json(message: Message) -> JSON:
    """A protobuf message in Mesos's JSON form (field names as in the .proto)."""
    result: JSON = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return result


def nanos(seconds: float) -> JSON:
    """A ``mesos.v1.TimeInfo``."""
    return {"nanoseconds": int(seconds * 1e9)}


def _id(value: str) -> JSON:
    return {"value": value}


_ITEMS_CACHE: dict[Resources, list[tuple[Any, Any]]] = {}
_ITEMS_CACHE_SIZE = 4096
"""Resources in canonical order, by value: tasks mostly share a few shapes, and the ordering
(a sort per call) is most of what turning a task into JSON costs. Cleared when full."""


def _items(resources: Resources) -> list[tuple[Any, Any]]:
    items = _ITEMS_CACHE.get(resources)
    if items is None:
        if len(_ITEMS_CACHE) >= _ITEMS_CACHE_SIZE:
            _ITEMS_CACHE.clear()
        items = _ITEMS_CACHE[resources] = list(resources.items())
    return items


def resource_list(resources: Resources, allocation_role: str | None = None) -> list[JSON]:
    """``resources`` as a list of ``mesos.v1.Resource`` (one per name and reservation), fresh
    dicts each call."""
    out: list[JSON] = []
    for key, value in _items(resources):
        entry: JSON = {"name": key.name}
        if isinstance(value, float):
            entry["type"] = "SCALAR"
            entry["scalar"] = {"value": value}
        elif isinstance(value, tuple):
            entry["type"] = "RANGES"
            entry["ranges"] = {"range": [{"begin": lo, "end": hi} for lo, hi in value]}
        else:
            entry["type"] = "SET"
            entry["set"] = {"item": sorted(value)}
        if key.reservations:
            reservations = []
            for r in key.reservations:
                item: JSON = {"type": "STATIC" if r.type == "static" else _DYNAMIC, "role": r.role}
                if r.principal is not None:
                    item["principal"] = r.principal
                reservations.append(item)
            entry["reservations"] = reservations
        if key.revocable:
            entry["revocable"] = {}
        if allocation_role is not None:
            entry["allocation_info"] = {"role": allocation_role}
        out.append(entry)
    return out


def summary(resources: Resources) -> dict[str, float]:
    """cpus, mem, disk and gpus of ``resources`` (zeros included)."""
    amounts = resources.scalar_thousandths()
    return {name: amounts.get(name, 0) / 1000 for name in SUMMARY_NAMES}


# -- tasks --------------------------------------------------------------------------------------


def status_v1(task: Task, entry: StatusEntry) -> JSON:
    """One of a task's kept statuses as a ``mesos.v1.TaskStatus``."""
    out: JSON = {
        "task_id": {"value": task.task_id},
        "state": _state_name(entry.state),  # type: ignore[arg-type]
        "source": _source_name(entry.source),  # type: ignore[arg-type]
        "timestamp": entry.timestamp,
    }
    if entry.reason is not None:
        out["reason"] = _reason_name(entry.reason)  # type: ignore[arg-type]
    if entry.message:
        out["message"] = entry.message
    if task.agent_id:
        out["agent_id"] = {"value": task.agent_id}
    if task.executor_id is not None:
        out["executor_id"] = {"value": task.executor_id}
    if entry.healthy is not None:
        out["healthy"] = entry.healthy
    return out


def task_status_v1(status: mesos_pb2.TaskStatus) -> JSON:
    """A TaskStatus as it came (TASK_UPDATED events): without ``data``, uuid in base64.

    Read in one pass over the fields that are set (one call into protobuf instead of one per
    field): this is built for every status update while someone subscribes.
    """
    out: JSON = {"task_id": {"value": ""}, "state": _DEFAULT_STATE, "source": _DEFAULT_SOURCE}
    for field, value in status.ListFields():
        name = field.name
        if name in {"task_id", "agent_id", "executor_id"}:
            out[name] = {"value": value.value}
        elif name == "state":
            out["state"] = _STATE_NAMES.get(value, str(value))
        elif name == "source":
            out["source"] = _SOURCE_NAMES.get(value, str(value))
        elif name == "reason":
            out["reason"] = _REASON_NAMES.get(value, str(value))
        elif name in {"timestamp", "healthy"}:
            out[name] = value
        elif name == "message":
            if value:
                out["message"] = value
        elif name == "uuid":
            out["uuid"] = base64.b64encode(value).decode()
        elif name == "unreachable_time":
            out["unreachable_time"] = {"nanoseconds": value.nanoseconds}
    out.setdefault("timestamp", 0.0)
    return out


def task_v1(task: Task, max_statuses: int | None = None) -> JSON:
    """A task as a ``mesos.v1.Task``: its statuses oldest first (only the newest
    ``max_statuses`` if given), TaskInfo's payloads copied."""
    out: JSON = {
        "name": task.info.name if task.info is not None else "",
        "task_id": {"value": task.task_id},
        "framework_id": {"value": task.framework_id},
        "agent_id": {"value": task.agent_id},
        "state": _state_name(task.state),  # type: ignore[arg-type]
        "resources": resource_list(task.resources),
        "statuses": [
            status_v1(task, entry)
            for entry in (
                task.statuses
                if max_statuses is None
                else task.statuses[len(task.statuses) - max_statuses :]
            )
        ],
    }
    if task.executor_id is not None:
        out["executor_id"] = {"value": task.executor_id}
    if task.role:
        out["role"] = task.role
    if task.status_update_state is not None:
        out["status_update_state"] = _state_name(task.status_update_state)  # type: ignore[arg-type]
    if task.status_update_uuid is not None:
        out["status_update_uuid"] = base64.b64encode(task.status_update_uuid).decode()
    info = task.info
    if info is not None:
        for name in _TASK_INFO_EXTRAS:
            if info.HasField(name):  # type: ignore[arg-type]
                value = getattr(info, name)
                out[name] = _command_json(value) if name == "command" else proto_json(value)
    return out


_PLAIN_COMMAND = frozenset({"value", "shell", "user", "arguments"})


def _command_json(command: mesos_pb2.CommandInfo) -> JSON:
    """A CommandInfo as JSON; the usual one (value, shell, user, arguments) built by hand,
    several times cheaper than ``json_format`` (a TASK_ADDED event is built per launch)."""
    fields = command.ListFields()
    if any(descriptor.name not in _PLAIN_COMMAND for descriptor, _ in fields):
        return proto_json(command)
    return {
        descriptor.name: list(v) if descriptor.name == "arguments" else v
        for descriptor, v in fields
    }


def updated_time(task: Task) -> float:
    """When ``task`` last changed (its newest status; -inf if it has none)."""
    if task.statuses:
        return task.statuses[-1].timestamp
    status = task.latest_status
    return status.timestamp if status is not None else float("-inf")


# -- frameworks ---------------------------------------------------------------------------------


def _counts(tasks: Iterable[Task]) -> dict[str, int]:
    counts: dict[int, int] = {}
    for task in tasks:
        counts[task.state] = counts.get(task.state, 0) + 1
    return {_state_name(s): n for s, n in sorted(counts.items())}  # type: ignore[arg-type]


def _holding(holders: Iterable[Task | Executor]) -> Resources:
    total = Resources.EMPTY
    for holder in holders:
        if holder.allocated:
            total = total + holder.resources
    return total


def _offered(state: MasterState, offer_ids: Iterable[str]) -> Resources:
    total = Resources.EMPTY
    for offer_id in offer_ids:
        offer = state.offers.get(offer_id)
        if offer is not None:
            total = total + offer.resources
    return total


def _framework_allocated(state: MasterState, fw: Framework, offered: Resources) -> Resources:
    """What ``fw``'s tasks and executors hold: from the allocator, O(agents it holds on), not
    O(its tasks); from the tasks if the allocator does not know it."""
    try:
        held = state.allocator.allocation_of(fw.framework_id)
    except KeyError:
        return _holding([*fw.tasks.values(), *fw.executors.values()])
    total = Resources.EMPTY
    for by_agent in held.values():
        for resources in by_agent.values():
            total = total + resources
    return total - offered


def framework_v1(
    state: MasterState, fw: Framework, *, offers: bool = True, visible: Visibility | None = None
) -> JSON:
    """A registered framework as ``GetFrameworks.Framework``, plus Emporion's ``summary``.

    Without ``offers`` its ``offers`` list is left empty (``summary.offers`` still counts them):
    a framework may hold an offer from every agent, too many for a page of frameworks. With
    ``visible``, the summary's task counts count only the tasks it shows.
    """
    tasks: Iterable[Task] = fw.tasks.values()
    done = state.history.completed_tasks_of(fw.framework_id)
    completed = len(done)
    if visible is not None and not visible.shows_every_task_of(fw.info):
        tasks = [t for t in tasks if visible.can_view_task(t, fw.info)]
        completed = sum(visible.can_view_task(t, fw.info) for t in done)
    offered = _offered(state, sorted(fw.offers))
    allocated = _framework_allocated(state, fw, offered)
    out: JSON = {
        "framework_info": proto_json(fw.info),
        "active": fw.connected,
        "connected": fw.connected,
        "recovered": False,
        "registered_time": nanos(fw.registered_at),
        "offers": [offer_v1(state, o) for o in map(state.offers.get, sorted(fw.offers)) if o]
        if offers
        else [],
        "inverse_offers": [],
        "allocated_resources": resource_list(allocated),
        "offered_resources": resource_list(offered),
        "summary": {
            "phase": fw.phase.value,
            "failover_deadline": fw.failover_deadline,
            "suppressed_roles": sorted(fw.suppressed_roles),
            "roles": sorted(fw.roles),
            "allocated": summary(allocated),
            "offered": summary(offered),
            "tasks": _counts(tasks),
            "completed_tasks": completed,
            "offers": len(fw.offers),
            "webui_url": fw.info.webui_url,
        },
    }
    if fw.disconnected_at is not None:
        out["unregistered_time"] = nanos(fw.disconnected_at)
    return out


def completed_framework_v1(record: CompletedFramework, visible: Visibility | None = None) -> JSON:
    """A torn-down framework as ``GetFrameworks.Framework``, plus ``summary`` (counting the
    completed tasks ``visible`` shows)."""
    fw = record.framework
    completed = len(record.tasks)
    if visible is not None and not visible.shows_every_task_of(fw.info):
        completed = sum(visible.can_view_task(t, fw.info) for t in record.tasks)
    empty = summary(Resources.EMPTY)
    return {
        "framework_info": proto_json(fw.info),
        "active": False,
        "connected": False,
        "recovered": False,
        "registered_time": nanos(fw.registered_at),
        "unregistered_time": nanos(record.removed_at),
        "offers": [],
        "inverse_offers": [],
        "allocated_resources": [],
        "offered_resources": [],
        "summary": {
            "phase": "removed",
            "failover_deadline": None,
            "suppressed_roles": [],
            "roles": sorted(fw.roles),
            "allocated": empty,
            "offered": dict(empty),
            "tasks": {},
            "completed_tasks": completed,
            "offers": 0,
            "webui_url": fw.info.webui_url,
            "removed_time": record.removed_at,
            "removal_reason": record.reason,
        },
    }


# -- agents, offers, executors ------------------------------------------------------------------


def attributes_json(attributes: Iterable[mesos_pb2.Attribute]) -> JSON:
    """Mesos's attribute summary: name -> number (scalar) or string (text, ranges, set).

    Shared by the v1 operator API and the v0 snapshots, which print attributes the same way.
    """
    out: JSON = {}
    for attribute in attributes:
        if attribute.HasField("scalar"):
            out[attribute.name] = attribute.scalar.value
        elif attribute.HasField("ranges"):
            parts = ", ".join(f"{r.begin}-{r.end}" for r in attribute.ranges.range)
            out[attribute.name] = f"[{parts}]"
        elif attribute.HasField("set"):
            out[attribute.name] = "{" + ", ".join(attribute.set.item) + "}"
        else:
            out[attribute.name] = attribute.text.value
    return out


def agent_busy(state: MasterState, agent: Agent) -> Resources:
    """What is allocated or offered on ``agent`` (its total less the allocator's free part)."""
    if not agent.in_allocator:
        return _holding([*agent.tasks.values(), *agent.executors.values()])
    return agent.total - state.allocator.agent_free(agent.agent_id)


def agent_v1(state: MasterState, agent: Agent) -> JSON:
    """An agent as ``GetAgents.Agent``, plus ``summary`` (O(its offers), not O(its tasks))."""
    offered = _offered(state, sorted(agent.offers))
    allocated = agent_busy(state, agent) - offered
    info = agent.info
    out: JSON = {
        "agent_info": proto_json(info),
        "active": agent.connected,
        "deactivated": False,
        "pid": f"agent@{info.hostname}:{info.port}",
        "registered_time": nanos(agent.registered_at),
        "total_resources": resource_list(agent.total),
        "allocated_resources": resource_list(allocated),
        "offered_resources": resource_list(offered),
        "capabilities": [{"type": c} for c in sorted(agent.capabilities)],
        "summary": {
            "phase": agent.phase.value,
            "tasks": len(agent.tasks),
            "total": summary(agent.total),
            "allocated": summary(allocated),
            "offered": summary(offered),
            "attributes": attributes_json(info.attributes),
        },
    }
    if agent.unreachable_at is not None:
        out["summary"]["unreachable_time"] = agent.unreachable_at
    return out


def agent_allocated_fraction(state: MasterState, agent: Agent, name: str) -> float:
    """How much of resource ``name`` of ``agent`` is allocated or offered, 0 to 1 (a sort key)."""
    total = agent.total.get(name)
    if not total:
        return 0.0
    return agent_busy(state, agent).get(name) / total


def offer_v1(state: MasterState, offer: Offer) -> JSON:
    """An outstanding offer as ``mesos.v1.Offer``, plus ``summary``."""
    agent = state.agents.get(offer.agent_id)
    return {
        "id": {"value": offer.offer_id},
        "framework_id": {"value": offer.framework_id},
        "agent_id": {"value": offer.agent_id},
        "hostname": agent.info.hostname if agent is not None else "",
        "allocation_info": {"role": offer.role},
        "resources": resource_list(offer.resources, offer.role),
        "summary": {
            "created_time": offer.created_at,
            "expires_time": offer.expires_at,
            "resources": summary(offer.resources),
        },
    }


def executor_v1(executor: Executor) -> JSON:
    """An executor as ``GetExecutors.Executor``."""
    if executor.info is not None:
        info = proto_json(executor.info)
    else:
        info = {
            "executor_id": _id(executor.executor_id),
            "framework_id": _id(executor.framework_id),
            "resources": resource_list(executor.resources),
        }
    return {"executor_info": info, "agent_id": _id(executor.agent_id)}


REGISTERED = (AgentPhase.CONNECTED, AgentPhase.DISCONNECTED)
"""Agents ``GET_AGENTS`` lists as agents (the others are recovered or unreachable)."""
