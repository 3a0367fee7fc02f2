"""``/master/roles`` and ``/master/weights`` (leader-only)."""

# No ``from __future__ import annotations``: FastAPI must see the ``Depends`` of a local.

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from master.core import Master, roles_snapshot, weights_snapshot
from master.core.operator_json import Visibility
from master.core.operator_views import framework_visibility
from master.http.leadership import leading
from master.http.routes.mesos import Jsonp, mesos_response
from master.http.view import MasterView

__all__ = ["roles_router"]


def roles_router(
    view: MasterView, visibility: Callable[[], Visibility | None] = lambda: None
) -> APIRouter:
    """``GET /master/roles`` and ``GET /master/weights`` (a role lists only the frameworks
    the request's principal may see: ``visibility``)."""
    router = APIRouter(prefix="/master", tags=["roles"])
    lead = leading(view)

    @router.get("/roles")
    async def roles(master: Annotated[Master, Depends(lead)], jsonp: Jsonp = None) -> Response:
        """Every known role: weight, quota, allocated, offered, reserved, frameworks."""
        document = roles_snapshot(master)
        visible = visibility()
        if visible is not None:
            shown = framework_visibility(master, visible)
            for role in document["roles"]:
                role["frameworks"] = [f for f in role["frameworks"] if shown(f)]
        return mesos_response(document, jsonp)

    @router.get("/weights")
    async def weights(master: Annotated[Master, Depends(lead)], jsonp: Jsonp = None) -> Response:
        """``[{"role": ..., "weight": ...}]`` for every role whose weight was set."""
        return mesos_response(weights_snapshot(master), jsonp)

    return router
