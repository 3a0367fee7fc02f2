"""The UI's plumbing routes: vendored static files, ``/docs`` from vendored swagger-ui, and
the live stream (``/ui/events``, ``/ui/watch``).

Static files are served on every master (a follower's redirect page needs none, but serving
them costs nothing); the live stream is leader-only like the pages.
"""

# No ``from __future__ import annotations``: FastAPI must see the ``Depends`` of a local.

import json
import mimetypes
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse

from master.core import Master
from master.http.leadership import leading
from master.http.view import MasterView

from .calls import UiCallError, ui_route_class
from .live import LiveHub
from .render import STATIC_DIR, Renderer

__all__ = ["fallback_router", "live_router", "static_router"]

MAX_WATCH_BYTES = 512 * 1024
"""The largest watch list a page may post (1,000 keys of 255-byte ids fit)."""
_STATIC_ROOT = STATIC_DIR.resolve()


def static_router(renderer: Renderer) -> APIRouter:
    """``GET /ui/static/<path>`` and ``GET /docs`` (any master)."""
    router = APIRouter(include_in_schema=False, route_class=ui_route_class(renderer))

    @router.get("/ui/static/{path:path}")
    async def static(path: str) -> FileResponse:
        """A vendored or own asset; anything outside ``static/`` is 404."""
        target = (_STATIC_ROOT / path).resolve()
        if not target.is_relative_to(_STATIC_ROOT) or not target.is_file():
            raise UiCallError(404, f"no static file {path!r}")
        media_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return FileResponse(
            target, media_type=media_type, headers={"Cache-Control": "public, max-age=3600"}
        )

    @router.get("/docs")
    async def docs() -> HTMLResponse:
        """FastAPI's interactive API page, with swagger-ui from the package (no CDN)."""
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Emporion master · API",
            swagger_js_url="/ui/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/ui/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/ui/static/swagger-ui/favicon-32x32.png",
        )

    return router


def fallback_router(renderer: Renderer) -> APIRouter:
    """``GET /ui/<anything else>``: the UI's own 404 page (with its navigation), not the API's
    JSON, for a mistyped or outdated link. Included after every other UI route."""
    router = APIRouter(include_in_schema=False, route_class=ui_route_class(renderer))

    @router.get("/ui/{path:path}")
    async def unknown(path: str) -> HTMLResponse:
        raise UiCallError(404, f"no page /ui/{path}")

    return router


def _strings(value: Any, field: str, arity: int = 1) -> list[Any]:
    """``value`` as a list of strings (or of ``arity``-lists of strings); UiCallError if not."""
    if not isinstance(value, list):
        raise UiCallError(400, f"field '{field}' must be a list, got {type(value).__name__}")
    for item in value:
        ok = (
            isinstance(item, str)
            if arity == 1
            else isinstance(item, list)
            and len(item) == arity
            and all(isinstance(part, str) for part in item)
        )
        if not ok:
            shape = "strings" if arity == 1 else f"lists of {arity} strings"
            raise UiCallError(400, f"field '{field}' must hold {shape}, got {item!r:.80}")
    return value


def live_router(view: MasterView, hub: LiveHub, renderer: Renderer) -> APIRouter:
    """``GET /ui/events`` (the SSE stream) and ``POST /ui/watch/<viewer>`` (leader-only)."""
    router = APIRouter(include_in_schema=False, route_class=ui_route_class(renderer))
    lead = Annotated[Master, Depends(leading(view))]

    @router.get("/ui/events")
    async def events(_: lead) -> StreamingResponse:
        """This browser's live stream (see :mod:`master.http.ui.live`)."""
        viewer = hub.connect()
        return StreamingResponse(
            hub.stream(viewer),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @router.post("/ui/watch/{viewer_id}")
    async def watch(viewer_id: str, request: Request, _: lead) -> JSONResponse:
        """Set what the viewer's page shows: ``{"tasks": [[framework, task, state]],
        "agents": [ids], "frameworks": [ids]}``."""
        body = await request.body()
        if len(body) > MAX_WATCH_BYTES:
            raise UiCallError(413, f"the watch list is over {MAX_WATCH_BYTES} bytes")
        try:
            wanted = json.loads(body or b"{}")
        except ValueError as error:
            raise UiCallError(400, f"the watch list is not JSON: {error}") from None
        if not isinstance(wanted, dict):
            raise UiCallError(400, "the watch list must be a JSON object")
        tasks = _strings(wanted.get("tasks", []), "tasks", arity=3)
        agents = _strings(wanted.get("agents", []), "agents")
        frameworks = _strings(wanted.get("frameworks", []), "frameworks")
        if not hub.watch(viewer_id, [tuple(t) for t in tasks], agents, frameworks):
            raise UiCallError(404, f"no live viewer {viewer_id!r}: reconnect to /ui/events")
        return JSONResponse({"watching": len(tasks) + len(agents) + len(frameworks)})

    return router
