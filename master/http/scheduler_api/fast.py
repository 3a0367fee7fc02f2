"""SchedulerFastPath: ``POST /api/v1/scheduler`` served ahead of FastAPI and Starlette.

A scheduler on this API sends one POST per status update it acknowledges, so these requests
outnumber all others together, and through FastAPI each spent more time in its routing,
dependency and response machinery (about 60 % of the master's CPU in
``bench.launch_throughput --api http``) than in the state machine. This ASGI application
answers them before any of that machinery: a POST to one of :data:`~.router.SCHEDULER_PATHS`
while this master leads is read and answered by :func:`~.router.take_call`, the very function
behind the FastAPI route, with the request's headers in Starlette's case-insensitive
``Headers``, so every answer (codes, messages, ``Mesos-Stream-Id`` checks, the SUBSCRIBE stream,
authorization) is the route's. Everything else (other methods and paths, a master that does not
lead and redirects) goes on to the application and its route.

:func:`~master.http.app.create_app` keeps it as ``app.state.scheduler_fast_path`` (the
application it passes requests on to being that app), and the master's authentication gate
(:class:`master.auth.http.BasicAuthMiddleware`) hands the requests it admitted to it rather than
to the app: the fast path runs after the same authentication, with the principal in the same
context, and FastAPI's and Starlette's own middleware (error pages, telemetry, body limits:
about 7 % of the master's CPU per call, all pass-through here) no longer stand in front of it.
An accepted call's empty answer is written as two ASGI messages, the headers a Starlette
``Response`` would have sent, without building one.

JSON bodies are read by :mod:`.json_reader` rather than ``json_format``, whose generic parse
cost as much as the rest of an ACKNOWLEDGE; where that reader gives up (a body it does not cover,
or a bad one), the body is read as before, so a malformed one is refused in the same words.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from master.http.scheduler_api.codec import ApiError
from master.http.scheduler_api.json_reader import read_call
from master.http.scheduler_api.router import (
    SCHEDULER_PATHS,
    SchedulerRuntime,
    body_too_large,
    check_declared_size,
    error_response,
    read_body,
    take_call,
)
from protos.limits import MAX_MESSAGE_BYTES
from protos.mesos_http import APPLICATION_JSON, media_type
from protos.v1 import scheduler_pb2

__all__ = ["SchedulerFastPath", "fast_call"]

_PATHS = frozenset(SCHEDULER_PATHS)
_EMPTY_ANSWER = [(b"content-length", b"0")]
"""The headers of Starlette's ``Response(status_code=202)`` (and of 200): no body."""
_END = {"type": "http.response.body", "body": b"", "more_body": False}


def fast_call(body: bytes) -> scheduler_pb2.Call | None:
    """The Call of a JSON ``body`` read by :func:`~.json_reader.read_call` (as
    ``json_format`` reads it); None where that reader gives up (the caller then decodes the
    body the generic way, which also refuses a bad one in Mesos's words)."""
    return read_call(body)


class SchedulerFastPath:
    """SchedulerFastPath serves the scheduler API's POSTs ahead of ``app`` (module docstring).

    ``runtime`` gives the leading master's runtime (None while not leading: the request goes
    on to ``app``, whose route redirects it); ``state`` is the application's state, whose
    ``scheduler_guard`` (the master's authorization, set once the master built the app) is
    looked up at each request.
    """

    def __init__(
        self,
        app: ASGIApp,
        runtime: Callable[[], SchedulerRuntime | None],
        state: Any,
    ) -> None:
        self.app = app
        self.runtime = runtime
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a scheduler API POST, or pass the request on."""
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in _PATHS:
            await self.app(scope, receive, send)
            return
        backend = self.runtime()
        if backend is None:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            body = await _read_body(headers.get("content-length"), receive)
        except _ClientGoneError:
            return  # Nobody to answer; nothing was read into the state machine.
        except ApiError as error:
            await error_response(error)(scope, receive, send)
            return
        call = None
        content_type = headers.get("content-type")
        if content_type is not None and media_type(content_type) == APPLICATION_JSON:
            call = read_call(body)
        try:
            guard = getattr(self.state, "scheduler_guard", None)
            outcome = take_call(backend, headers, body, guard, call=call)
        except ApiError as error:
            await error_response(error)(scope, receive, send)
            return
        if isinstance(outcome, int):
            await send({"type": "http.response.start", "status": outcome, "headers": _EMPTY_ANSWER})
            await send(_END)
        else:
            await outcome(scope, receive, send)


class _ClientGoneError(Exception):
    """The client disconnected before its request's body was whole."""


async def _read_body(declared: str | None, receive: Receive) -> bytes:
    """The request's body, as :func:`~.router.read_body` reads it (same limits, same 413s),
    without an async generator for the usual body that comes in one message."""
    check_declared_size(declared)
    message = await receive()
    if message["type"] == "http.request" and not message.get("more_body", False):
        body: bytes = message.get("body", b"")
        if len(body) > MAX_MESSAGE_BYTES:
            raise body_too_large()
        return body
    return await read_body(None, _chunks(message, receive))


async def _chunks(first: Any, receive: Receive) -> AsyncIterator[bytes]:
    """The request body's chunks as ASGI delivers them (as Starlette's ``Request.stream``),
    from the message ``first`` already received on."""
    message = first
    while True:
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return
        elif message["type"] == "http.disconnect":
            raise _ClientGoneError
        message = await receive()
