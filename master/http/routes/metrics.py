"""``/metrics/snapshot``: Mesos's ``master/*`` gauges, answered by every master."""

from collections.abc import Callable

from fastapi import APIRouter
from fastapi.responses import Response

from master.core import metrics_snapshot
from master.http.routes.mesos import Jsonp, mesos_response
from master.http.view import MasterView

__all__ = ["metrics_router"]


def metrics_router(view: MasterView, clock: Callable[[], float]) -> APIRouter:
    """``GET /metrics/snapshot``; a master that does not lead answers for itself, with
    ``master/elected`` 0 (as Mesos does), instead of redirecting."""
    router = APIRouter(tags=["metrics"])

    @router.get("/metrics/snapshot")
    async def snapshot(jsonp: Jsonp = None) -> Response:
        """Metric name -> number."""
        figures = metrics_snapshot(view.leading_master(), now=clock(), start_time=view.start_time)
        return mesos_response(figures, jsonp)

    return router
