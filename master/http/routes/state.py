"""``/master/state`` and its parts: state-summary, frameworks, slaves, tasks (leader-only)."""

# No ``from __future__ import annotations``: FastAPI must see the ``Depends`` of a local.

from collections.abc import Callable, Mapping
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from master.core import (
    Master,
    agents_snapshot,
    frameworks_snapshot,
    state_snapshot,
    tasks_snapshot,
)
from master.core.operator_json import Visibility
from master.core.snapshot import DEFAULT_TASK_LIMIT
from master.http.fragments import StateFragments
from master.http.leadership import leading
from master.http.routes.mesos import (
    Jsonp,
    mesos_encoded_response,
    mesos_master_fields,
    mesos_response,
)
from master.http.view import MasterView

__all__ = ["state_router"]


def state_router(
    view: MasterView,
    flags: Mapping[str, str] | None = None,
    visibility: Callable[[], Visibility | None] = lambda: None,
) -> APIRouter:
    """``GET /master/state`` (also ``/master/state.json`` and ``/state``, Mesos's other
    names), ``/master/state-summary``, ``/master/frameworks``, ``/master/slaves`` and
    ``/master/tasks``; each takes Mesos's ``?jsonp=``. ``visibility`` gives what the
    request's principal may see (``view_*`` ACLs; None: everything): the rest is left out.

    ``/master/slaves`` and ``/master/state-summary`` are assembled from each agent's JSON,
    remembered until the agent changes (:mod:`master.http.fragments`): the same bytes as the
    snapshot functions, without re-encoding every agent of a large cluster per request."""
    router = APIRouter(tags=["state"])
    lead = leading(view)
    fragments = StateFragments()

    @router.get("/master/state")
    @router.get("/master/state.json")
    @router.get("/state")
    async def state(master: Annotated[Master, Depends(lead)], jsonp: Jsonp = None) -> Response:
        """The leading master, its agents and frameworks with tasks, executors and offers."""
        document = state_snapshot(
            master,
            version=view.version,
            start_time=view.start_time,
            elected_time=view.elected_time,
            visible=visibility(),
        )
        document.update(mesos_master_fields(master, view, flags))
        return mesos_response(document, jsonp)

    @router.get("/master/state-summary")
    async def summary(master: Annotated[Master, Depends(lead)], jsonp: Jsonp = None) -> Response:
        """Agents and frameworks with task counts by state, without the tasks."""
        return mesos_encoded_response(fragments.state_summary(master, visibility()), jsonp)

    @router.get("/master/frameworks")
    async def frameworks(
        master: Annotated[Master, Depends(lead)],
        framework_id: str | None = None,
        jsonp: Jsonp = None,
    ) -> Response:
        """Registered frameworks (only ``framework_id`` if given)."""
        return mesos_response(frameworks_snapshot(master, framework_id, visibility()), jsonp)

    @router.get("/master/slaves")
    async def slaves(
        master: Annotated[Master, Depends(lead)],
        slave_id: str | None = None,
        jsonp: Jsonp = None,
    ) -> Response:
        """Registered agents, and agents still to reregister (only ``slave_id`` if given)."""
        if slave_id is not None:
            return mesos_response(agents_snapshot(master, slave_id), jsonp)
        return mesos_encoded_response(fragments.slaves(master), jsonp)

    @router.get("/master/tasks")
    async def tasks(
        master: Annotated[Master, Depends(lead)],
        *,
        limit: Annotated[int, Query(ge=0)] = DEFAULT_TASK_LIMIT,
        offset: Annotated[int, Query(ge=0)] = 0,
        order: Literal["asc", "des", "desc"] = "des",
        framework_id: str | None = None,
        task_id: str | None = None,
        jsonp: Jsonp = None,
    ) -> Response:
        """Up to ``limit`` tasks from ``offset``, newest status first (``order=asc``: oldest)."""
        page = tasks_snapshot(
            master,
            limit=limit,
            offset=offset,
            order="asc" if order == "asc" else "des",
            framework_id=framework_id,
            task_id=task_id,
            visible=visibility(),
        )
        return mesos_response(page, jsonp)

    return router
