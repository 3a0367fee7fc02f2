"""What is particular to the HTTP form of the scheduler API: the stream's framing and encodings,
Mesos's JSON, and Mesos's answers to bad requests (each changing nothing)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from google.protobuf import json_format

from master.http import create_app
from master.runtime import MasterServer
from protos.v1 import scheduler_pb2
from tests.integration.master.clients import FakeAgent, quick_config, running_master, wait_for
from tests.integration.scheduler_http.clients import (
    JSON_MEDIA,
    PROTOBUF_MEDIA,
    Call,
    Event,
    HttpScheduler,
    RecordIODecoder,
    RecordIOError,
    default_info,
)
from tests.integration.scheduler_http.test_pymesos import ROOT

SUBSCRIBE = {
    "type": "SUBSCRIBE",
    "subscribe": {"framework_info": {"user": "tester", "name": "raw", "failover_timeout": 60}},
}


@asynccontextmanager
async def master_with_agent() -> AsyncIterator[tuple[MasterServer, FakeAgent, str]]:
    async with running_master(quick_config(http_port=0)) as server:
        assert server.http_address is not None
        agent = FakeAgent(server.address)
        try:
            await agent.register("cpus:2;mem:1024;ports:[31000-31009]")
            yield server, agent, f"http://{server.http_address}"
        finally:
            await agent.close()


def test_the_reference_decoder_reads_records_split_anywhere() -> None:
    decoder = RecordIODecoder()
    data = b"5\nhello0\n3\nabc"
    records = [record for i in range(len(data)) for record in decoder.feed(data[i : i + 1])]
    assert records == [b"hello", b"", b"abc"]
    assert decoder.pending == b""
    with pytest.raises(RecordIOError):
        RecordIODecoder().feed(b"x5\nhello")


@pytest.mark.parametrize("media", [JSON_MEDIA, PROTOBUF_MEDIA])
def test_the_stream_is_recordio_in_the_accepted_encoding(media: str) -> None:
    async def main() -> None:
        async with master_with_agent() as (server, _agent, _base):
            assert server.http_address is not None
            scheduler = HttpScheduler(server.http_address, media)
            try:
                await scheduler.subscribe()
                await wait_for(lambda: bool(scheduler.offers()), "an offer")
                await wait_for(lambda: bool(scheduler.of(Event.HEARTBEAT)), "a heartbeat")
                assert scheduler.headers is not None
                assert scheduler.headers["content-type"] == media
                assert scheduler.headers["transfer-encoding"] == "chunked"
                assert len(scheduler.stream_id) <= 128
                # Every byte received so far is whole records, re-read from scratch.
                again = RecordIODecoder()
                assert again.feed(scheduler.raw) == scheduler.records
                assert again.pending == scheduler.decoder.pending
                assert [e.type for e in scheduler.events][:2] == [Event.SUBSCRIBED, Event.OFFERS]
            finally:
                await scheduler.close()

    asyncio.run(main())


def test_json_events_are_mesos_json() -> None:
    """Field names as in the .proto, enums by name, 64-bit integers as numbers, bytes base64."""

    async def main() -> None:
        async with master_with_agent() as (server, _agent, _base):
            assert server.http_address is not None
            scheduler = HttpScheduler(server.http_address)
            try:
                await scheduler.subscribe()
                await wait_for(lambda: bool(scheduler.offers()), "an offer")
                subscribed, offers = (json.loads(r) for r in scheduler.records[:2])
                assert subscribed["type"] == "SUBSCRIBED"
                assert subscribed["subscribed"]["heartbeat_interval_seconds"] == 0.5
                assert subscribed["subscribed"]["framework_id"] == {"value": scheduler.framework_id}
                assert offers["type"] == "OFFERS"
                resources = {r["name"]: r for r in offers["offers"]["offers"][0]["resources"]}
                assert resources["cpus"]["type"] == "SCALAR"
                assert resources["cpus"]["scalar"] == {"value": 2.0}
                assert resources["ports"]["ranges"] == {"range": [{"begin": 31000, "end": 31009}]}
                # The same event, read by protobuf's own JSON parser, is the one sent.
                parsed = json_format.ParseDict(offers, scheduler_pb2.Event())
                assert parsed == scheduler.events[1]
            finally:
                await scheduler.close()

    asyncio.run(main())


@dataclass(frozen=True)
class Bad:
    """A bad request: its headers and body, the status and a part of the message expected."""

    name: str
    headers: dict[str, str]
    body: bytes
    status: int
    says: str
    method: str = "POST"


BAD_REQUESTS = [
    Bad("not json", {"Content-Type": JSON_MEDIA}, b"{nope", 400, "Failed to parse body into JSON"),
    Bad(
        "not a call",
        {"Content-Type": JSON_MEDIA},
        json.dumps({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": 7}}}).encode(),
        400,
        "Failed to convert JSON into Call protobuf",
    ),
    Bad(
        "an unknown type",
        {"Content-Type": JSON_MEDIA},
        b'{"type": "LAUNCH_ROCKETS"}',
        400,
        "LAUNCH_ROCKETS",
    ),
    Bad("a json array", {"Content-Type": JSON_MEDIA}, b"[]", 400, "expected a JSON object"),
    Bad("no type", {"Content-Type": JSON_MEDIA}, b"{}", 400, "Expecting 'type' to be present"),
    Bad(
        "no subscribe",
        {"Content-Type": JSON_MEDIA},
        b'{"type": "SUBSCRIBE"}',
        400,
        "subscribe",
    ),
    Bad(
        "not protobuf",
        {"Content-Type": PROTOBUF_MEDIA},
        b"\xff\xff\xff",
        400,
        "Failed to parse body into Call protobuf",
    ),
    Bad("no content type", {}, json.dumps(SUBSCRIBE).encode(), 400, "'Content-Type' to be present"),
    Bad(
        "another content type",
        {"Content-Type": "text/plain"},
        json.dumps(SUBSCRIBE).encode(),
        415,
        "application/json or application/x-protobuf",
    ),
    Bad(
        "an accept of neither",
        {"Content-Type": JSON_MEDIA, "Accept": "text/html"},
        json.dumps(SUBSCRIBE).encode(),
        406,
        "Expecting 'Accept' to allow",
    ),
    Bad(
        "a subscribe with a stream id",
        {"Content-Type": JSON_MEDIA, "Mesos-Stream-Id": "abc"},
        json.dumps(SUBSCRIBE).encode(),
        400,
        "should not include the 'Mesos-Stream-Id' header",
    ),
    Bad(
        "an unknown framework",
        {"Content-Type": JSON_MEDIA, "Mesos-Stream-Id": "abc"},
        b'{"type": "REVIVE", "framework_id": {"value": "nobody"}}',
        400,
        "Framework cannot be found",
    ),
    Bad(
        "no framework id",
        {"Content-Type": JSON_MEDIA},
        b'{"type": "REVIVE"}',
        400,
        "Expecting 'framework_id' to be present",
    ),
    Bad("a GET", {}, b"", 405, "Expecting one of { 'POST' }, but received 'GET'", "GET"),
]


@pytest.mark.parametrize("bad", BAD_REQUESTS, ids=[bad.name for bad in BAD_REQUESTS])
def test_bad_requests_get_mesos_answers_and_change_nothing(bad: Bad) -> None:
    async def main() -> None:
        async with master_with_agent() as (server, _agent, base):
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                response = await client.request(
                    bad.method, "/api/v1/scheduler", content=bad.body, headers=bad.headers
                )
            assert response.status_code == bad.status, response.text
            assert bad.says in response.text
            assert response.headers["content-type"].startswith("text/plain")
            if bad.status == 405:
                assert response.headers["allow"] == "POST"
            assert server.core is not None
            assert not server.core.state.frameworks

    asyncio.run(main())


def test_calls_of_a_framework_that_is_not_subscribed_are_403() -> None:
    async def main() -> None:
        async with master_with_agent() as (server, _agent, base):
            assert server.http_address is not None
            scheduler = HttpScheduler(server.http_address)
            framework_id = await scheduler.subscribe()
            stream_id = scheduler.stream_id
            await scheduler.close()  # The stream ends; the framework waits for its failover.
            assert server.core is not None
            core = server.core
            await wait_for(lambda: not core.state.frameworks[framework_id].connected, "gone")
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                revive = {"type": "REVIVE", "framework_id": {"value": framework_id}}
                response = await client.post(
                    "/api/v1/scheduler",
                    json=revive,
                    headers={"Mesos-Stream-Id": stream_id},
                )
            assert response.status_code == 403, response.text
            assert "Framework is not subscribed" in response.text

    asyncio.run(main())


def test_update_framework_is_200_and_others_202() -> None:
    async def main() -> None:
        async with master_with_agent() as (server, _agent, _base):
            assert server.http_address is not None
            scheduler = HttpScheduler(server.http_address)
            try:
                await scheduler.subscribe()
                update = Call(type=Call.UPDATE_FRAMEWORK)
                info = default_info()
                info.id.value = scheduler.framework_id
                info.name = "renamed"
                update.update_framework.framework_info.CopyFrom(info)
                outcome = await scheduler.send(update)
                assert (outcome.ok, outcome.code) == (True, 200)
                assert server.core is not None
                assert server.core.state.frameworks[scheduler.framework_id].info.name == "renamed"
                revive = Call(type=Call.REVIVE)
                revive.revive.SetInParent()
                assert (await scheduler.send(revive)).code == 202
            finally:
                await scheduler.close()

    asyncio.run(main())


@dataclass
class FollowerView:
    """A MasterView of a master that does not lead."""

    leader: str | None
    master_id: str = "F"
    version: str = "0.0.0"
    start_time: float = 0.0
    elected_time: float | None = None

    def leading_master(self) -> None:
        return None

    def leader_http_address(self) -> str | None:
        return self.leader


@pytest.mark.parametrize("path", ["/api/v1/scheduler", "/master/api/v1/scheduler"])
def test_a_follower_redirects_to_the_leader_or_says_no_leader(path: str) -> None:
    async def main() -> None:
        for leader, status in (("10.0.0.2:5051", 307), (None, 503)):
            app = create_app(FollowerView(leader))
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://f") as client:
                response = await client.post(path, json=SUBSCRIBE)
            assert response.status_code == status
            if leader is None:
                assert response.text == "No leader elected"
            else:
                assert response.headers["location"] == f"http://{leader}{path}"

    asyncio.run(main())


def test_fields_this_master_does_not_know_are_ignored_as_mesos_does() -> None:
    async def main() -> None:
        async with master_with_agent() as (server, _agent, base):
            subscribe = json.loads(json.dumps(SUBSCRIBE))
            subscribe["subscribe"]["framework_info"]["a_field_of_mesos_2"] = {"x": 1}
            async with (
                httpx.AsyncClient(base_url=base, timeout=30) as client,
                client.stream(
                    "POST",
                    "/api/v1/scheduler",
                    json=subscribe,
                    headers={"Accept": JSON_MEDIA},
                ) as response,
            ):
                assert response.status_code == 200
                decoder = RecordIODecoder()
                async for chunk in response.aiter_raw():
                    if records := decoder.feed(chunk):
                        assert json.loads(records[0])["type"] == "SUBSCRIBED"
                        break
            assert server.core is not None
            (framework,) = server.core.state.frameworks.values()
            assert framework.info.name == "raw"

    asyncio.run(main())


def test_a_master_stopping_ends_the_stream_cleanly() -> None:
    """SIGTERM with a subscription open: the stream ends (its last chunk sent), nothing is
    logged as an error, the master exits 0."""

    async def main() -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "master", "--port", "0", "--http-port", "0", "--registry", "memory"),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert process.stdout is not None
            assert process.stderr is not None
            line = (await process.stdout.readline()).decode()
            found = re.search(r"\(http (\S+)\)", line)
            assert found is not None, line
            async with (
                httpx.AsyncClient(base_url=f"http://{found.group(1)}", timeout=30) as client,
                client.stream(
                    "POST", "/api/v1/scheduler", json=SUBSCRIBE, headers={"Accept": JSON_MEDIA}
                ) as response,
            ):
                assert response.status_code == 200
                decoder = RecordIODecoder()
                records: list[bytes] = []
                async for chunk in response.aiter_raw():
                    records += decoder.feed(chunk)
                    if len(records) == 1:
                        process.send_signal(signal.SIGTERM)
                # The loop ended: the stream was closed with its terminating chunk.
                assert json.loads(records[0])["type"] == "SUBSCRIBED"
                assert decoder.pending == b""
            assert await asyncio.wait_for(process.wait(), 30) == 0
            errors = (await process.stderr.read()).decode()
            assert "Traceback" not in errors, errors
            assert "ERROR" not in errors, errors
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()

    asyncio.run(main())
