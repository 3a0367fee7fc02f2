"""``/metrics/snapshot``: Mesos's ``master/*`` gauges, answered by every master."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from master.core import metrics_snapshot
from master.http.view import MasterView

__all__ = ["metrics_router"]


def metrics_router(view: MasterView, clock: Callable[[], float]) -> APIRouter:
    """``GET /metrics/snapshot``; a master that does not lead answers for itself, with
    ``master/elected`` 0 (as Mesos does), instead of redirecting."""
    router = APIRouter(tags=["metrics"])

    @router.get("/metrics/snapshot")
    async def snapshot() -> JSONResponse:
        """Metric name -> number."""
        return JSONResponse(
            metrics_snapshot(view.leading_master(), now=clock(), start_time=view.start_time)
        )

    return router
