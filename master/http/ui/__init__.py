"""The master's web UI: live pages of the cluster for operators, served at ``/``.

Server-side Jinja2 templates (:mod:`.render`, ``templates/``) rendered from the operator API's
calls run in-process (:mod:`.api`, :mod:`.calls`); htmx swaps tables when filtering, sorting and
paging (always on the server: :mod:`.pages`); uPlot draws the utilisation charts; a small
script applies the live stream (:mod:`.live`, Server-Sent Events fed by the operator event
hub). Sandboxes are read through the master (:mod:`.sandbox`); operator actions are forms
posted with a confirmation (:mod:`.actions`). Every asset is vendored in ``static/`` with its
licence: no CDN, no build step, works offline. See ``docs/ui.md``.

Every page is leader-only: a follower answers 307 to the same page on the leader.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import APIRouter

from master.core.operator_json import Visibility
from master.http.view import MasterView

from .actions import actions_router
from .api import OperatorCalls
from .live import LiveHub
from .pages import pages_router
from .render import Renderer
from .routes import fallback_router, live_router, static_router
from .sandbox import sandbox_router

__all__ = ["LiveHub", "OperatorCalls", "ui_router"]


def ui_router(
    view: MasterView,
    operator: OperatorCalls,
    *,
    clock: Callable[[], float] = time.time,
    live_interval: float = 1.0,
    visibility: Callable[[], Visibility | None] = lambda: None,
) -> APIRouter:
    """Every route of the web UI, for ``create_app`` to include after the API's routers.

    The pages show what the operator API's calls return, already filtered for the request's
    principal; ``visibility`` (the same ``view_*`` ACLs) filters each live stream's updates.
    """
    renderer = Renderer(clock)
    hub = LiveHub(
        operator, view.leading_master, interval=live_interval, clock=clock, visibility=visibility
    )
    router = APIRouter()
    router.include_router(pages_router(view, operator, renderer, clock))
    router.include_router(sandbox_router(view, operator, renderer))
    router.include_router(actions_router(view, operator, renderer))
    router.include_router(live_router(view, hub, renderer))
    router.include_router(static_router(renderer))
    router.include_router(fallback_router(renderer))
    return router
