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

The ACKNOWLEDGE body pymesos sends is read without ``json_format`` (:func:`fast_acknowledge`):
that generic parse cost as much as the rest of the call. Any other body, and any
ACKNOWLEDGE that is not exactly of that shape, is read by the generic decoder, so a malformed
one is refused with the same words as before.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from master.http.scheduler_api.codec import ApiError
from master.http.scheduler_api.router import (
    SCHEDULER_PATHS,
    SchedulerRuntime,
    answer_call,
    error_response,
    read_body,
)
from protos.mesos_http import APPLICATION_JSON, media_type
from protos.v1 import scheduler_pb2

__all__ = ["SchedulerFastPath", "fast_acknowledge"]

_Call = scheduler_pb2.Call
_PATHS = frozenset(SCHEDULER_PATHS)
_ACK_KEYS = frozenset(("type", "framework_id", "acknowledge"))
_ACK_FIELDS = frozenset(("agent_id", "task_id", "uuid"))


def _value(item: Any) -> str | None:
    """The string of ``{"value": "..."}``, the JSON of an id message; None for anything else."""
    if type(item) is dict and len(item) == 1:
        value = item.get("value")
        if type(value) is str:
            return value
    return None


def fast_acknowledge(body: bytes) -> scheduler_pb2.Call | None:
    """The ACKNOWLEDGE call of a JSON ``body`` of exactly pymesos's shape (``type``,
    ``framework_id.value``, ``acknowledge``'s ``agent_id.value``, ``task_id.value`` and base64
    ``uuid``, nothing else), as ``json_format`` would read it; None for any other body, which
    the generic decoder then reads (and refuses, if it is bad, in its words)."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if type(document) is not dict or document.keys() != _ACK_KEYS:
        return None
    if document["type"] != "ACKNOWLEDGE":
        return None
    acknowledge = document["acknowledge"]
    if type(acknowledge) is not dict or acknowledge.keys() != _ACK_FIELDS:
        return None
    framework_id = _value(document["framework_id"])
    agent_id = _value(acknowledge["agent_id"])
    task_id = _value(acknowledge["task_id"])
    encoded = acknowledge["uuid"]
    if framework_id is None or agent_id is None or task_id is None or type(encoded) is not str:
        return None
    if not (framework_id.isascii() and agent_id.isascii() and task_id.isascii()):
        return None  # Rare: left to json_format's checks of strings (unpaired surrogates).
    if not encoded.isascii():
        return None
    raw = encoded.encode()
    try:  # Exactly json_format's reading of a bytes field (URL-safe or not, padding added).
        uuid = base64.urlsafe_b64decode(raw + b"=" * (4 - len(raw) % 4))
    except (binascii.Error, ValueError):
        return None
    call = _Call(type=_Call.ACKNOWLEDGE)
    call.framework_id.value = framework_id
    ack = call.acknowledge
    ack.agent_id.value = agent_id
    ack.task_id.value = task_id
    ack.uuid = uuid
    return call


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
            call = fast_acknowledge(body)
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
