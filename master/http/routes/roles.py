"""``/master/roles`` and ``/master/weights`` (leader-only)."""

# No ``from __future__ import annotations``: FastAPI must see the ``Depends`` of a local.

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from master.core import Master, roles_snapshot, weights_snapshot
from master.http.leadership import leading
from master.http.view import MasterView

__all__ = ["roles_router"]


def roles_router(view: MasterView) -> APIRouter:
    """``GET /master/roles`` and ``GET /master/weights``."""
    router = APIRouter(prefix="/master", tags=["roles"])
    lead = leading(view)

    @router.get("/roles")
    async def roles(master: Annotated[Master, Depends(lead)]) -> JSONResponse:
        """Every known role: weight, quota, allocated, offered, reserved, frameworks."""
        return JSONResponse(roles_snapshot(master))

    @router.get("/weights")
    async def weights(master: Annotated[Master, Depends(lead)]) -> JSONResponse:
        """``[{"role": ..., "weight": ...}]`` for every role whose weight was set."""
        return JSONResponse(weights_snapshot(master))

    return router
