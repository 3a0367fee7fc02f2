"""``POST /api/v1/scheduler``: Mesos's v1 scheduler HTTP API, over the gRPC API's state machine.

Each request is checked in the order of Mesos's ``Master::Http::scheduler``
(``src/master/http.cpp``), with its status codes and, in its words, its messages:

* a master that does not lead: **307** with ``Location`` = the same path on the leader's HTTP
  address, or **503** ``No leader elected`` (after :data:`NO_LEADER_PAUSE`);
* another method than POST: **405** (``Allow: POST``);
* no ``Content-Type``, a body that is not a Call, no ``type``: **400**; a content type other
  than JSON or protobuf: **415**; SUBSCRIBE whose ``Accept`` allows neither: **406**;
* SUBSCRIBE: **200**, ``Mesos-Stream-Id`` and ``Content-Type`` headers, then a chunked body of
  RecordIO records (:mod:`.codec`), SUBSCRIBED first, HEARTBEAT every ``--heartbeat-interval``
  (15 s), until the scheduler goes away, the master closes the stream (teardown, a newer
  subscription, loss of the lead) or its ERROR event;
* any other call: **400** ``Framework cannot be found`` for an unknown framework, **403**
  ``Framework is not subscribed``, **400** without ``Mesos-Stream-Id`` or with another
  subscription's, **400** for what the state machine finds malformed (the message names the
  field), **404** for an agent the call names that is unknown, else **202** (UPDATE_FRAMEWORK:
  **200**), once the state machine took the call.

Calls reach the state machine exactly as the gRPC ``Scheduler`` service's do, through the
:class:`SchedulerRuntime` the master serves with while it leads; a subscription keeps the
runtime it started with, and its end (whoever ends it) reaches that runtime, as over gRPC.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from master.core import CallError, ErrorCode, Master
from master.core.errors import shown
from master.core.faults import CoreFaultError
from master.http.scheduler_api.codec import (
    ApiError,
    accepted_media_type,
    decode_call,
    encode_events,
)
from master.http.view import MasterView
from protos.limits import MAX_MESSAGE_BYTES
from protos.v1 import scheduler_pb2

__all__ = [
    "NO_LEADER_PAUSE",
    "SCHEDULER_PATHS",
    "STREAM_ID_HEADER",
    "EventSource",
    "SchedulerRuntime",
    "answer_call",
    "body_too_large",
    "check_declared_size",
    "error_response",
    "read_body",
    "scheduler_router",
    "take_call",
]

STREAM_ID_HEADER = "Mesos-Stream-Id"
SCHEDULER_PATHS = ("/api/v1/scheduler", "/master/api/v1/scheduler")
"""Where the API is served: Mesos's path and the same under the master's process id."""

NO_LEADER_PAUSE = 1.0
"""Seconds a 503 ``No leader elected`` waits before it is sent. Clients retry at once (pymesos
reconnects on 503 without backing off): while an election runs, each would otherwise spin on
the master, thousands of requests a second."""

_Call = scheduler_pb2.Call
_VALIDATE = "Failed to validate scheduler::Call: "
_STATUS = {
    ErrorCode.INVALID_ARGUMENT: 400,
    ErrorCode.FAILED_PRECONDITION: 403,
    ErrorCode.PERMISSION_DENIED: 400,
    ErrorCode.NOT_FOUND: 404,
}
"""HTTP status of each refusal of the state machine (Mesos answers a stream id that is not the
framework's current one with 400, where gRPC says PERMISSION_DENIED)."""


class EventSource(Protocol):
    """EventSource is the queue of one subscription's events."""

    async def take(self) -> list[scheduler_pb2.Event] | None:
        """Everything queued (waiting until something is), or None once the stream ended."""
        ...


class SchedulerRuntime(Protocol):
    """SchedulerRuntime is what this API needs of the runtime of the leading master (its
    :class:`~master.runtime.driver.MasterRuntime`)."""

    @property
    def core(self) -> Master:
        """The state machine, read for Mesos's checks of the caller."""
        ...

    def open_subscription(self, stream_id: str, call: scheduler_pb2.Call) -> EventSource:
        """SUBSCRIBE on stream ``stream_id``. Raises CallError or CoreFaultError."""
        ...

    def call(self, stream_id: str | None, call: scheduler_pb2.Call) -> None:
        """Any other call. Raises CallError or CoreFaultError."""
        ...

    def subscription_ended(self, stream_id: str) -> None:
        """The subscription stream ``stream_id`` ended."""
        ...


def _refusal(error: CallError) -> ApiError:
    status = _STATUS[error.code]
    message = error.message
    if error.code is ErrorCode.INVALID_ARGUMENT:
        message = _VALIDATE + message
    return ApiError(status, message)


class _EventStream(StreamingResponse):
    """The SUBSCRIBE response; ``on_end`` runs once it is over, however it ended (the body's
    generator alone would miss a client gone before the first event was written)."""

    def __init__(self, source: EventSource, media: str, stream_id: str, on_end: Callable[[], None]):
        super().__init__(self._body(source, media), media_type=media)
        self.headers[STREAM_ID_HEADER] = stream_id
        self._on_end = on_end

    @staticmethod
    async def _body(source: EventSource, media: str) -> AsyncIterator[bytes]:
        while (events := await source.take()) is not None:
            yield encode_events(events, media)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_end()


async def read_body(declared: str | None, stream: AsyncIterator[bytes]) -> bytes:
    """A request's body from its chunks ``stream``; 413 past the message limit of every
    Emporion API, or at once when its ``Content-Length`` (``declared``) says it will be."""
    check_declared_size(declared)
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > MAX_MESSAGE_BYTES:
            raise body_too_large()
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def check_declared_size(declared: str | None) -> None:
    """Raise :func:`read_body`'s 413 when a ``Content-Length`` of ``declared`` is too large."""
    if declared is not None and declared.isdigit() and int(declared) > MAX_MESSAGE_BYTES:
        raise ApiError(413, f"Request body of {declared} bytes is over {MAX_MESSAGE_BYTES} bytes")


def body_too_large() -> ApiError:
    """:func:`read_body`'s 413 for a body found larger than the message limit."""
    return ApiError(413, f"Request body is over {MAX_MESSAGE_BYTES} bytes")


def error_response(error: ApiError) -> Response:
    """The answer to a refused request: its status, headers and plain-text message."""
    return PlainTextResponse(error.message, error.status, headers=error.headers)


def answer_call(
    backend: SchedulerRuntime,
    headers: Mapping[str, str],
    body: bytes,
    guard: Callable[[scheduler_pb2.Call, Master], None] | None,
    *,
    call: scheduler_pb2.Call | None = None,
) -> Response:
    """The answer to a POST of ``body`` with ``headers`` (case-insensitive) to this API, in
    Mesos's order from the body on (the leader and the method are checked before): decode,
    ``guard`` (the master's authorization, raising ApiError 403), SUBSCRIBE's stream, or the
    caller's checks and the state machine. Raises ApiError for every refusal. ``call``: the
    body already decoded (by a faster reader than :func:`~.codec.decode_call`, to the same)."""
    outcome = take_call(backend, headers, body, guard, call=call)
    return outcome if isinstance(outcome, Response) else Response(status_code=outcome)


def take_call(
    backend: SchedulerRuntime,
    headers: Mapping[str, str],
    body: bytes,
    guard: Callable[[scheduler_pb2.Call, Master], None] | None,
    *,
    call: scheduler_pb2.Call | None = None,
) -> int | Response:
    """:func:`answer_call` up to its answer: SUBSCRIBE's stream, or the status of a call the
    state machine took (202; UPDATE_FRAMEWORK 200), which the fast path writes without
    building a response object. Raises ApiError for every refusal."""
    if call is None:
        call = decode_call(headers.get("content-type"), body)
    if not call.HasField("type"):
        raise ApiError(400, _VALIDATE + "Expecting 'type' to be present")
    kind = call.type
    if kind == _Call.UNKNOWN:
        raise ApiError(501, "Received an 'UNKNOWN' call")
    if guard is not None:
        guard(call, backend.core)
    if kind == _Call.SUBSCRIBE:
        return _subscribe(backend, headers, call)
    stream_id = _check_caller(backend.core, headers.get(STREAM_ID_HEADER), call)
    try:
        backend.call(stream_id, call)
    except CallError as error:
        raise _refusal(error) from None
    except CoreFaultError as fault:
        raise ApiError(500, fault.message) from None
    return 200 if kind == _Call.UPDATE_FRAMEWORK else 202


def _subscribe(backend: SchedulerRuntime, headers: Mapping[str, str], call: _Call) -> Response:
    media = accepted_media_type(headers.get("accept"))
    if headers.get(STREAM_ID_HEADER) is not None:
        raise ApiError(400, f"Subscribe calls should not include the '{STREAM_ID_HEADER}' header")
    stream_id = str(uuid.uuid4())
    try:
        source = backend.open_subscription(stream_id, call)
    except CallError as error:
        raise _refusal(error) from None
    except CoreFaultError as fault:
        raise ApiError(500, fault.message) from None
    return _EventStream(source, media, stream_id, lambda: backend.subscription_ended(stream_id))


def _check_caller(core: Master, stream_id: str | None, call: scheduler_pb2.Call) -> str:
    """Mesos's checks of a call other than SUBSCRIBE, in its order; the stream id."""
    framework_id = call.framework_id.value
    if not framework_id:
        raise ApiError(400, _VALIDATE + "Expecting 'framework_id' to be present")
    state = core.state
    framework = state.frameworks.get(framework_id)
    if framework is None:
        why = "it was torn down" if framework_id in state.completed else "SUBSCRIBE first"
        raise ApiError(400, f"Framework cannot be found: {shown(framework_id)} ({why})")
    if not framework.connected:
        raise ApiError(
            403, f"Framework is not subscribed: {framework_id} has no subscription; SUBSCRIBE again"
        )
    if stream_id is None:
        raise ApiError(
            400, f"All non-subscribe calls should include the '{STREAM_ID_HEADER}' header"
        )
    if stream_id != framework.stream_id:
        raise ApiError(
            400,
            f"The stream ID {shown(stream_id)} included in this request didn't match the stream"
            f" ID currently associated with framework ID {framework_id}",
        )
    return stream_id


def scheduler_router(view: MasterView, runtime: Callable[[], SchedulerRuntime | None]) -> APIRouter:
    """The scheduler API over ``runtime()``: the leading master's runtime, None while this
    master does not lead (requests then go to the leader ``view`` names)."""
    router = APIRouter(tags=["scheduler"])

    async def redirect(request: Request) -> ApiError:
        leader = view.leader_http_address()
        if leader is None:
            await asyncio.sleep(NO_LEADER_PAUSE)
            return ApiError(503, "No leader elected")
        location = f"{request.url.scheme}://{leader}{request.url.path}"
        return ApiError(
            307, f"Not the leading master; the leader is at {location}", {"Location": location}
        )

    async def serve(request: Request) -> Response:
        backend = runtime()
        if backend is None:
            raise await redirect(request)
        if request.method != "POST":
            raise ApiError(
                405,
                f"Expecting one of {{ 'POST' }}, but received '{request.method}'",
                {"Allow": "POST"},
            )
        body = await read_body(request.headers.get("content-length"), request.stream())
        # The master's authorization (master.auth), when it has one.
        guard: Any = getattr(request.app.state, "scheduler_guard", None)
        return answer_call(backend, request.headers, body, guard)

    async def scheduler(request: Request) -> Response:
        """One call of Mesos's v1 scheduler HTTP API (``docs/mesos-compatibility.md``)."""
        try:
            return await serve(request)
        except ApiError as error:
            return error_response(error)

    for path in SCHEDULER_PATHS:
        router.add_api_route(
            path, scheduler, methods=["POST"], include_in_schema=path == SCHEDULER_PATHS[0]
        )
        # Other methods get Mesos's 405 (or the redirect), not FastAPI's JSON one.
        router.add_api_route(
            path,
            scheduler,
            methods=["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"],
            include_in_schema=False,
        )
    return router
