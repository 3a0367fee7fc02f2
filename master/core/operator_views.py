"""The read-only calls of the v1 operator API: GET_TASKS, GET_AGENTS, GET_STATE, ... as JSON.

Pure functions of a :class:`~master.core.master.Master` and a typed query (the HTTP layer,
``master.http.operator``, parses and checks the caller's JSON into these queries). Each returns
the inner object of Mesos's ``Response`` (``{"tasks": [...], ...}`` for GET_TASKS); the caller
wraps it as ``{"type": "GET_TASKS", "get_tasks": ...}``.

Paging is Emporion's addition: ``limit``/``offset``/``order_by``/``order`` and filters on
GET_TASKS, GET_AGENTS, GET_FRAMEWORKS and GET_OFFERS, with ``total`` (all matches), so that a
web page at 100,000 tasks transfers one page, never the cluster. Matching walks the candidates
once (O(n) cheap tests); only the page is turned into JSON.

Each view that shows frameworks, tasks, executors or offers takes ``visible`` (a
:class:`~master.core.operator_json.Visibility`, the reader's ``view_*`` ACLs): what it refuses
is left out, counts (``total``) included; None shows everything at no cost.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from master.core.history import History
from master.core.master import Master
from master.core.model import AgentPhase, Framework, Task
from master.core.operator_json import (
    JSON,
    REGISTERED,
    Visibility,
    agent_allocated_fraction,
    agent_v1,
    completed_framework_v1,
    executor_v1,
    framework_info_of,
    framework_tasks_shown,
    framework_v1,
    offer_v1,
    proto_json,
    task_v1,
    task_visibility,
    updated_time,
)
from master.core.roles_snapshot import roles_snapshot
from master.core.utilization import measure
from protos.v1 import mesos_pb2

__all__ = [
    "AgentQuery",
    "FrameworkQuery",
    "OfferQuery",
    "Page",
    "TaskQuery",
    "framework_visibility",
    "get_agents",
    "get_executors",
    "get_explanation",
    "get_frameworks",
    "get_offers",
    "get_quota",
    "get_roles",
    "get_state",
    "get_tasks",
    "get_utilization",
    "get_weights",
]

T = TypeVar("T")

TASK_LISTS = ("tasks", "unreachable_tasks", "completed_tasks")
"""The task lists of GET_TASKS, in the order their matches are paged."""


@dataclass(frozen=True, slots=True)
class Page:
    """Page is which part of an ordered list to return: None ``limit`` means all."""

    limit: int | None = None
    offset: int = 0
    order_by: str = ""
    descending: bool = False

    def take(self, items: list[T], keys: dict[str, Callable[[T], Any]]) -> list[T]:
        """Sort ``items`` by ``keys[order_by]`` (the given order if it names none) and slice."""
        key = keys.get(self.order_by)
        if key is not None:
            items.sort(key=key, reverse=self.descending)
        elif self.descending:
            items.reverse()
        end = None if self.limit is None else self.offset + self.limit
        return items[self.offset : end]


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """TaskQuery selects tasks (every field optional; ``query`` matches id or name)."""

    page: Page = Page()
    task_id: str | None = None
    query: str | None = None
    state: int | None = None
    framework_id: str | None = None
    agent_id: str | None = None
    include: frozenset[str] = frozenset(TASK_LISTS)
    max_statuses: int | None = None
    """Each task's newest statuses only (a table needs one; a task's page all)."""


@dataclass(frozen=True, slots=True)
class AgentQuery:
    """AgentQuery selects agents (``query`` matches id or hostname; ``phases`` by default the
    registered ones, connected or not)."""

    page: Page = Page()
    agent_id: str | None = None
    query: str | None = None
    phases: frozenset[AgentPhase] = frozenset(REGISTERED)


@dataclass(frozen=True, slots=True)
class FrameworkQuery:
    """FrameworkQuery selects frameworks (``query`` matches id or name)."""

    page: Page = Page()
    framework_id: str | None = None
    query: str | None = None
    role: str | None = None
    include_completed: bool = True


@dataclass(frozen=True, slots=True)
class OfferQuery:
    """OfferQuery selects outstanding offers."""

    page: Page = Page()
    framework_id: str | None = None
    agent_id: str | None = None


def _contains(text: str | None) -> Callable[[str], bool]:
    if text is None:
        return lambda _: True
    folded = text.casefold()
    return lambda value: folded in value.casefold()


# -- tasks --------------------------------------------------------------------------------------


def _task_name(task: Task) -> str:
    return task.info.name if task.info is not None else ""


_TASK_KEYS: dict[str, Callable[[tuple[str, Task]], Any]] = {
    "id": lambda item: item[1].task_id,
    "name": lambda item: _task_name(item[1]),
    "state": lambda item: mesos_pb2.TaskState.Name(item[1].state),  # type: ignore[arg-type]
    "updated": lambda item: updated_time(item[1]),
}


def _candidates(master: Master, query: TaskQuery) -> Iterable[tuple[str, Task]]:
    state = master.state
    fw_id = query.framework_id
    frameworks: Iterable[Framework]
    if fw_id is not None:
        fw = state.frameworks.get(fw_id)
        frameworks = [fw] if fw is not None else []
    else:
        frameworks = state.frameworks.values()
    live = "tasks" in query.include
    unreachable = "unreachable_tasks" in query.include
    if live or unreachable:
        for fw in frameworks:
            if query.task_id is not None:
                found = fw.tasks.get(query.task_id)
                tasks: Iterable[Task] = [found] if found is not None else []
            else:
                tasks = fw.tasks.values()
            for task in tasks:
                if task.state == mesos_pb2.TASK_UNREACHABLE:
                    if unreachable:
                        yield "unreachable_tasks", task
                elif live:
                    yield "tasks", task
    if "completed_tasks" in query.include:
        history = state.history
        done: Iterable[Task] = history.all_completed_tasks()
        if fw_id is not None:
            done = history.completed_tasks_of(fw_id)
        for task in done:
            yield "completed_tasks", task


_Part = tuple[Collection[Task], Callable[[Task], bool] | None]
"""Tasks in the master's order, and which of them are shown (None: all)."""


def _part(
    tasks: Collection[Task], info: mesos_pb2.FrameworkInfo | None, visible: Visibility | None
) -> list[_Part]:
    """``tasks`` of the framework of ``info`` as ``visible`` shows them (no part: none)."""
    if visible is None:
        return [(tasks, None)]
    every = framework_tasks_shown(visible, info)
    if every is None:
        assert info is not None
        return [(tasks, lambda task: visible.can_view_task(task, info))]
    return [(tasks, None)] if every else []


def _in_order(
    master: Master, query: TaskQuery, visible: Visibility | None
) -> tuple[int, Iterator[tuple[str, Task]]]:
    """How many tasks ``query`` (without filters) selects, and them in the master's order
    (reversed for ``desc``), lazily: a first page costs O(page), not O(tasks). With
    ``visible``, a hidden framework's tasks cost nothing, and only the tasks of a framework
    whose tasks must be asked about one by one are counted one by one."""
    state, history = master.state, master.state.history
    fw_id = query.framework_id
    live_parts: list[_Part] = []
    done_parts: list[_Part] = []
    if fw_id is None:
        for fw in state.frameworks.values():
            live_parts += _part(fw.tasks.values(), fw.info, visible)
        for ring_id, ring in history.completed_tasks.items():
            done_parts += _part(ring, framework_info_of(state, ring_id), visible)
        for record in history.completed_frameworks.values():
            done_parts += _part(record.tasks, record.framework.info, visible)
    else:
        one = state.frameworks.get(fw_id)
        if one is not None:
            live_parts += _part(one.tasks.values(), one.info, visible)
        info = framework_info_of(state, fw_id)
        done_parts += _part(history.completed_tasks_of(fw_id), info, visible)
    if "completed_tasks" not in query.include:
        done_parts = []
    total = sum(
        len(tasks) if shown is None else sum(map(shown, tasks))
        for tasks, shown in (*live_parts, *done_parts)
    )
    descending = query.page.descending

    def walk(parts: list[_Part], live: bool) -> Iterator[tuple[str, Task]]:
        for tasks, shown in reversed(parts) if descending else parts:
            for task in reversed(tasks) if descending else tasks:  # type: ignore[call-overload]
                if shown is None or shown(task):
                    if not live:
                        yield "completed_tasks", task
                    elif task.state == mesos_pb2.TASK_UNREACHABLE:
                        yield "unreachable_tasks", task
                    else:
                        yield "tasks", task

    live, completed = walk(live_parts, True), walk(done_parts, False)
    parts = (completed, live) if descending else (live, completed)
    return total, itertools.chain(*parts)


def get_tasks(
    master: Master, query: TaskQuery = TaskQuery(), visible: Visibility | None = None
) -> JSON:
    """GET_TASKS: live, unreachable and completed tasks matching ``query`` (one page) that
    ``visible`` shows."""
    out: JSON = {"pending_tasks": [], "orphan_tasks": []}
    for name in TASK_LISTS:
        out[name] = []
    page = query.page
    if (
        query.task_id is None
        and query.query is None
        and query.state is None
        and query.agent_id is None
        and page.order_by in ("", "launch")
        and {"tasks", "unreachable_tasks"} <= query.include
    ):
        total, ordered = _in_order(master, query, visible)
        end = None if page.limit is None else page.offset + page.limit
        for where, task in itertools.islice(ordered, page.offset, end):
            out[where].append(task_v1(task, query.max_statuses))
        out["total"] = total
        return out
    matches = _contains(query.query)
    wanted_state, agent_id, task_id = query.state, query.agent_id, query.task_id
    shown = task_visibility(master.state, visible) if visible is not None else None
    found = [
        (where, task)
        for where, task in _candidates(master, query)
        if (shown is None or shown(task))
        and (wanted_state is None or task.state == wanted_state)
        and (agent_id is None or task.agent_id == agent_id)
        and (task_id is None or task.task_id == task_id)
        and (query.query is None or matches(task.task_id) or matches(_task_name(task)))
    ]
    for where, task in page.take(found, _TASK_KEYS):
        out[where].append(task_v1(task, query.max_statuses))
    out["total"] = len(found)
    return out


# -- frameworks ---------------------------------------------------------------------------------


def get_frameworks(
    master: Master, query: FrameworkQuery = FrameworkQuery(), visible: Visibility | None = None
) -> JSON:
    """GET_FRAMEWORKS: registered frameworks, then completed ones, matching ``query`` and
    shown by ``visible``."""
    state = master.state
    matches = _contains(query.query)
    role = query.role

    def wanted(fw: Framework) -> bool:
        return (
            (visible is None or visible.can_view_framework(fw.info))
            and (query.framework_id is None or fw.framework_id == query.framework_id)
            and (role is None or role in fw.roles)
            and (query.query is None or matches(fw.framework_id) or matches(fw.info.name))
        )

    live: list[tuple[bool, Any]] = [(True, fw) for fw in state.frameworks.values() if wanted(fw)]
    done: list[tuple[bool, Any]] = []
    if query.include_completed:
        done = [
            (False, record)
            for record in state.history.completed_frameworks.values()
            if wanted(record.framework)
        ]

    def fw_of(item: tuple[bool, Any]) -> Framework:
        live_one, value = item
        return value if live_one else value.framework  # type: ignore[no-any-return]

    keys: dict[str, Callable[[tuple[bool, Any]], Any]] = {
        "id": lambda item: fw_of(item).framework_id,
        "name": lambda item: fw_of(item).info.name,
        "registered": lambda item: fw_of(item).registered_at,
    }
    everything = live + done
    out: JSON = {"frameworks": [], "completed_frameworks": [], "recovered_frameworks": []}
    for live_one, value in query.page.take(everything, keys):
        if live_one:
            # A page of frameworks leaves their offers out (GET_OFFERS pages them).
            full = query.page.limit is None
            out["frameworks"].append(framework_v1(state, value, offers=full, visible=visible))
        else:
            out["completed_frameworks"].append(completed_framework_v1(value, visible))
    out["total"] = len(live)
    out["total_completed"] = len(done)
    return out


# -- agents, executors, offers ------------------------------------------------------------------


def get_agents(master: Master, query: AgentQuery = AgentQuery()) -> JSON:
    """GET_AGENTS: agents in ``query.phases`` (one page), and the agents still to reregister
    after a master failover (``recovered_agents``, their AgentInfo only)."""
    state = master.state
    matches = _contains(query.query)
    found = [
        agent
        for agent in state.agents.values()
        if agent.phase in query.phases
        and (query.agent_id is None or agent.agent_id == query.agent_id)
        and (query.query is None or matches(agent.agent_id) or matches(agent.info.hostname))
    ]
    keys: dict[str, Callable[[Any], Any]] = {
        "id": lambda a: a.agent_id,
        "hostname": lambda a: a.info.hostname,
        "registered_time": lambda a: a.registered_at,
    }

    def fraction_of(name: str) -> Callable[[Any], Any]:
        return lambda a: agent_allocated_fraction(state, a, name)

    for name in ("cpus", "mem", "disk", "gpus"):
        keys[name] = fraction_of(name)
    recovered = [
        proto_json(a.info)
        for a in state.agents.values()
        if a.phase is AgentPhase.RECOVERING
        and AgentPhase.RECOVERING not in query.phases
        and (query.agent_id is None or a.agent_id == query.agent_id)
    ]
    return {
        "agents": [agent_v1(state, a) for a in query.page.take(found, keys)],
        "recovered_agents": recovered,
        "total": len(found),
    }


def get_executors(master: Master, visible: Visibility | None = None) -> JSON:
    """GET_EXECUTORS: every executor the master knows (that ``visible`` shows)."""
    state = master.state
    return {
        "executors": [
            executor_v1(e)
            for fw in state.frameworks.values()
            for e in fw.executors.values()
            if visible is None or visible.can_view_executor(e, fw.info)
        ],
        "orphan_executors": [],
    }


def framework_visibility(master: Master, visible: Visibility) -> Callable[[str], bool]:
    """Whether ``visible`` shows the registered or completed framework of an id (asked once
    per framework; an unknown id is not shown)."""
    state = master.state
    answers: dict[str, bool] = {}

    def can(framework_id: str) -> bool:
        answer = answers.get(framework_id)
        if answer is None:
            info = framework_info_of(state, framework_id)
            answer = answers[framework_id] = info is not None and visible.can_view_framework(info)
        return answer

    return can


def get_offers(
    master: Master, query: OfferQuery = OfferQuery(), visible: Visibility | None = None
) -> JSON:
    """GET_OFFERS (Emporion): outstanding offers matching ``query``, oldest first, to the
    frameworks ``visible`` shows."""
    state = master.state
    shown = framework_visibility(master, visible) if visible is not None else None
    found = [
        offer
        for offer in state.offers.values()
        if (shown is None or shown(offer.framework_id))
        and (query.framework_id is None or offer.framework_id == query.framework_id)
        and (query.agent_id is None or offer.agent_id == query.agent_id)
    ]
    keys: dict[str, Callable[[Any], Any]] = {
        "id": lambda o: o.offer_id,
        "created": lambda o: o.created_at,
        "agent_id": lambda o: o.agent_id,
        "framework_id": lambda o: o.framework_id,
    }
    return {
        "offers": [offer_v1(state, o) for o in query.page.take(found, keys)],
        "total": len(found),
    }


def get_state(master: Master, visible: Visibility | None = None) -> JSON:
    """GET_STATE: everything (unpaged, as Mesos): tasks, executors, frameworks, agents (the
    frameworks, tasks and executors ``visible`` shows)."""
    return {
        "get_tasks": get_tasks(master, visible=visible),
        "get_executors": get_executors(master, visible),
        "get_frameworks": get_frameworks(master, visible=visible),
        "get_agents": get_agents(master),
    }


# -- roles, weights, quota ----------------------------------------------------------------------


def get_roles(master: Master, visible: Visibility | None = None) -> JSON:
    """GET_ROLES: every known role with its weight, quota and what it holds (``/master/roles``
    with framework ids as ``{"value": ...}``, only those ``visible`` shows)."""
    roles = roles_snapshot(master)["roles"]
    shown = framework_visibility(master, visible) if visible is not None else None
    for role in roles:
        role["frameworks"] = [{"value": f} for f in role["frameworks"] if shown is None or shown(f)]
    return {"roles": roles}


def get_weights(master: Master) -> JSON:
    """GET_WEIGHTS: the roles whose weight was set."""
    weights = master.state.allocator.weights()
    return {"weight_infos": [{"role": r, "weight": weights[r]} for r in sorted(weights)]}


def _quantities_json(amounts: dict[str, int]) -> JSON:
    return {name: {"value": value / 1000} for name, value in sorted(amounts.items())}


def get_quota(master: Master) -> JSON:
    """GET_QUOTA: every role's quota (``QuotaStatus.configs``: guarantees and limits)."""
    quotas = master.state.allocator.quotas()
    return {
        "status": {
            "configs": [
                {
                    "role": role,
                    "guarantees": _quantities_json(dict(quotas[role].guarantees)),
                    "limits": _quantities_json(dict(quotas[role].limits)),
                }
                for role in sorted(quotas)
            ]
        }
    }


# -- Emporion additions -------------------------------------------------------------------------


def get_explanation(master: Master, framework_ids: Sequence[str], now: float | None = None) -> JSON:
    """GET_EXPLANATION (Emporion): why each framework got nothing or less than it could use in
    the last allocation cycle (an empty list: it got what it could use). Raises KeyError for a
    framework the allocator does not know."""
    allocator = master.state.allocator
    record = allocator.last_cycle
    explanations: list[JSON] = []
    for framework_id in framework_ids:
        explanations.extend(e.to_dict() for e in allocator.explain(framework_id, now))
    return {"cycle": record.number if record is not None else 0, "explanations": explanations}


def get_utilization(history: History, master: Master, now: float, since: float | None) -> JSON:
    """GET_UTILIZATION (Emporion): the samples after ``since``, then the figures of ``now``."""
    ring = history.utilization
    samples = [s.to_dict() for s in ring.since(since)]
    samples.append(measure(master.state, now).to_dict())
    return {
        "interval_seconds": ring.interval,
        "window_seconds": ring.window,
        "samples": samples,
    }
