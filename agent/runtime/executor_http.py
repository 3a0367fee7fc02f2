"""``POST /api/v1/executor`` on the agent's HTTP port: Mesos's v1 executor HTTP API.

Executors written for Mesos's HTTP API (pymesos's ``MesosExecutorDriver``, or any client of
``/api/v1/executor``) talk to it; they find it in ``MESOS_AGENT_ENDPOINT``, which names the
agent's HTTP address as in Mesos. Emporion's own SDK talks gRPC to the executor API named by
``EMPORION_AGENT_ENDPOINT``. Both reach the same core through the same
:class:`~agent.runtime.executor_api.Subscription` and call handlers, so an HTTP executor is
treated like any other: its updates are acknowledged, it is recovered after an agent restart
(it resubscribes, as a Mesos executor does; the agent's ``--port`` must then be the same), and
it is shut down the same way.

As Mesos answers (``src/slave/http.cpp``, ``Http::executor``): a body that is not a Call is 400
naming what failed; a Content-Type other than JSON or protobuf is 415; SUBSCRIBE answers 200
with a RecordIO stream of Events in the encoding its ``Accept`` allows (406 when neither), with
a HEARTBEAT when idle; UPDATE and MESSAGE answer 202; HEARTBEAT answers 202 at once; an
unknown framework or executor is 400 ("Framework cannot be found"); a call from an executor
that has not subscribed is 403; an UNKNOWN call is 501; any other method is 405.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from agent.core import InvalidCall, NotAllowedNow, UnknownTarget
from agent.runtime.executor_api import (
    ExecutorCalls,
    Subscription,
    message_call,
    update_call,
)
from protos.mesos_http import (
    APPLICATION_JSON,
    APPLICATION_PROTOBUF,
    BodyError,
    decode_body,
    message_json,
    record,
    stream_media_type,
)
from protos.v1 import executor_pb2

__all__ = ["executor_http_router"]

_Call = executor_pb2.Call


class _RefusedError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _decode(content_type: str | None, body: bytes) -> executor_pb2.Call:
    try:
        return decode_body(content_type, body, _Call())
    except BodyError as error:
        raise _RefusedError(error.status, error.message) from None


def _status(error: Exception) -> int:
    if isinstance(error, UnknownTarget):
        return 400  # Mesos: "Framework cannot be found" / "Executor cannot be found"
    if isinstance(error, NotAllowedNow):
        return 403  # Mesos: "Executor is not subscribed"
    return 400


def _encoded(event: executor_pb2.Event, media: str) -> bytes:
    if media == APPLICATION_PROTOBUF:
        return record(event.SerializeToString())
    return record(json.dumps(message_json(event), separators=(",", ":")).encode())


def executor_http_router(calls: ExecutorCalls, subscriptions: Subscription) -> APIRouter:
    """``/api/v1/executor`` for the agent's HTTP app (module docstring)."""
    router = APIRouter()

    @router.api_route(
        "/api/v1/executor", methods=["GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
    )
    async def other_method(request: Request) -> Response:
        return PlainTextResponse(
            f"Expecting 'POST', received '{request.method}'",
            status_code=405,
            headers={"Allow": "POST"},
        )

    @router.post("/api/v1/executor")
    async def executor_call(request: Request) -> Response:
        """One executor call (module docstring)."""
        try:
            call = _decode(request.headers.get("content-type"), await request.body())
            if call.type == _Call.SUBSCRIBE:
                media = stream_media_type(request.headers.get("accept"))
                if media is None:
                    raise _RefusedError(
                        406,
                        f"Expecting 'Accept' to allow '{APPLICATION_PROTOBUF}' or"
                        f" '{APPLICATION_JSON}'",
                    )
                key, queue = subscriptions.open(call)

                async def stream() -> AsyncIterator[bytes]:
                    async for event in subscriptions.events(key, queue):
                        yield _encoded(event, media)

                return StreamingResponse(stream(), media_type=media)
            if call.type == _Call.HEARTBEAT:
                return Response(status_code=202)
            if call.type == _Call.UPDATE:
                update_call(calls, call)
            elif call.type == _Call.MESSAGE:
                message_call(calls, call)
            else:
                raise _RefusedError(501, "Received 'UNKNOWN' call")
        except _RefusedError as refused:
            return PlainTextResponse(refused.message, status_code=refused.status)
        except (InvalidCall, UnknownTarget) as error:
            return PlainTextResponse(str(error), status_code=_status(error))
        return Response(status_code=202)

    return router
