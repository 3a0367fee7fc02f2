"""The scheduler API's fast path (master.http.scheduler_api.fast) answers as the FastAPI route.

Requests go to a running master (whose HTTP server serves them on the fast path) and, the same
bytes, to an application holding only the route (``scheduler_router``) over the same runtime; the
status, body and ``Content-Type`` must be the same, and refused calls change nothing. The fast
reading of JSON bodies (``json_reader``) must be ``json_format``'s reading, or step aside.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from master.auth import MasterSecurity
from master.auth.http import BasicAuthMiddleware
from master.config import MasterConfig
from master.http import create_app
from master.http.scheduler_api import SchedulerFastPath, scheduler_router
from master.http.scheduler_api.codec import decode_call
from master.http.scheduler_api.fast import fast_call
from master.runtime import MasterServer
from protos.mesos_http import message_json
from protos.resources import Resources
from protos.v1 import mesos_pb2
from tests.integration.master.clients import wait_for
from tests.integration.scheduler_http.clients import JSON_MEDIA, Call, HttpScheduler
from tests.integration.scheduler_http.test_http_api import (
    BAD_REQUESTS,
    FollowerView,
    master_with_agent,
)
from tests.integration.scheduler_http.test_shared_behaviour import launch_call

UUID = uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0").bytes


def ack_document(**changes: Any) -> dict[str, Any]:
    """pymesos's ACKNOWLEDGE body, with ``changes`` (None removes a key) at the top level or,
    for ``agent_id``, ``task_id`` and ``uuid``, in ``acknowledge``."""
    acknowledge: dict[str, Any] = {
        "agent_id": {"value": "a1-S0"},
        "task_id": {"value": "t1"},
        "uuid": base64.b64encode(UUID).decode(),
    }
    document: dict[str, Any] = {
        "type": "ACKNOWLEDGE",
        "framework_id": {"value": "f1-0000"},
        "acknowledge": acknowledge,
    }
    for key, value in changes.items():
        target = acknowledge if key in acknowledge else document
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    return document


ODD_ACKS: dict[str, bytes] = {
    "url-safe base64 without padding": json.dumps(
        ack_document(uuid=base64.urlsafe_b64encode(b"\xfb\xff" * 8).decode().rstrip("="))
    ).encode(),
    "bad base64": json.dumps(ack_document(uuid="@@@")).encode(),
    "uuid a number": json.dumps(ack_document(uuid=7)).encode(),
    "task id a number": json.dumps(ack_document(task_id={"value": 7})).encode(),
    "task id a string": json.dumps(ack_document(task_id="t1")).encode(),
    "extra key": json.dumps(ack_document(extra=1)).encode(),
    "extra id key": json.dumps(ack_document(task_id={"value": "t1", "x": 1})).encode(),
    "no uuid": json.dumps(ack_document(uuid=None)).encode(),
    "no framework id": json.dumps(ack_document(framework_id=None)).encode(),
    "another type": json.dumps(ack_document(type="REVIVE")).encode(),
    "an unknown type": json.dumps(ack_document(type="ACKNOWLEDGE_ALL")).encode(),
    "non-ascii task id": json.dumps(ack_document(task_id={"value": "tâche"})).encode(),
    "unpaired surrogate": b'{"type": "ACKNOWLEDGE", "framework_id": {"value": "\\ud800"},'
    b' "acknowledge": {"agent_id": {"value": "a"}, "task_id": {"value": "t"}, "uuid": ""}}',
    "not json": b'{"type": "ACKNOWLEDGE",',
    "not utf-8": b'{"type": "\xff"}',
    "an array": b"[]",
}


def accept_document() -> dict[str, Any]:
    """An ACCEPT launching two tasks, in Mesos's JSON as pymesos writes it."""
    call = Call(type=Call.ACCEPT)
    call.framework_id.value = "f1-0000"
    call.accept.offer_ids.add().value = "o1"
    call.accept.filters.refuse_seconds = 5
    launch = call.accept.operations.add(type=mesos_pb2.Offer.Operation.LAUNCH).launch
    for name in ("t1", "t2"):
        task = launch.task_infos.add(name=name)
        task.task_id.value = name
        task.agent_id.value = "a1-S0"
        task.resources.extend(Resources.parse("cpus:0.5;mem:64;ports:[31000-31001]").to_protos())
        task.command.value = "sleep 1"
        task.command.shell = True
        task.command.environment.variables.add(name="X", value="1")
        task.labels.labels.add(key="k", value="v")
        task.data = b"\x00\xff payload"
    return message_json(call)


def subscribe_document() -> dict[str, Any]:
    """A SUBSCRIBE with enums, doubles, booleans and repeated enums in its FrameworkInfo."""
    return {
        "type": "SUBSCRIBE",
        "subscribe": {
            "framework_info": {
                "user": "u",
                "name": "n",
                "failover_timeout": 60,
                "checkpoint": True,
                "roles": ["a", "b"],
                "capabilities": [{"type": "MULTI_ROLE"}, {"type": "PARTITION_AWARE"}],
            },
            "suppressed_roles": ["b"],
        },
    }


READ_ALIKE: dict[str, dict[str, Any]] = {
    "pymesos's acknowledge": ack_document(),
    "an accept of two tasks": accept_document(),
    "a subscribe": subscribe_document(),
    "a decline": {
        "type": "DECLINE",
        "framework_id": {"value": "f"},
        "decline": {"offer_ids": [{"value": "o1"}, {"value": "o2"}], "filters": {}},
    },
    "a message": {
        "type": "MESSAGE",
        "framework_id": {"value": "f"},
        "message": {"agent_id": {"value": "a"}, "executor_id": {"value": "e"}, "data": "AAE="},
    },
    "a kill": {"type": "KILL", "framework_id": {"value": "f"}, "kill": {"task_id": {"value": "t"}}},
}


def test_the_calls_schedulers_send_are_read_fast_and_as_json_format_reads_them() -> None:
    for name, document in READ_ALIKE.items():
        body = json.dumps(document).encode()
        fast = fast_call(body)
        assert fast is not None, name
        assert fast == decode_call(JSON_MEDIA, body), name
    fast = fast_call(json.dumps(ack_document()).encode())
    assert fast is not None
    assert fast.acknowledge.uuid == UUID


ODD: dict[str, bytes] = {
    **ODD_ACKS,
    "a double as a string": json.dumps(
        {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"failover_timeout": "60"}}}
    ).encode(),
    "a uint64 out of range": json.dumps(
        {
            "type": "ACCEPT",
            "accept": {
                "operations": [
                    {
                        "type": "LAUNCH",
                        "launch": {
                            "task_infos": [
                                {
                                    "resources": [
                                        {
                                            "name": "ports",
                                            "type": "RANGES",
                                            "ranges": {"range": [{"begin": -1, "end": 2}]},
                                        }
                                    ]
                                }
                            ]
                        },
                    }
                ]
            },
        }
    ).encode(),
    "a number as a boolean": json.dumps(
        {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "checkpoint": 1}}}
    ).encode(),
    "a boolean as a number": json.dumps(
        {
            "type": "SUBSCRIBE",
            "subscribe": {"framework_info": {"user": "u", "failover_timeout": True}},
        }
    ).encode(),
    "NaN": b'{"type": "SUBSCRIBE", "subscribe": {"framework_info": {"failover_timeout": NaN}}}',
    "a huge integer": b'{"type": "SUBSCRIBE", "subscribe": {"framework_info": {"failover_timeout":'
    b" 1" + b"0" * 400 + b"}}}",
    "an enum by number": b'{"type": 10, "framework_id": {"value": "f"}}',
    "a camelCase name": b'{"type": "REVIVE", "frameworkId": {"value": "f"}}',
    "a null": b'{"type": "REVIVE", "framework_id": null}',
    "a null in a list": b'{"type": "DECLINE", "decline": {"offer_ids": [null]}}',
    "a list for a message": b'{"type": "REVIVE", "framework_id": []}',
    "an object for a list": b'{"type": "DECLINE", "decline": {"offer_ids": {"value": "o"}}}',
    "a string for a message": b'{"type": "REVIVE", "framework_id": "f"}',
    "deep nesting": b'{"type": "REVIVE", "framework_id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "JSON whitespace around": b' \n\t{"type": "REVIVE", "framework_id": {"value": "f"}}\r\n ',
    "other space around": b'\x0b{"type": "REVIVE"}\x0c',
    "extra data": b'{"type": "REVIVE"} {}',
    "two documents": b'{"type": "REVIVE"}{"type": "KILL"}',
    "empty": b"",
    "only space": b"  ",
    "a NUL after": b'{"type": "REVIVE"}\x00',
    "UTF-16 with its mark": json.dumps({"type": "REVIVE"}).encode("utf-16"),
    "UTF-16 without": json.dumps({"type": "REVIVE"}).encode("utf-16-le"),
    "UTF-32": json.dumps({"type": "REVIVE"}).encode("utf-32-be"),
    "UTF-8 with its mark": b"\xef\xbb\xbf" + json.dumps({"type": "REVIVE"}).encode(),
    "an escaped ASCII letter": b'{"type": "REVIVE", "framework_id": {"value": "\\u0041"}}',
    "an escaped accent": b'{"type": "REVIVE", "framework_id": {"value": "t\\u00e2che"}}',
    "an escaped quote": b'{"type": "REVIVE", "framework_id": {"value": "a\\"b"}}',
    "a control character": b'{"type": "REVIVE", "framework_id": {"value": "a\tb"}}',
}


@pytest.mark.parametrize("body", ODD.values(), ids=list(ODD))
def test_any_other_body_is_read_alike_or_left_to_json_format(body: bytes) -> None:
    fast = fast_call(body)
    if fast is None:
        return
    assert fast == decode_call(JSON_MEDIA, body)


def test_json_whitespace_and_escapes_are_read_fast() -> None:
    for name in ("JSON whitespace around", "an escaped ASCII letter", "an escaped quote"):
        assert fast_call(ODD[name]) is not None, name


def test_url_safe_base64_without_padding_is_read_fast() -> None:
    fast = fast_call(ODD_ACKS["url-safe base64 without padding"])
    assert fast is not None
    assert fast.acknowledge.uuid == b"\xfb\xff" * 8


def route_only(server: MasterServer) -> httpx.AsyncClient:
    """A client of an application serving the scheduler API by its FastAPI route alone, over
    ``server``'s runtime (no fast path in front)."""
    app = FastAPI()
    app.include_router(scheduler_router(FollowerView(None), lambda: server.gate.runtime))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://route")


async def both(
    fast: httpx.AsyncClient, route: httpx.AsyncClient, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    """POST to the fast path and to the route; assert they answer alike; the fast answer."""
    fast_answer = await fast.post("/api/v1/scheduler", content=body, headers=headers)
    route_answer = await route.post("/api/v1/scheduler", content=body, headers=headers)
    assert (fast_answer.status_code, fast_answer.text) == (
        route_answer.status_code,
        route_answer.text,
    )
    for header in ("content-type", "content-length", "location", "allow"):
        assert fast_answer.headers.get(header) == route_answer.headers.get(header), header
    return fast_answer


@pytest.mark.parametrize(
    "bad", [b for b in BAD_REQUESTS if b.method == "POST"], ids=lambda b: b.name
)
def test_bad_requests_are_answered_alike(bad: Any) -> None:
    async def main() -> None:
        async with master_with_agent() as (server, _agent, base):
            async with (
                httpx.AsyncClient(base_url=base, timeout=30) as fast,
                route_only(server) as route,
            ):
                answer = await both(fast, route, bad.body, bad.headers)
            assert answer.status_code == bad.status
            assert server.core is not None
            assert not server.core.state.frameworks

    asyncio.run(main())


def test_acknowledgements_are_checked_and_relayed_alike() -> None:
    """Stream id absent or another's, unknown framework, agent or update, bad bodies: the same
    refusals from both, nothing relayed; a good ACKNOWLEDGE is 202 and reaches the agent."""

    async def main() -> None:
        async with master_with_agent() as (server, agent, base):
            assert server.http_address is not None
            scheduler = HttpScheduler(server.http_address)
            async with (
                httpx.AsyncClient(base_url=base, timeout=30) as fast,
                route_only(server) as route,
            ):
                try:
                    framework_id = await scheduler.subscribe()
                    await wait_for(lambda: bool(scheduler.offers()), "an offer")
                    offer = scheduler.offers()[0]
                    assert (await scheduler.send(launch_call(offer, "t1"))).ok
                    await wait_for(lambda: bool(agent.of("run_task")), "RunTask")
                    await agent.status_update(framework_id, "t1", mesos_pb2.TASK_RUNNING, UUID)
                    await wait_for(lambda: bool(scheduler.updates("t1")), "the update")
                    status = scheduler.updates("t1")[0]
                    good = ack_document(
                        framework_id={"value": framework_id},
                        agent_id={"value": status.agent_id.value},
                    )
                    json_headers = {"Content-Type": JSON_MEDIA}
                    ours = {**json_headers, "Mesos-Stream-Id": scheduler.stream_id}
                    refusals = [
                        (good, json_headers, 400, "'Mesos-Stream-Id' header"),
                        (good, {**json_headers, "Mesos-Stream-Id": "x"}, 400, "didn't match"),
                        (
                            ack_document(agent_id={"value": "no-such-agent"}),
                            ours,
                            400,
                            "Framework cannot be found",
                        ),
                        (
                            {**good, "framework_id": {"value": framework_id}},
                            {"Content-Type": "text/plain", "Mesos-Stream-Id": "x"},
                            415,
                            "application/json",
                        ),
                    ]
                    unknown_agent = ack_document(
                        framework_id={"value": framework_id}, agent_id={"value": "no-such-agent"}
                    )
                    refusals.append((unknown_agent, ours, 404, ""))
                    bad_uuid = ack_document(
                        framework_id={"value": framework_id},
                        agent_id={"value": status.agent_id.value},
                        uuid="@@@",
                    )
                    refusals.append((bad_uuid, ours, 400, ""))
                    for document, headers, code, says in refusals:
                        body = json.dumps(document).encode()
                        answer = await both(fast, route, body, headers)
                        assert answer.status_code == code, answer.text
                        assert says in answer.text
                    assert not agent.of("status_update_acknowledgement")
                    body = json.dumps(good).encode()
                    answer = await fast.post("/api/v1/scheduler", content=body, headers=ours)
                    assert (answer.status_code, answer.text) == (202, "")
                    await wait_for(
                        lambda: bool(agent.of("status_update_acknowledgement")), "the relay"
                    )
                    (relayed,) = agent.of("status_update_acknowledgement")
                    assert relayed.status_update_acknowledgement.uuid == UUID
                    assert relayed.status_update_acknowledgement.task_id.value == "t1"
                    revive = json.dumps(
                        {"type": "REVIVE", "framework_id": {"value": framework_id}}
                    ).encode()
                    answer = await both(fast, route, revive, ours)
                    assert answer.status_code == 202
                finally:
                    await scheduler.close()

    asyncio.run(main())


def test_the_master_app_serves_the_api_on_the_fast_path() -> None:
    """The master's application keeps the fast path as its entry, and the authentication gate
    hands it the requests it admitted (the comparisons above reach it through a master)."""
    app = create_app(FollowerView(None))
    fast = app.state.scheduler_fast_path
    assert isinstance(fast, SchedulerFastPath)
    assert fast.app is app
    assert not app.user_middleware  # No FastAPI or Starlette layer before it.
    security = MasterSecurity(MasterConfig(port=0, http_port=0, registry="memory"))
    assert BasicAuthMiddleware(app, security).app is fast
