"""``/health`` and ``/version``: answered by every master, leading or not."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from master.http.scheduler_api.version import MESOS_VERSION
from master.http.view import MasterView

__all__ = ["health_router"]


def health_router(view: MasterView) -> APIRouter:
    """``GET /health`` (also ``/master/health``, Mesos's path) and ``GET /version``."""
    router = APIRouter(tags=["health"])

    @router.get("/health")
    @router.get("/master/health")
    async def health() -> JSONResponse:
        """200 while the process serves: ``{"healthy": true, "leading": bool}``."""
        return JSONResponse({"healthy": True, "leading": view.leading_master() is not None})

    @router.get("/version")
    async def version() -> JSONResponse:
        """``{"version": <the Mesos version served>, "emporion_version": ..., "master_id":
        ...}``: Mesos clients read ``version`` to choose features
        (:mod:`master.http.scheduler_api.version`)."""
        return JSONResponse(
            {
                "version": MESOS_VERSION,
                "emporion_version": view.version,
                "master_id": view.master_id,
            }
        )

    return router
