"""Which master answers: leader-only endpoints, 307 redirects to the leader, ``/master/redirect``.

A leader-only endpoint takes its state machine through the :func:`leading` dependency. On a
master that does not lead it raises :class:`NotLeadingError`, which the app answers (see
:func:`not_leading_response`) with **307** to the same path and query on the leader's HTTP
address, or **503** ``{"detail": "no leading master is known"}`` while none is known (or the
leader serves no HTTP). The dependency runs before the endpoint's query parameters are checked,
so a follower never judges a request: the leader does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from master.core import Master
from master.http.view import MasterView

__all__ = [
    "NO_LEADER",
    "NotLeadingError",
    "leader_redirect",
    "leading",
    "not_leading_response",
    "redirect_router",
]

NO_LEADER = "no leading master is known"
"""The detail of every 503 answered for want of a leader."""


class NotLeadingError(Exception):
    """NotLeadingError: a leader-only endpoint was asked of a master that does not lead."""


def leading(view: MasterView) -> Callable[[], Awaitable[Master]]:
    """The dependency giving leader-only endpoints the state machine (or raising NotLeadingError).

    It is a coroutine so that FastAPI runs it on the event loop, where the state lives: a plain
    function would run in a worker thread, racing the loop.
    """

    async def leading_master() -> Master:
        master = view.leading_master()
        if master is None:
            raise NotLeadingError
        return master

    return leading_master


def leader_redirect(view: MasterView, target: str, scheme: str = "http") -> JSONResponse:
    """307 to ``target`` (a path with its query) on the leader's HTTP address, or 503.

    ``scheme`` is the request's: the masters of a cluster all serve TLS, or none does."""
    leader = view.leader_http_address()
    if leader is None:
        return JSONResponse({"detail": NO_LEADER}, status_code=503)
    location = f"{scheme}://{leader}{target}"
    return JSONResponse(
        {"detail": f"not the leading master; the leader is at {scheme}://{leader}/"},
        status_code=307,
        headers={"Location": location},
    )


def not_leading_response(
    view: MasterView,
) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    """The app's handler of :class:`NotLeadingError`: the same path and query, on the leader."""

    async def handle(request: Request, error: Exception) -> JSONResponse:
        query = request.url.query
        target = request.url.path + (f"?{query}" if query else "")
        return leader_redirect(view, target, request.url.scheme)

    return handle


def redirect_router(view: MasterView) -> APIRouter:
    """``GET /master/redirect``: 307 to the leader's root (itself on the leader), or 503."""
    router = APIRouter(tags=["leadership"])

    @router.get("/master/redirect", status_code=307)
    async def redirect(request: Request) -> JSONResponse:
        """Where the leading master's HTTP API is (Mesos's bookmark for its web UI)."""
        return leader_redirect(view, "/", request.url.scheme)

    return router
