"""``/master/state`` and its parts: state-summary, frameworks, slaves, tasks (leader-only)."""

# No ``from __future__ import annotations``: FastAPI must see the ``Depends`` of a local.

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from master.core import (
    Master,
    agents_snapshot,
    frameworks_snapshot,
    state_snapshot,
    state_summary,
    tasks_snapshot,
)
from master.core.snapshot import DEFAULT_TASK_LIMIT
from master.http.leadership import leading
from master.http.view import MasterView

__all__ = ["state_router"]


def state_router(view: MasterView) -> APIRouter:
    """``GET /master/state``, ``/master/state-summary``, ``/master/frameworks``,
    ``/master/slaves`` and ``/master/tasks``."""
    router = APIRouter(prefix="/master", tags=["state"])
    lead = leading(view)

    @router.get("/state")
    async def state(master: Annotated[Master, Depends(lead)]) -> JSONResponse:
        """The leading master, its agents and frameworks with tasks, executors and offers."""
        return JSONResponse(
            state_snapshot(
                master,
                version=view.version,
                start_time=view.start_time,
                elected_time=view.elected_time,
            )
        )

    @router.get("/state-summary")
    async def summary(master: Annotated[Master, Depends(lead)]) -> JSONResponse:
        """Agents and frameworks with task counts by state, without the tasks."""
        return JSONResponse(state_summary(master))

    @router.get("/frameworks")
    async def frameworks(
        master: Annotated[Master, Depends(lead)], framework_id: str | None = None
    ) -> JSONResponse:
        """Registered frameworks (only ``framework_id`` if given)."""
        return JSONResponse(frameworks_snapshot(master, framework_id))

    @router.get("/slaves")
    async def slaves(
        master: Annotated[Master, Depends(lead)], slave_id: str | None = None
    ) -> JSONResponse:
        """Registered agents, and agents still to reregister (only ``slave_id`` if given)."""
        return JSONResponse(agents_snapshot(master, slave_id))

    @router.get("/tasks")
    async def tasks(
        master: Annotated[Master, Depends(lead)],
        *,
        limit: Annotated[int, Query(ge=0)] = DEFAULT_TASK_LIMIT,
        offset: Annotated[int, Query(ge=0)] = 0,
        order: Literal["asc", "des", "desc"] = "des",
        framework_id: str | None = None,
        task_id: str | None = None,
    ) -> JSONResponse:
        """Up to ``limit`` tasks from ``offset``, newest status first (``order=asc``: oldest)."""
        return JSONResponse(
            tasks_snapshot(
                master,
                limit=limit,
                offset=offset,
                order="asc" if order == "asc" else "des",
                framework_id=framework_id,
                task_id=task_id,
            )
        )

    return router
