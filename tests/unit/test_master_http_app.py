"""master.http's app over a fake MasterView, through httpx.ASGITransport (no sockets).

Which master answers what: every master its health, version and metrics; the leader the rest;
a follower 307 to the same path and query on the leader, or 503 while none is known. Bad query
parameters get 400 naming them.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from master.core import Master, metrics_snapshot, roles_snapshot, state_summary
from master.http import NO_LEADER, create_app
from master.http.scheduler_api.version import MESOS_VERSION
from protos.v1 import mesos_pb2
from tests.unit.master.harness import Harness, accept_call, command_task

LEADER_ONLY = [
    "/master/state",
    "/master/state-summary",
    "/master/frameworks",
    "/master/slaves",
    "/master/tasks",
    "/master/roles",
    "/master/weights",
]
LEADER_ONLY_ALIASES = ["/master/state.json", "/state"]
"""Mesos's other names of /master/state (tests/unit/test_master_http_mesos.py)."""
EVERY_MASTER = [
    "/health",
    "/master/health",
    "/version",
    "/metrics/snapshot",
    "/metrics",
    "/master/redirect",
    "/master/flags",
    "/flags",
]
PER_CALL = ["/api/v1", "/api/v1/scheduler"]
"""Routes whose calls are classified one by one (tests/unit/test_operator_api.py; the scheduler
API, which redirects every call: tests/integration/scheduler_http)."""


@dataclass
class FakeView:
    """A MasterView whose leadership a test sets; records the threads it is read from."""

    master: Master | None = None
    leader: str | None = None
    master_id: str = "M"
    version: str = "1.2.3"
    start_time: float = 100.0
    elected_time: float | None = None
    threads: set[str] = field(default_factory=set)

    def leading_master(self) -> Master | None:
        self.threads.add(threading.current_thread().name)
        return self.master

    def leader_http_address(self) -> str | None:
        return self.leader


def leading_view() -> FakeView:
    """A leader (at 10.0.0.1:8080) with one agent running one task of one framework."""
    harness = Harness()
    agent = harness.register_agent()
    framework_id, stream_id = harness.subscribe()
    harness.allocate()
    offer = harness.offers(framework_id)[0]
    call = accept_call([offer.id.value], [command_task("t1", agent.agent_id)])
    harness.call(framework_id, stream_id, call)
    harness.status_update(agent, framework_id, "t1", mesos_pb2.TASK_RUNNING, b"\x01" * 16)
    return FakeView(harness.master, "10.0.0.1:8080", elected_time=101.0)


def app_of(view: FakeView) -> FastAPI:
    return create_app(view, clock=lambda: 160.0)


def get(app: FastAPI, *urls: str) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://master") as client:
            return [await client.get(url) for url in urls]

    return asyncio.run(run())


def json_of(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def test_every_master_reports_its_health_and_version() -> None:
    for view, leading in ((leading_view(), True), (FakeView(), False)):
        health, alias, version = get(app_of(view), "/health", "/master/health", "/version")
        assert json_of(health) == json_of(alias) == {"healthy": True, "leading": leading}
        assert json_of(version) == {
            "version": MESOS_VERSION,
            "emporion_version": "1.2.3",
            "master_id": "M",
        }


def test_the_leader_serves_its_state() -> None:
    view = leading_view()
    assert view.master is not None
    responses = get(app_of(view), *LEADER_ONLY)
    state, summary, frameworks, slaves, tasks, roles, weights = map(json_of, responses)
    assert state["id"] == view.master.master_id
    assert (state["start_time"], state["elected_time"], state["version"]) == (100.0, 101.0, "1.2.3")
    assert [t["id"] for t in state["frameworks"][0]["tasks"]] == ["t1"]
    assert summary == state_summary(view.master)
    assert frameworks["frameworks"] == state["frameworks"]
    assert slaves["slaves"] == state["slaves"]
    assert [t["id"] for t in tasks["tasks"]] == ["t1"]
    assert roles == roles_snapshot(view.master)
    assert weights == []


def test_every_leader_only_route_is_covered() -> None:
    """A route added later must be classified here, so followers never serve it by mistake."""
    paths = set(app_of(FakeView()).openapi()["paths"])
    assert paths == set(LEADER_ONLY) | set(LEADER_ONLY_ALIASES) | set(EVERY_MASTER) | set(PER_CALL)


@pytest.mark.parametrize("path", LEADER_ONLY + LEADER_ONLY_ALIASES)
def test_a_follower_redirects_to_the_same_path_and_query_on_the_leader(path: str) -> None:
    view = FakeView(leader="10.0.0.2:8081")
    [response] = get(app_of(view), f"{path}?x=y&limit=zz")
    assert response.status_code == 307
    # A follower does not judge the request (limit=zz is bad): the leader will.
    assert response.headers["location"] == f"http://10.0.0.2:8081{path}?x=y&limit=zz"
    assert response.json() == {
        "detail": "not the leading master; the leader is at http://10.0.0.2:8081/"
    }


@pytest.mark.parametrize("path", [*LEADER_ONLY, "/master/redirect"])
def test_without_a_known_leader_the_answer_is_503(path: str) -> None:
    [response] = get(app_of(FakeView()), path)
    assert json_of(response, 503) == {"detail": NO_LEADER}
    assert "location" not in response.headers


def test_master_redirect_points_at_the_leaders_root() -> None:
    [on_leader] = get(app_of(leading_view()), "/master/redirect")
    assert on_leader.status_code == 307
    assert on_leader.headers["location"] == "http://10.0.0.1:8080/"
    [on_follower] = get(app_of(FakeView(leader="[::1]:9000")), "/master/redirect?ignored=1")
    assert on_follower.status_code == 307
    assert on_follower.headers["location"] == "http://[::1]:9000/"


def test_metrics_are_answered_locally_by_every_master() -> None:
    view = leading_view()
    [leader] = get(app_of(view), "/metrics/snapshot")
    assert view.master is not None
    assert json_of(leader) == metrics_snapshot(view.master, now=160.0, start_time=100.0)
    [follower] = get(app_of(FakeView(leader="10.0.0.2:8081")), "/metrics/snapshot")
    assert json_of(follower) == {"master/elected": 0.0, "master/uptime_secs": 60.0}


def test_leadership_is_read_at_each_request() -> None:
    view = FakeView(leader="10.0.0.2:8081")
    app = app_of(view)
    [before] = get(app, "/master/state")
    view.master = leading_view().master
    [after] = get(app, "/master/state")
    assert (before.status_code, after.status_code) == (307, 200)


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        (
            "limit=x",
            "query parameter 'limit': input should be a valid integer, unable to parse string as"
            " an integer, got 'x'",
        ),
        (
            "offset=-1",
            "query parameter 'offset': input should be greater than or equal to 0, got '-1'",
        ),
        ("order=up", "query parameter 'order': input should be 'asc', 'des' or 'desc', got 'up'"),
        (
            "limit=-2&offset=q",
            "query parameter 'limit': input should be greater than or equal to 0, got '-2';"
            " query parameter 'offset': input should be a valid integer, unable to parse string"
            " as an integer, got 'q'",
        ),
    ],
)
def test_bad_parameters_are_400_naming_them(query: str, detail: str) -> None:
    [response] = get(app_of(leading_view()), f"/master/tasks?{query}")
    assert json_of(response, 400) == {"detail": detail}


def test_good_parameters_and_unknown_ones() -> None:
    view = leading_view()
    responses = get(
        app_of(view),
        "/master/tasks?limit=0",
        "/master/tasks?order=asc&offset=0&limit=5&framework_id=nope",
        "/master/tasks?order=desc&task_id=t1&whatever=1",
        "/master/frameworks?framework_id=nope",
        "/master/slaves?slave_id=nope",
    )
    assert [json_of(r) for r in responses] == [
        {"tasks": []},
        {"tasks": []},
        {"tasks": [json_of(responses[2])["tasks"][0]]},
        {"frameworks": [], "completed_frameworks": [], "unregistered_frameworks": []},
        {"slaves": [], "recovered_slaves": []},
    ]
    assert json_of(responses[2])["tasks"][0]["id"] == "t1"


def test_unknown_paths_are_json_404() -> None:
    [response] = get(app_of(leading_view()), "/master/nope")
    assert json_of(response, 404) == {"detail": "Not Found"}


def test_state_is_read_on_the_event_loop_thread() -> None:
    """Endpoints and the leader dependency are coroutines: never a worker thread, which would
    race the loop that owns the state."""
    view = leading_view()
    get(app_of(view), *LEADER_ONLY, "/health", "/metrics/snapshot")
    assert view.threads == {threading.current_thread().name}
