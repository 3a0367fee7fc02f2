"""SchedulerFastPath: ``POST /api/v1/scheduler`` served ahead of FastAPI's routing.

A scheduler on this API sends one POST per status update it acknowledges, so these requests
outnumber all others together, and through FastAPI each spent more time in its routing,
dependency and response machinery (about 60 % of the master's CPU in
``bench.launch_throughput --api http``) than in the state machine. This ASGI middleware answers
them before that machinery: a POST to one of :data:`~.router.SCHEDULER_PATHS` while this master
leads is read and answered by :func:`~.router.answer_call`, the very function behind the
FastAPI route, with the request's headers in Starlette's case-insensitive ``Headers``, so every
answer (codes, messages, ``Mesos-Stream-Id`` checks, the SUBSCRIBE stream, authorization) is the
route's. Everything else (other methods, a master that does not lead and redirects) goes on to
the application and its route.

JSON bodies are read by :mod:`.json_reader` rather than ``json_format``, whose generic parse
cost as much as the rest of an ACKNOWLEDGE; where that reader gives up (a body it does not cover,
or a bad one), the body is read as before, so a malformed one is refused in the same words.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from master.http.scheduler_api.codec import ApiError
from master.http.scheduler_api.json_reader import read_message
from master.http.scheduler_api.router import (
    SCHEDULER_PATHS,
    SchedulerRuntime,
    answer_call,
    error_response,
    read_body,
)
from protos.mesos_http import APPLICATION_JSON, media_type
from protos.v1 import scheduler_pb2

__all__ = ["SchedulerFastPath", "fast_call"]

_Call = scheduler_pb2.Call
_PATHS = frozenset(SCHEDULER_PATHS)


def fast_call(body: bytes) -> scheduler_pb2.Call | None:
    """The Call of a JSON ``body`` read by :func:`~.json_reader.read_message` (as
    ``json_format`` reads it); None where that reader gives up (the caller then decodes the
    body the generic way, which also refuses a bad one in Mesos's words)."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    try:
        return read_message(document, _Call())
    except RecursionError:
        return None


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
            body = await read_body(headers.get("content-length"), _chunks(receive))
        except _ClientGoneError:
            return  # Nobody to answer; nothing was read into the state machine.
        except ApiError as error:
            await error_response(error)(scope, receive, send)
            return
        call = None
        content_type = headers.get("content-type")
        if content_type is not None and media_type(content_type) == APPLICATION_JSON:
            call = fast_call(body)
        try:
            guard = getattr(self.state, "scheduler_guard", None)
            response = answer_call(backend, headers, body, guard, call=call)
        except ApiError as error:
            response = error_response(error)
        await response(scope, receive, send)


class _ClientGoneError(Exception):
    """The client disconnected before its request's body was whole."""


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The request body's chunks as ASGI delivers them (as Starlette's ``Request.stream``)."""
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return
        elif message["type"] == "http.disconnect":
            raise _ClientGoneError
