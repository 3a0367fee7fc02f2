"""``POST /api/v1``: the v1 operator API over HTTP (JSON in, JSON or a RecordIO stream out).

A call's body is JSON (``Content-Type: application/json``); a response is 200 with the JSON
response object, or 200 with an empty body for a steering call that succeeded (as Mesos). A bad
call is 400 ``{"detail": "<field>: <what is wrong>"}``; an unknown id 404; a refused steering
call 409; another content type 415. On a follower, calls other than GET_HEALTH, GET_VERSION,
GET_FLAGS and GET_METRICS get 307 to the leader's ``/api/v1`` (the client resends the body), or
503 while no leader is known.

SUBSCRIBE answers ``Content-Type: application/recordio`` (``Message-Content-Type:
application/json``): records ``<length>\\n<json>``, SUBSCRIBED first, then the events of
:mod:`.events`, until the client goes away, the master stops leading, or the client falls too
far behind.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from master.http.leadership import NotLeadingError
from master.http.operator.calls import EVERY_MASTER_CALLS, OperatorApi
from master.http.operator.events import DEFAULT_QUEUE_LIMIT, EventSubscription
from master.http.operator.parse import OperatorCallError, bad, boolean, check_keys

__all__ = ["MAX_BODY_BYTES", "operator_router", "recordio"]

MAX_BODY_BYTES = 4 * 1024 * 1024
"""The largest call body read (calls are small; this bounds what a client can make us parse)."""


def recordio(event: dict[str, Any]) -> bytes:
    """One RecordIO record of ``event``: ``<length>\\n<compact JSON>``."""
    data = json.dumps(event, separators=(",", ":")).encode()
    return b"%d\n%s" % (len(data), data)


def _error(error: OperatorCallError) -> JSONResponse:
    return JSONResponse({"detail": error.message}, status_code=error.status)


async def _stream(subscription: EventSubscription) -> AsyncIterator[bytes]:
    try:
        async for event in subscription:
            yield recordio(event)
    finally:
        subscription.close()


def operator_router(api: OperatorApi) -> APIRouter:
    """The ``/api/v1`` route over ``api``."""
    router = APIRouter(tags=["operator"])

    @router.post("/api/v1")
    async def operator_call(request: Request) -> Response:
        """One v1 operator call (see ``docs/http-api.md``)."""
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            return JSONResponse(
                {"detail": f"Content-Type must be application/json, got {media or 'none'!r}"},
                status_code=415,
            )
        raw = await request.body()
        try:
            if len(raw) > MAX_BODY_BYTES:
                raise bad(f"body: larger than {MAX_BODY_BYTES} bytes")
            try:
                body = json.loads(raw)
            except ValueError as error:
                raise bad(f"body: not valid JSON ({error})") from None
            kind, payload = api.read_type(body)
            if kind not in EVERY_MASTER_CALLS and api.view.leading_master() is None:
                raise NotLeadingError
            if kind == "SUBSCRIBE":
                check_keys(payload, ("include_state",), "subscribe")
                include = boolean(payload, "include_state", "subscribe", True)
                subscription = api.events.subscribe(
                    include_state=include,
                    queue_limit=DEFAULT_QUEUE_LIMIT,
                    visible=api.visibility(),
                )
                return StreamingResponse(
                    _stream(subscription),
                    media_type="application/recordio",
                    headers={"Message-Content-Type": "application/json"},
                )
            result = api.call(body)
        except OperatorCallError as error:
            return _error(error)
        if result is None:
            return Response(status_code=200)
        return JSONResponse(result)

    return router
