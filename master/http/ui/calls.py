"""Operator calls from the UI, and how their errors become pages.

:func:`call` runs one operator call in-process and returns its response object; a refused
call (the operator API's ``OperatorCallError``: 400 bad field, 404 unknown id, 409 refused
steering) becomes :class:`UiCallError` with the same status and message. The UI's routes use
:func:`ui_route_class`, which turns a UiCallError (and a bad query parameter) into an HTML
error page, or a one-line fragment for htmx, with that status (``{"detail": ...}`` for the
endpoints the page scripts call: watch, sandbox read, tail and download). ``NotLeadingError`` passes
through untouched: the app answers it with 307 to the leader, like every leader-only endpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute

from master.http.errors import describe_validation_error
from master.http.leadership import NotLeadingError

from .api import OperatorCalls
from .render import Renderer

__all__ = ["UiCallError", "call", "ui_route_class"]


class UiCallError(Exception):
    """UiCallError: a page cannot be served; ``status`` is the HTTP status, ``message`` why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def call(operator: OperatorCalls, body: dict[str, Any]) -> dict[str, Any]:
    """The response object of operator call ``body`` (``{}`` for a steering call)."""
    try:
        response = operator.call(body)
    except NotLeadingError:
        raise
    except Exception as error:
        status = getattr(error, "status", None)
        if isinstance(status, int):
            raise UiCallError(status, str(getattr(error, "message", error))) from error
        raise
    return response or {}


def ui_route_class(renderer: Renderer) -> type[APIRoute]:
    """An APIRoute class whose endpoints answer UiCallError and bad parameters with a page."""

    class UiRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def handle(request: Request) -> Response:
                started = time.perf_counter()
                try:
                    response = await handler(request)
                except UiCallError as error:
                    return _error(renderer, request, error.status, error.message)
                except RequestValidationError as error:
                    return _error(renderer, request, 400, describe_validation_error(error))
                if not isinstance(response, StreamingResponse):
                    # What the master spent on it, for the browser's devtools and bench.ui.
                    spent = (time.perf_counter() - started) * 1000
                    response.headers["Server-Timing"] = f"app;dur={spent:.1f}"
                return response

            return handle

    return UiRoute


def _answers_json(path: str) -> bool:
    """Whether the UI endpoint at ``path`` answers JSON (the page scripts' endpoints)."""
    if path.startswith("/ui/watch/"):
        return True
    return path.startswith("/ui/sandbox/") and not path.endswith("/files")


def _error(renderer: Renderer, request: Request, status: int, message: str) -> Response:
    if _answers_json(request.url.path):
        return JSONResponse({"detail": message}, status_code=status)
    if request.headers.get("HX-Request") == "true":
        return renderer.page("parts/error.html", status_code=status, message=message)
    return renderer.page("error.html", status_code=status, message=message, status=status)
