"""The UI's pages: overview, agents, frameworks, tasks, roles and offers (leader-only).

Each list page is served whole on a plain request and as its table alone when htmx asks
(``HX-Request``), so filtering, sorting and paging swap one table without reloading the page.
Everything comes from operator calls (:mod:`master.http.ui.api`) with server-side paging: no
page carries more than one page of rows, whatever the cluster's size; the overview's gauges
come from :mod:`master.http.ui.gauges`, as the live stream's do.
"""

# No ``from __future__ import annotations``: FastAPI must see the ``Depends`` of a local.

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from master.core import Master
from master.http.leadership import leading
from master.http.operator.calls import ANY_PHASE
from master.http.view import MasterView
from protos.v1 import mesos_pb2

from .api import (
    RESOURCE_NAMES,
    OperatorCalls,
    Page,
    agent_row,
    framework_row,
    offer_row,
    task_row,
)
from .calls import UiCallError, call, ui_route_class
from .gauges import gauges, herd_counts, live_task_counts
from .render import Renderer

__all__ = ["PAGE_SIZES", "pages_router"]

PAGE_SIZES = (25, 50, 100, 250)
"""The page sizes offered; any limit from 1 to 500 is accepted."""
MAX_LIMIT = 500
TASK_LISTS = ("tasks", "unreachable_tasks", "completed_tasks")
TASK_STATES: tuple[str, ...] = tuple(mesos_pb2.TaskState.keys())
"""Task state names in the proto's order, read from the enum so the filter cannot drift from it."""
AGENT_SORTS = ("hostname", "id", "registered_time", "cpus", "mem", "disk", "gpus")
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0)]


def _partial(request: Request) -> bool:
    """Whether htmx asks for the table alone (not when it boosts a whole page, nor when it
    restores one from the browser's history, going back to a filtered view)."""
    headers = request.headers
    return (
        headers.get("HX-Request") == "true"
        and "HX-Boosted" not in headers
        and "HX-History-Restore-Request" not in headers
    )


def pages_router(
    view: MasterView, operator: OperatorCalls, renderer: Renderer, clock: Callable[[], float]
) -> APIRouter:
    """The pages at ``/`` and under ``/ui/``."""
    router = APIRouter(include_in_schema=False, route_class=ui_route_class(renderer))
    lead = Annotated[Master, Depends(leading(view))]

    def frame(page: str, title: str) -> dict[str, Any]:
        master = call(operator, {"type": "GET_MASTER"})["get_master"]
        info = master.get("master_info", {})
        return {
            "page": page,
            "page_title": title,
            "leader": {
                "pid": info.get("pid") or f"master@{info.get('hostname', '')}:{info.get('port')}",
                "master_id": view.master_id,
                "version": view.version,
                "elected_time": view.elected_time,
                "http": view.leader_http_address() or "",
            },
            "now": clock(),
        }

    @router.get("/", response_class=HTMLResponse)
    async def overview(master: lead) -> HTMLResponse:
        utilization = call(operator, {"type": "GET_UTILIZATION", "get_utilization": {}})[
            "get_utilization"
        ]
        # The gauges the live stream keeps up to date, counted here (GET_METRICS would also sum
        # every agent's and task's resources: a tenth of a second per 20,000 tasks).
        metrics = gauges(master, live_task_counts(master), herd_counts(master))
        agents = call(
            operator,
            {"type": "GET_AGENTS", "get_agents": {"limit": 10, "order_by": "hostname"}},
        )["get_agents"]
        frameworks = call(
            operator,
            {"type": "GET_FRAMEWORKS", "get_frameworks": {"limit": 20, "order_by": "name"}},
        )["get_frameworks"]
        samples = utilization.get("samples", [])
        newest = samples[-1] if samples else {"total": {}, "allocated": {}, "offered": {}}
        return renderer.page(
            "overview.html",
            **frame("overview", "Overview"),
            metrics=metrics,
            task_states=TASK_STATES,
            now_sample=newest,
            samples=samples,
            window=utilization.get("window_seconds", 3600.0),
            agents=Page(
                [agent_row(a) for a in agents.get("agents", [])],
                int(agents.get("total", 0)),
                0,
                10,
            ),
            frameworks=Page(
                [framework_row(f) for f in frameworks.get("frameworks", [])],
                int(frameworks.get("total", 0)),
                0,
                20,
            ),
        )

    @router.get("/ui/agents", response_class=HTMLResponse)
    async def agents(
        request: Request,
        _: lead,
        *,
        q: str = "",
        state: str = "",
        sort: str = "hostname",
        order: str = "asc",
        offset: Offset = 0,
        limit: Limit = 50,
    ) -> HTMLResponse:
        if sort not in AGENT_SORTS:
            raise UiCallError(400, f"query parameter 'sort' must be one of {AGENT_SORTS}")
        paging: dict[str, Any] = {
            "limit": limit,
            "offset": offset,
            "order_by": sort,
            "order": "desc" if order == "desc" else "asc",
        }
        if q:
            paging["query"] = q
        # "any state" is every agent the master knows, the unreachable ones included.
        paging["phase"] = state or ANY_PHASE
        found = call(operator, {"type": "GET_AGENTS", "get_agents": paging})["get_agents"]
        page = Page(
            [agent_row(a) for a in found.get("agents", [])],
            int(found.get("total", 0)),
            offset,
            limit,
        )
        params = {"q": q, "state": state, "sort": sort, "order": order, "limit": limit}
        context: dict[str, Any] = {"agents": page, "params": params, "sorts": AGENT_SORTS}
        if _partial(request):
            return renderer.page("parts/agents_table.html", **context)
        return renderer.page("agents.html", **frame("agents", "Agents"), **context)

    @router.get("/ui/agents/{agent_id}", response_class=HTMLResponse)
    async def agent(
        request: Request, agent_id: str, _: lead, offset: Offset = 0, limit: Limit = 50
    ) -> HTMLResponse:
        found = call(
            operator, {"type": "GET_AGENTS", "get_agents": {"agent_id": agent_id, "limit": 1}}
        )["get_agents"]
        if not found.get("agents"):
            raise UiCallError(404, f"no agent {agent_id!r} is registered")
        row = agent_row(found["agents"][0])
        tasks = _tasks(operator, {"agent_id": agent_id}, offset, limit, "launch")
        context: dict[str, Any] = {
            "tasks": tasks,
            "params": {"limit": limit},
            "tasks_base": f"/ui/agents/{quote(agent_id, safe='')}",
        }
        if _partial(request):
            return renderer.page("parts/tasks_table.html", **context)
        return renderer.page(
            "agent.html", **frame("agents", f"Agent {row.hostname}"), agent=row, **context
        )

    @router.get("/ui/frameworks", response_class=HTMLResponse)
    async def frameworks(
        request: Request,
        _: lead,
        q: str = "",
        completed: bool = True,
        offset: Offset = 0,
        limit: Limit = 100,
    ) -> HTMLResponse:
        paging: dict[str, Any] = {
            "limit": limit,
            "offset": offset,
            "order_by": "name",
            "include_completed": completed,
        }
        if q:
            paging["query"] = q
        found = call(operator, {"type": "GET_FRAMEWORKS", "get_frameworks": paging})[
            "get_frameworks"
        ]
        rows = [framework_row(f) for f in found.get("frameworks", [])]
        rows += [framework_row(f, completed=True) for f in found.get("completed_frameworks", [])]
        total = int(found.get("total", 0)) + int(found.get("total_completed", 0))
        context: dict[str, Any] = {
            "frameworks": Page(rows, total, offset, limit),
            "params": {"q": q, "completed": completed, "limit": limit},
        }
        if _partial(request):
            return renderer.page("parts/frameworks_table.html", **context)
        return renderer.page("frameworks.html", **frame("frameworks", "Frameworks"), **context)

    @router.get("/ui/frameworks/{framework_id}", response_class=HTMLResponse)
    async def framework(
        request: Request, framework_id: str, _: lead, offset: Offset = 0, limit: Limit = 50
    ) -> HTMLResponse:
        tasks = _tasks(operator, {"framework_id": framework_id}, offset, limit, "launch")
        context: dict[str, Any] = {
            "tasks": tasks,
            "params": {"limit": limit},
            "tasks_base": f"/ui/frameworks/{quote(framework_id, safe='')}",
        }
        if _partial(request):
            return renderer.page("parts/tasks_table.html", **context)
        found = call(
            operator,
            {
                "type": "GET_FRAMEWORKS",
                "get_frameworks": {"framework_id": framework_id, "limit": 1},
            },
        )["get_frameworks"]
        if found.get("frameworks"):
            row = framework_row(found["frameworks"][0])
            explanation = call(
                operator,
                {
                    "type": "GET_EXPLANATION",
                    "get_explanation": {"framework_id": {"value": framework_id}},
                },
            )["get_explanation"]
        elif found.get("completed_frameworks"):
            row = framework_row(found["completed_frameworks"][0], completed=True)
            explanation = None
        else:
            raise UiCallError(404, f"no framework {framework_id!r} is known")
        offers = call(
            operator,
            {"type": "GET_OFFERS", "get_offers": {"framework_id": framework_id, "limit": 50}},
        )["get_offers"]
        return renderer.page(
            "framework.html",
            **frame("frameworks", f"Framework {row.name}"),
            framework=row,
            explanation=explanation,
            offers=Page(
                [offer_row(o) for o in offers.get("offers", [])],
                int(offers.get("total", 0)),
                0,
                50,
            ),
            **context,
        )

    @router.get("/ui/tasks", response_class=HTMLResponse)
    async def tasks(
        request: Request,
        _: lead,
        *,
        q: str = "",
        state: str = "",
        framework: str = "",
        agent: str = "",
        sort: str = "launch",
        offset: Offset = 0,
        limit: Limit = 50,
    ) -> HTMLResponse:
        if state and state not in TASK_STATES:
            raise UiCallError(
                400,
                f"query parameter 'state' must be a task state such as TASK_RUNNING, got {state!r}",
            )
        filters = {"query": q, "state": state, "framework_id": framework, "agent_id": agent}
        page = _tasks(operator, filters, offset, limit, sort)
        params = {
            "q": q,
            "state": state,
            "framework": framework,
            "agent": agent,
            "sort": sort,
            "limit": limit,
        }
        context: dict[str, Any] = {
            "tasks": page,
            "params": params,
            "task_states": TASK_STATES,
            "tasks_base": "/ui/tasks",
        }
        if _partial(request):
            return renderer.page("parts/tasks_table.html", **context)
        return renderer.page("tasks.html", **frame("tasks", "Tasks"), **context)

    @router.get("/ui/tasks/{framework_id}/{task_id}", response_class=HTMLResponse)
    async def task(request: Request, framework_id: str, task_id: str, _: lead) -> HTMLResponse:
        found = call(
            operator,
            {
                "type": "GET_TASKS",
                "get_tasks": {"framework_id": framework_id, "task_id": task_id, "limit": 1},
            },
        )["get_tasks"]
        for kind in TASK_LISTS:
            if found.get(kind):
                task_json = found[kind][0]
                break
        else:
            raise UiCallError(404, f"no task {task_id!r} of framework {framework_id!r} is known")
        row = task_row(task_json, kind)
        context: dict[str, Any] = {
            "task": row,
            "task_json": task_json,
            "statuses": task_json.get("statuses", []),
        }
        if _partial(request):
            return renderer.page("parts/task_statuses.html", **context)
        agents = call(
            operator, {"type": "GET_AGENTS", "get_agents": {"agent_id": row.agent_id, "limit": 1}}
        )["get_agents"].get("agents", [])
        return renderer.page(
            "task.html",
            **frame("tasks", f"Task {row.task_id}"),
            agent=agent_row(agents[0]) if agents else None,
            **context,
        )

    @router.get("/ui/roles", response_class=HTMLResponse)
    async def roles(_: lead) -> HTMLResponse:
        found = call(operator, {"type": "GET_ROLES"})["get_roles"]
        return renderer.page(
            "roles.html",
            **frame("roles", "Roles"),
            roles=found.get("roles", []),
            resource_names=RESOURCE_NAMES,
        )

    @router.get("/ui/offers", response_class=HTMLResponse)
    async def offers(
        request: Request, _: lead, framework: str = "", offset: Offset = 0, limit: Limit = 100
    ) -> HTMLResponse:
        paging: dict[str, Any] = {"limit": limit, "offset": offset}
        if framework:
            paging["framework_id"] = framework
        found = call(operator, {"type": "GET_OFFERS", "get_offers": paging})["get_offers"]
        context: dict[str, Any] = {
            "offers": Page(
                [offer_row(o) for o in found.get("offers", [])],
                int(found.get("total", 0)),
                offset,
                limit,
            ),
            "offers_params": {"framework": framework, "limit": limit},
        }
        if _partial(request):
            return renderer.page("parts/offers_table.html", **context)
        return renderer.page("offers.html", **frame("offers", "Offers"), **context)

    return router


def _tasks(
    operator: OperatorCalls, filters: dict[str, str], offset: int, limit: int, sort: str
) -> Page[Any]:
    """One page of tasks (live, unreachable and completed as one sequence)."""
    # A table shows a task's newest status only: ask for no more.
    paging: dict[str, Any] = {
        "limit": limit,
        "offset": offset,
        "order_by": sort,
        "max_statuses": 1,
    }
    paging.update({k: v for k, v in filters.items() if v})
    if sort == "updated":
        paging["order"] = "desc"
    found = call(operator, {"type": "GET_TASKS", "get_tasks": paging})["get_tasks"]
    rows = [task_row(t, kind) for kind in TASK_LISTS for t in found.get(kind, [])]
    return Page(rows, int(found.get("total", 0)), offset, limit)
