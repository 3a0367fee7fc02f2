"""The UI's side of the operator API: what it calls in-process, and the rows it shows.

The UI renders from the operator API (``POST /api/v1``'s calls, run in-process through
:class:`OperatorCalls`), never from the state machine directly, so the pages and the JSON API
can never disagree and paging, filtering and sorting happen in one place, on the server. The
JSON objects are Mesos v1's with Emporion's ``summary`` blocks (``docs/http-api.md``); this
module flattens them into the small rows the templates show.

:class:`OperatorCalls` is a Protocol of the two things the UI uses of
``master.http.operator.OperatorApi`` (``call`` and ``events``), so this package depends on the
operator API's behaviour, not on its module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

__all__ = [
    "RESOURCE_NAMES",
    "AgentRow",
    "EventSubscription",
    "FrameworkRow",
    "OfferRow",
    "OperatorCalls",
    "OperatorEventsHub",
    "Page",
    "TaskRow",
    "agent_row",
    "framework_row",
    "offer_row",
    "resource_summary",
    "task_row",
]

JSON = dict[str, Any]
RESOURCE_NAMES = ("cpus", "mem", "disk", "gpus")
"""The scalar resources shown in tables, bars and charts."""
T = TypeVar("T")


class EventSubscription(Protocol):
    """One subscription to the operator event stream (dicts in Mesos v1 JSON)."""

    def __aiter__(self) -> AsyncIterator[JSON]: ...

    def close(self) -> None:
        """Stop receiving events."""


class OperatorEventsHub(Protocol):
    """The operator API's live event hub."""

    def subscribe(self, *, include_state: bool = ..., queue_limit: int = ...) -> Any:
        """A new :class:`EventSubscription` (NotLeadingError on a follower)."""


class OperatorCalls(Protocol):
    """What the UI uses of the operator API: its calls and its event hub."""

    @property
    def events(self) -> OperatorEventsHub:
        """The live event hub."""

    def call(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """Run one operator call (what ``POST /api/v1`` does) on the master's loop."""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """Page is one page of a listing: its rows and where it lies among ``total`` matches."""

    rows: list[T]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        """Where the next page starts (None on the last page)."""
        end = self.offset + self.limit
        return end if end < self.total else None

    @property
    def previous_offset(self) -> int | None:
        """Where the previous page starts (None on the first page)."""
        return max(0, self.offset - self.limit) if self.offset > 0 else None

    @property
    def last(self) -> int:
        """The position of the last row shown, counting from 1 (0 when there is none)."""
        return self.offset + len(self.rows)


def _value(obj: Mapping[str, Any] | None, key: str) -> str:
    """``obj[key]["value"]`` (Mesos's id wrapper), or ``""``."""
    if not obj:
        return ""
    inner = obj.get(key)
    return str(inner.get("value", "")) if isinstance(inner, Mapping) else ""


def _seconds(obj: Mapping[str, Any] | None, key: str) -> float | None:
    """``obj[key]`` in seconds: a Mesos TimeInfo ``{"nanoseconds": n}`` or a number."""
    if not obj:
        return None
    value = obj.get(key)
    if isinstance(value, Mapping):
        return int(value.get("nanoseconds", 0)) / 1e9
    if isinstance(value, int | float):
        return float(value)
    return None


def resource_summary(resources: list[Mapping[str, Any]] | None) -> dict[str, float]:
    """The scalar totals of a Mesos v1 resource list (cpus, mem, disk, gpus always present)."""
    out = dict.fromkeys(RESOURCE_NAMES, 0.0)
    for resource in resources or ():
        if resource.get("type", "SCALAR") == "SCALAR" and "scalar" in resource:
            name = str(resource.get("name", ""))
            out[name] = out.get(name, 0.0) + float(resource["scalar"].get("value", 0.0))
    return out


def _amounts(summary: Mapping[str, Any] | None) -> dict[str, float]:
    summary = summary or {}
    return {name: float(summary.get(name, 0.0)) for name in RESOURCE_NAMES}


@dataclass(frozen=True, slots=True)
class AgentRow:
    """AgentRow is what the agents table and an agent's page header show of one agent."""

    agent_id: str
    hostname: str
    port: int
    phase: str
    registered_time: float | None
    total: dict[str, float]
    allocated: dict[str, float]
    offered: dict[str, float]
    tasks: int
    attributes: dict[str, Any]
    capabilities: list[str]

    def fraction(self, name: str, of: str = "allocated") -> float:
        """Allocated (or offered) / total of resource ``name``; 0 without any."""
        total = self.total.get(name, 0.0)
        part = (self.allocated if of == "allocated" else self.offered).get(name, 0.0)
        return min(1.0, part / total) if total else 0.0


def agent_row(agent: Mapping[str, Any]) -> AgentRow:
    """The row of a GET_AGENTS agent."""
    info = agent.get("agent_info", {})
    summary = agent.get("summary", {})
    return AgentRow(
        agent_id=_value(info, "id"),
        hostname=str(info.get("hostname", "")),
        port=int(info.get("port", 0)),
        phase=str(summary.get("phase", "connected" if agent.get("active") else "disconnected")),
        registered_time=_seconds(agent, "registered_time"),
        total=_amounts(summary.get("total")),
        allocated=_amounts(summary.get("allocated")),
        offered=_amounts(summary.get("offered")),
        tasks=int(summary.get("tasks", 0)),
        attributes=dict(summary.get("attributes", {})),
        capabilities=sorted(
            str(c.get("type", "")) if isinstance(c, Mapping) else str(c)
            for c in agent.get("capabilities", [])
        ),
    )


@dataclass(frozen=True, slots=True)
class FrameworkRow:
    """FrameworkRow is what the frameworks table and a framework's page header show."""

    framework_id: str
    name: str
    user: str
    principal: str
    roles: list[str]
    phase: str
    active: bool
    completed: bool
    registered_time: float | None
    unregistered_time: float | None
    failover_timeout: float
    failover_deadline: float | None
    suppressed_roles: list[str]
    webui_url: str
    hostname: str
    capabilities: list[str]
    allocated: dict[str, float]
    offered: dict[str, float]
    task_counts: dict[str, int]
    completed_tasks: int
    offers: int
    removed_time: float | None
    removal_reason: str

    @property
    def tasks(self) -> int:
        """The live tasks the master tracks for it."""
        return sum(self.task_counts.values())


def framework_row(framework: Mapping[str, Any], *, completed: bool = False) -> FrameworkRow:
    """The row of a GET_FRAMEWORKS framework (``completed``: from ``completed_frameworks``)."""
    info = framework.get("framework_info", {})
    summary = framework.get("summary", {})
    roles = summary.get("roles") or info.get("roles") or [info.get("role", "*")]
    return FrameworkRow(
        framework_id=_value(info, "id"),
        name=str(info.get("name", "")),
        user=str(info.get("user", "")),
        principal=str(info.get("principal", "")),
        roles=[str(r) for r in roles],
        phase=str(summary.get("phase", "completed" if completed else "")),
        active=bool(framework.get("active", False)),
        completed=completed,
        registered_time=_seconds(framework, "registered_time"),
        unregistered_time=_seconds(framework, "unregistered_time"),
        failover_timeout=float(info.get("failover_timeout", 0.0)),
        failover_deadline=_seconds(summary, "failover_deadline"),
        suppressed_roles=[str(r) for r in summary.get("suppressed_roles", [])],
        webui_url=str(summary.get("webui_url") or info.get("webui_url", "")),
        hostname=str(info.get("hostname", "")),
        capabilities=sorted(str(c.get("type", "")) for c in info.get("capabilities", [])),
        allocated=_amounts(summary.get("allocated")),
        offered=_amounts(summary.get("offered")),
        task_counts={str(k): int(v) for k, v in summary.get("tasks", {}).items() if v},
        completed_tasks=int(summary.get("completed_tasks", 0)),
        offers=len(framework.get("offers", [])),
        removed_time=_seconds(summary, "removed_time"),
        removal_reason=str(summary.get("removal_reason", "")),
    )


@dataclass(frozen=True, slots=True)
class TaskRow:
    """TaskRow is what the tasks table shows of one task."""

    task_id: str
    name: str
    framework_id: str
    agent_id: str
    executor_id: str
    state: str
    role: str
    updated: float | None
    resources: dict[str, float]
    kind: str
    """Which list it came from: ``tasks``, ``unreachable_tasks`` or ``completed_tasks``."""
    last_message: str


def task_row(task: Mapping[str, Any], kind: str = "tasks") -> TaskRow:
    """The row of a GET_TASKS task."""
    statuses = task.get("statuses") or []
    newest = statuses[-1] if statuses else {}
    message = ""
    for status in reversed(statuses):
        if status.get("message"):
            message = str(status["message"])
            break
    return TaskRow(
        task_id=_value(task, "task_id"),
        name=str(task.get("name", "")),
        framework_id=_value(task, "framework_id"),
        agent_id=_value(task, "agent_id"),
        executor_id=_value(task, "executor_id"),
        state=str(task.get("state", "")),
        role=str(task.get("role", "")),
        updated=_seconds(newest, "timestamp"),
        resources=resource_summary(task.get("resources")),
        kind=kind,
        last_message=message,
    )


@dataclass(frozen=True, slots=True)
class OfferRow:
    """OfferRow is one outstanding offer as the offers table shows it."""

    offer_id: str
    framework_id: str
    agent_id: str
    hostname: str
    role: str
    resources: dict[str, float]
    created_time: float | None
    expires_time: float | None


def offer_row(offer: Mapping[str, Any]) -> OfferRow:
    """The row of a GET_OFFERS offer."""
    summary = offer.get("summary", {})
    return OfferRow(
        offer_id=_value(offer, "id"),
        framework_id=_value(offer, "framework_id"),
        agent_id=_value(offer, "agent_id"),
        hostname=str(offer.get("hostname", "")),
        role=str(offer.get("allocation_info", {}).get("role", "")),
        resources=_amounts(summary.get("resources"))
        if "resources" in summary
        else resource_summary(offer.get("resources")),
        created_time=_seconds(summary, "created_time"),
        expires_time=_seconds(summary, "expires_time"),
    )
