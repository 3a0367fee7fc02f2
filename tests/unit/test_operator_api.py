"""The v1 operator API (``POST /api/v1``) over the real state machine, through httpx.ASGITransport.

The harness drives the master (no I/O); steering calls run on it through ``operate``, as the
runtime runs them. Covers which master answers, the read calls and their paging, the steering
calls and their refusals, the history (a failed task leaves a trace) and ``GET /metrics``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from google.protobuf import json_format
from prometheus_client.parser import text_string_to_metric_families

from master.core import Effect, Master, Task
from master.core.operator_json import task_status_v1, task_v1
from master.http import NO_LEADER, create_app
from protos.resources import Resources
from protos.v1 import agent_internal_pb2, mesos_pb2
from protos.v1.scheduler_pb2 import Call
from tests.unit.master.harness import Capability, FakeAgent, Harness, accept_call, command_task
from tests.unit.test_master_http_app import FakeView

JSON = dict[str, Any]


class Cluster:
    """A harness with one agent and one framework, an app over it, and helpers."""

    def __init__(self, role: str = "*", capabilities: tuple[int, ...] = ()) -> None:
        self.harness = Harness()
        self.agent: FakeAgent = self.harness.register_agent(resources="cpus:4;mem:1024")
        info = self.harness.framework_info(roles=(role,), capabilities=capabilities)
        self.framework_id, self.stream_id = self.harness.subscribe(info)
        self.view = FakeView(self.harness.master, "10.0.0.1:8080", elected_time=101.0)
        self.app = create_app(self.view, clock=lambda: self.harness.now, operate=self.operate)

    def operate(self, action: Any) -> None:
        effects: list[Effect] = action(self.harness.master, self.harness.now)
        self.harness._record(effects)

    def launch(self, *task_ids: str, resources: str = "cpus:1;mem:128") -> None:
        self.harness.allocate()
        offer = self.harness.offers(self.framework_id)[-1]
        tasks = [command_task(t, self.agent.agent_id, resources) for t in task_ids]
        call = accept_call([offer.id.value], tasks, refuse_seconds=0)
        self.harness.call(self.framework_id, self.stream_id, call)

    def report(self, task_id: str, state: int, n: int, **fields: Any) -> None:
        self.harness.status_update(
            self.agent, self.framework_id, task_id, state, n.to_bytes(16, "big")
        )
        ack = Call(type=Call.ACKNOWLEDGE)
        ack.framework_id.value = self.framework_id
        ack.acknowledge.agent_id.value = self.agent.agent_id
        ack.acknowledge.task_id.value = task_id
        ack.acknowledge.uuid = n.to_bytes(16, "big")
        self.harness.call(self.framework_id, self.stream_id, ack)


def post(
    app: FastAPI, *bodies: Any, content_type: str = "application/json"
) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://master") as client:
            out = []
            for body in bodies:
                if isinstance(body, str | bytes):
                    out.append(
                        await client.post(
                            "/api/v1", content=body, headers={"content-type": content_type}
                        )
                    )
                else:
                    out.append(await client.post("/api/v1", json=body))
            return out

    return asyncio.run(run())


def call(app: FastAPI, body: JSON) -> JSON:
    [response] = post(app, body)
    assert response.status_code == 200, response.text
    result: JSON = response.json()
    return result


def refused(app: FastAPI, body: Any, status: int) -> str:
    [response] = post(app, body)
    assert response.status_code == status, response.text
    detail: str = response.json()["detail"]
    return detail


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()


# -- which master answers -------------------------------------------------------------------------


def test_a_follower_answers_health_version_flags_metrics_and_redirects_the_rest() -> None:
    app = create_app(FakeView(None, "10.0.0.9:5050"), clock=lambda: 160.0)
    assert call(app, {"type": "GET_HEALTH"}) == {
        "type": "GET_HEALTH",
        "get_health": {"healthy": True},
    }
    assert call(app, {"type": "GET_VERSION"})["get_version"]["version_info"]["version"] == "1.2.3"
    metrics = call(app, {"type": "GET_METRICS"})["get_metrics"]["metrics"]
    assert {"name": "master/elected", "value": 0.0} in metrics
    for kind in ("GET_STATE", "GET_TASKS", "TEARDOWN", "SUBSCRIBE"):
        [response] = post(app, {"type": kind})
        assert response.status_code == 307
        assert response.headers["location"] == "http://10.0.0.9:5050/api/v1"
    nobody = create_app(FakeView(None, None))
    assert refused(nobody, {"type": "GET_AGENTS"}, 503) == NO_LEADER


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ("{", "body: not valid JSON"),
        ([], "call: must be an object"),
        ({}, "type: must be the name of a call"),
        ({"type": "GET_EVERYTHING"}, "type: unknown call 'GET_EVERYTHING'"),
        ({"type": "GET_TASKS", "get_agents": {}}, "call: unknown field 'get_agents'"),
        ({"type": "GET_TASKS", "get_tasks": {"limt": 5}}, "get_tasks: unknown field 'limt'"),
        ({"type": "GET_TASKS", "get_tasks": {"limit": -1}}, "get_tasks.limit: must be an integer"),
        ({"type": "GET_TASKS", "get_tasks": {"limit": 1001}}, "between 0 and 1000, got 1001"),
        ({"type": "GET_TASKS", "get_tasks": {"state": "RUNNING"}}, "get_tasks.state: unknown"),
        ({"type": "GET_TASKS", "get_tasks": {"order": "up"}}, "get_tasks.order: must be 'asc'"),
        ({"type": "GET_AGENTS", "get_agents": {"order_by": "x"}}, "get_agents.order_by: must"),
        ({"type": "GET_AGENTS", "get_agents": {"phase": "gone"}}, "get_agents.phase: must be"),
        ({"type": "GET_EXPLANATION"}, "get_explanation: exactly one of framework_id and role"),
        ({"type": "GET_UTILIZATION", "get_utilization": {"since": "x"}}, "since: must be"),
        ({"type": "TEARDOWN"}, "teardown.framework_id: is required"),
        ({"type": "TEARDOWN", "teardown": {"framework_id": {"value": 3}}}, "value: must be a"),
        ({"type": "UPDATE_WEIGHTS", "update_weights": {}}, "weight_infos: must be a non-empty"),
        (
            {"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [{"role": "a"}]}},
            "update_weights.weight_infos[0].weight: is required",
        ),
        (
            {
                "type": "UPDATE_WEIGHTS",
                "update_weights": {"weight_infos": [{"role": "a", "weight": -2}]},
            },
            "update_weights.weight_infos[0].weight: must be a positive number",
        ),
        (
            {
                "type": "UPDATE_QUOTA",
                "update_quota": {"quota_configs": [{"role": "a", "limits": {"cpus": 1}}]},
            },
            "update_quota.quota_configs[0].limits.cpus: must be an object",
        ),
        (
            {
                "type": "UPDATE_QUOTA",
                "update_quota": {
                    "quota_configs": [
                        {
                            "role": "a",
                            "guarantees": {"cpus": {"value": 4}},
                            "limits": {"cpus": {"value": 2}},
                        }
                    ]
                },
            },
            "update_quota.quota_configs[0]: quota for role 'a': guarantee cpus:4",
        ),
        ({"type": "MARK_AGENT_GONE", "mark_agent_gone": {}}, "mark_agent_gone.agent_id: is"),
    ],
)
def test_bad_calls_get_400_naming_the_field_and_change_nothing(
    cluster: Cluster, body: Any, detail: str
) -> None:
    before = call(cluster.app, {"type": "GET_STATE"})
    assert detail in refused(cluster.app, body, 400)
    assert call(cluster.app, {"type": "GET_STATE"}) == before


def test_only_json_is_taken(cluster: Cluster) -> None:
    [response] = post(cluster.app, "type=GET_HEALTH", content_type="text/plain")
    assert response.status_code == 415


# -- read calls -----------------------------------------------------------------------------------


def test_get_state_agents_frameworks_and_tasks_in_mesos_shapes(cluster: Cluster) -> None:
    cluster.launch("t1")
    cluster.harness.status_update(
        cluster.agent, cluster.framework_id, "t1", mesos_pb2.TASK_RUNNING, b"\x01" * 16
    )
    state = call(cluster.app, {"type": "GET_STATE"})["get_state"]
    [task] = state["get_tasks"]["tasks"]
    assert task["task_id"] == {"value": "t1"}
    assert task["framework_id"] == {"value": cluster.framework_id}
    assert task["state"] == "TASK_RUNNING"
    assert {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0}} in [
        {k: r[k] for k in ("name", "type", "scalar")} for r in task["resources"] if "scalar" in r
    ]
    assert [s["state"] for s in task["statuses"]] == ["TASK_STAGING", "TASK_RUNNING"]
    assert task["command"] == {"value": "true"}
    [framework] = state["get_frameworks"]["frameworks"]
    assert framework["framework_info"]["id"] == {"value": cluster.framework_id}
    assert framework["active"]
    assert framework["connected"]
    assert framework["summary"]["tasks"] == {"TASK_RUNNING": 1}
    assert framework["summary"]["allocated"]["cpus"] == 1.0
    [agent] = state["get_agents"]["agents"]
    assert agent["agent_info"]["hostname"] == "host1"
    assert agent["summary"]["total"]["cpus"] == 4.0
    assert agent["summary"]["allocated"]["cpus"] == 1.0
    assert agent["summary"]["tasks"] == 1
    master = call(cluster.app, {"type": "GET_MASTER"})["get_master"]
    assert master["master_info"]["id"] == "M"
    assert master["elected_time"] == 101.0


def test_get_tasks_filters_and_pages_on_the_server(cluster: Cluster) -> None:
    cluster.launch(*(f"task-{i:02}" for i in range(12)), resources="cpus:0.1;mem:16")
    for i in range(0, 12, 3):
        cluster.report(f"task-{i:02}", mesos_pb2.TASK_FINISHED, 100 + i)

    def page(**query: Any) -> JSON:
        result: JSON = call(cluster.app, {"type": "GET_TASKS", "get_tasks": query})["get_tasks"]
        return result

    everything = page(limit=1000)
    assert everything["total"] == 12
    assert len(everything["tasks"]) == 8
    assert len(everything["completed_tasks"]) == 4
    first = page(limit=5, order_by="id")
    assert first["total"] == 12
    # The page is the first five matches by id, handed back split into the lists.
    ids = [t["task_id"]["value"] for t in first["tasks"]]
    assert ids == ["task-01", "task-02", "task-04"]
    assert [t["task_id"]["value"] for t in first["completed_tasks"]] == ["task-00", "task-03"]
    second = page(limit=5, offset=5, order_by="id", order="desc")
    assert [t["task_id"]["value"] for t in second["tasks"]] == ["task-05", "task-04", "task-02"]
    assert [t["task_id"]["value"] for t in second["completed_tasks"]] == ["task-06", "task-03"]
    finished = page(state="TASK_FINISHED")
    assert finished["total"] == 4
    assert finished["tasks"] == []
    assert page(query="TASK-1")["total"] == 2  # task-10, task-11 (case-insensitive)
    assert page(task_id={"value": "task-03"})["completed_tasks"][0]["state"] == "TASK_FINISHED"
    assert page(agent_id="nope")["total"] == 0
    assert page(include=["tasks"])["total"] == 8
    [done] = page(task_id="task-00", max_statuses=1)["completed_tasks"]
    assert [s["state"] for s in done["statuses"]] == ["TASK_FINISHED"]
    [done] = page(task_id="task-00")["completed_tasks"]
    assert [s["state"] for s in done["statuses"]] == ["TASK_STAGING", "TASK_FINISHED"]
    # Unfiltered pages are read lazily in the master's order; a filter matching everything
    # (query "") takes the general path: both give the same pages.
    for order in ("asc", "desc"):
        for offset in (0, 3, 7, 11, 12):
            lazy = page(limit=4, offset=offset, order=order)
            general = page(limit=4, offset=offset, order=order, query="")
            assert lazy == general
    unpaged = call(cluster.app, {"type": "GET_TASKS"})["get_tasks"]
    assert unpaged["total"] == 12


def test_a_failed_task_leaves_a_trace(cluster: Cluster) -> None:
    cluster.launch("t1", "t2")
    for n, task_id in enumerate(("t1", "t2")):
        message_status = mesos_pb2.TaskStatus.REASON_COMMAND_EXECUTOR_FAILED
        harness = cluster.harness
        message = agent_internal_pb2.AgentMessage()
        update = message.status_update
        update.framework_id.value = cluster.framework_id
        update.status.task_id.value = task_id
        update.status.state = mesos_pb2.TASK_FAILED
        update.status.agent_id.value = cluster.agent.agent_id
        update.status.source = mesos_pb2.TaskStatus.SOURCE_EXECUTOR
        update.status.reason = message_status
        update.status.message = "Command exited with status 3"
        update.status.timestamp = harness.now
        update.status.uuid = (7 + n).to_bytes(16, "big")
        harness.agent_send(cluster.agent, message)
        ack = Call(type=Call.ACKNOWLEDGE)
        ack.framework_id.value = cluster.framework_id
        ack.acknowledge.agent_id.value = cluster.agent.agent_id
        ack.acknowledge.task_id.value = task_id
        ack.acknowledge.uuid = (7 + n).to_bytes(16, "big")
        harness.call(cluster.framework_id, cluster.stream_id, ack)
    tasks = call(cluster.app, {"type": "GET_TASKS"})["get_tasks"]
    assert tasks["tasks"] == []
    assert [t["state"] for t in tasks["completed_tasks"]] == ["TASK_FAILED", "TASK_FAILED"]
    last = tasks["completed_tasks"][0]["statuses"][-1]
    assert last["reason"] == "REASON_COMMAND_EXECUTOR_FAILED"
    assert last["message"] == "Command exited with status 3"
    assert last["source"] == "SOURCE_EXECUTOR"
    metrics = {
        m["name"]: m["value"]
        for m in call(cluster.app, {"type": "GET_METRICS"})["get_metrics"]["metrics"]
    }
    assert metrics["master/tasks_failed"] == 2.0
    assert metrics["master/tasks_finished"] == 0.0


# -- steering -------------------------------------------------------------------------------------


def test_teardown_keeps_the_framework_and_its_tasks_as_completed(cluster: Cluster) -> None:
    cluster.launch("t1")
    body = {"type": "TEARDOWN", "teardown": {"framework_id": {"value": cluster.framework_id}}}
    [response] = post(cluster.app, body)
    assert (response.status_code, response.content) == (200, b"")
    master: Master = cluster.harness.master
    assert cluster.framework_id not in master.state.frameworks
    frameworks = call(cluster.app, {"type": "GET_FRAMEWORKS"})["get_frameworks"]
    assert frameworks["frameworks"] == []
    [gone] = frameworks["completed_frameworks"]
    assert gone["summary"]["removal_reason"] == "torn down by the operator"
    [task] = call(cluster.app, {"type": "GET_TASKS"})["get_tasks"]["completed_tasks"]
    assert task["state"] == "TASK_KILLED"
    assert task["statuses"][-1]["reason"] == "REASON_FRAMEWORK_REMOVED"
    assert "already torn down" in refused(cluster.app, body, 409)
    unknown = {"type": "TEARDOWN", "teardown": {"framework_id": {"value": "nope"}}}
    assert "framework 'nope' is not registered" in refused(cluster.app, unknown, 404)


def test_weights_and_quota_are_set_read_back_and_persisted(cluster: Cluster) -> None:
    weights = {
        "type": "UPDATE_WEIGHTS",
        "update_weights": {"weight_infos": [{"role": "eng", "weight": 2.5}]},
    }
    assert post(cluster.app, weights)[0].status_code == 200
    assert call(cluster.app, {"type": "GET_WEIGHTS"})["get_weights"] == {
        "weight_infos": [{"role": "eng", "weight": 2.5}]
    }
    assert cluster.harness.registry.load().weights == {"eng": 2.5}
    quota = {
        "type": "UPDATE_QUOTA",
        "update_quota": {
            "quota_configs": [
                {
                    "role": "eng",
                    "guarantees": {"cpus": {"value": 1}},
                    "limits": {"cpus": {"value": 2}},
                }
            ]
        },
    }
    assert post(cluster.app, quota)[0].status_code == 200
    assert call(cluster.app, {"type": "GET_QUOTA"})["get_quota"]["status"]["configs"] == [
        {"role": "eng", "guarantees": {"cpus": {"value": 1.0}}, "limits": {"cpus": {"value": 2.0}}}
    ]
    assert cluster.harness.registry.load().quotas["eng"].limits["cpus"].value == 2.0
    only_quota = {
        "type": "UPDATE_QUOTA",
        "update_quota": {"quota_configs": [{"role": "ops", "limits": {"mem": {"value": 512}}}]},
    }
    assert post(cluster.app, only_quota)[0].status_code == 200
    roles = {r["name"]: r for r in call(cluster.app, {"type": "GET_ROLES"})["get_roles"]["roles"]}
    assert roles["eng"]["quota"]["guarantee"] == {"cpus": 1.0}
    assert roles["eng"]["weight"] == 2.5
    assert roles["ops"]["quota"]["limit"] == {"mem": 512.0}  # listed for its quota alone


def test_a_limit_below_what_a_role_consumes_needs_force() -> None:
    cluster = Cluster(role="eng")
    cluster.launch("t1", resources="cpus:2;mem:128")
    body: JSON = {
        "type": "UPDATE_QUOTA",
        "update_quota": {"quota_configs": [{"role": "eng", "limits": {"cpus": {"value": 1}}}]},
    }
    detail = refused(cluster.app, body, 409)
    assert detail.startswith("update_quota.quota_configs[0].limits: role 'eng' already consumes")
    assert call(cluster.app, {"type": "GET_QUOTA"})["get_quota"]["status"]["configs"] == []
    body["update_quota"]["force"] = True
    assert post(cluster.app, body)[0].status_code == 200
    [config] = call(cluster.app, {"type": "GET_QUOTA"})["get_quota"]["status"]["configs"]
    assert config == {"role": "eng", "guarantees": {}, "limits": {"cpus": {"value": 1.0}}}


def test_mark_agent_gone_loses_its_tasks_and_refuses_its_return(cluster: Cluster) -> None:
    cluster.launch("t1")
    body = {
        "type": "MARK_AGENT_GONE",
        "mark_agent_gone": {"agent_id": {"value": cluster.agent.agent_id}},
    }
    assert post(cluster.app, body)[0].status_code == 200
    assert call(cluster.app, {"type": "GET_AGENTS"})["get_agents"]["agents"] == []
    [task] = call(cluster.app, {"type": "GET_TASKS"})["get_tasks"]["completed_tasks"]
    assert task["state"] == "TASK_LOST"
    assert cluster.agent.agent_id in cluster.harness.registry.load().gone
    assert [u.state for u in cluster.harness.updates(cluster.framework_id)][-1] == (
        mesos_pb2.TASK_LOST
    )
    assert post(cluster.app, body)[0].status_code == 200  # again: nothing changes
    unknown = {"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": "x"}}}
    assert "agent 'x' is unknown" in refused(cluster.app, unknown, 404)


def test_a_partition_aware_framework_hears_its_tasks_are_gone_by_operator() -> None:
    cluster = Cluster(capabilities=(Capability.PARTITION_AWARE,))
    cluster.launch("t1")
    agent_id = cluster.agent.agent_id
    body = {"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": agent_id}}}
    assert post(cluster.app, body)[0].status_code == 200
    [update] = [u for u in cluster.harness.updates(cluster.framework_id) if u.task_id.value == "t1"]
    assert update.state == mesos_pb2.TASK_GONE_BY_OPERATOR
    assert update.reason == mesos_pb2.TaskStatus.REASON_AGENT_REMOVED_BY_OPERATOR
    [task] = call(cluster.app, {"type": "GET_TASKS"})["get_tasks"]["completed_tasks"]
    assert task["state"] == "TASK_GONE_BY_OPERATOR"
    metrics = {
        m["name"]: m["value"]
        for m in call(cluster.app, {"type": "GET_METRICS"})["get_metrics"]["metrics"]
    }
    assert metrics["master/tasks_gone_by_operator"] == 1.0


def test_steering_without_a_state_owner_is_unavailable() -> None:
    harness = Harness()
    app = create_app(FakeView(harness.master, "10.0.0.1:8080"))
    body = {"type": "TEARDOWN", "teardown": {"framework_id": {"value": "F"}}}
    assert refused(app, body, 503) == "this master serves no steering calls"


# -- Emporion additions ---------------------------------------------------------------------------


def test_explanation_offers_and_utilization(cluster: Cluster) -> None:
    cluster.harness.allocate()
    offers = call(cluster.app, {"type": "GET_OFFERS", "get_offers": {"limit": 10}})["get_offers"]
    assert offers["total"] == 1
    [offer] = offers["offers"]
    assert offer["summary"]["resources"]["cpus"] == 4.0
    suppress = Call(type=Call.SUPPRESS)
    suppress.framework_id.value = cluster.framework_id
    cluster.harness.call(cluster.framework_id, cluster.stream_id, suppress)
    cluster.harness.allocate()
    explained = call(
        cluster.app,
        {"type": "GET_EXPLANATION", "get_explanation": {"framework_id": cluster.framework_id}},
    )["get_explanation"]
    assert [e["code"] for e in explained["explanations"]] == ["SUPPRESSED"]
    role = min(cluster.harness.master.state.frameworks[cluster.framework_id].roles)
    by_role = call(cluster.app, {"type": "GET_EXPLANATION", "get_explanation": {"role": role}})
    assert by_role["get_explanation"]["explanations"] == explained["explanations"]
    unknown = {"type": "GET_EXPLANATION", "get_explanation": {"framework_id": "nope"}}
    assert "is not registered" in refused(cluster.app, unknown, 404)
    history = cluster.harness.master.state.history
    history.utilization.sample(cluster.harness.master.state, cluster.harness.now - 10)
    usage = call(cluster.app, {"type": "GET_UTILIZATION"})["get_utilization"]
    assert usage["interval_seconds"] == 5.0
    assert [s["total"]["cpus"] for s in usage["samples"]] == [4.0, 4.0]
    since = {"type": "GET_UTILIZATION", "get_utilization": {"since": cluster.harness.now - 5}}
    assert len(call(cluster.app, since)["get_utilization"]["samples"]) == 1


def test_prometheus_metrics(cluster: Cluster) -> None:
    cluster.launch("t1")
    cluster.report("t1", mesos_pb2.TASK_FINISHED, 9)
    cluster.harness.master.state.history.allocation_cycles.observe(0.002)

    async def scrape() -> httpx.Response:
        transport = httpx.ASGITransport(app=cluster.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://master") as client:
            return await client.get("/metrics")

    response = asyncio.run(scrape())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    assert samples[("emporion_master_tasks_finished", ())] == 1.0
    assert samples[("emporion_master_elected", ())] == 1.0
    assert (
        samples[
            (
                "emporion_master_task_terminal_total",
                (("reason", ""), ("source", "SOURCE_EXECUTOR"), ("state", "TASK_FINISHED")),
            )
        ]
        == 1.0
    )
    assert samples[("emporion_master_allocation_cycle_seconds_count", ())] == 1.0
    assert samples[("emporion_master_allocation_cycle_seconds_bucket", (("le", "0.0025"),))] == 1.0
    role = min(cluster.harness.master.state.frameworks[cluster.framework_id].roles)
    assert samples[("emporion_master_role_weight", (("role", role),))] == 1.0


@pytest.mark.parametrize(
    "command",
    [
        mesos_pb2.CommandInfo(value="true"),
        mesos_pb2.CommandInfo(value="run", shell=False, arguments=["run", "-x"], user="u"),
        mesos_pb2.CommandInfo(value="y", uris=[mesos_pb2.CommandInfo.URI(value="http://x/y")]),
    ],
)
def test_a_tasks_command_is_mesos_json(command: mesos_pb2.CommandInfo) -> None:
    task = Task("t", "F", "A", None, "*", Resources.EMPTY, info=mesos_pb2.TaskInfo(name="t"))
    assert task.info is not None
    task.info.command.CopyFrom(command)
    expected = json_format.MessageToDict(command, preserving_proto_field_name=True)
    assert task_v1(task)["command"] == expected


def test_a_status_in_an_event_is_mesos_json() -> None:
    status = mesos_pb2.TaskStatus(
        state=mesos_pb2.TASK_FAILED,
        source=mesos_pb2.TaskStatus.SOURCE_EXECUTOR,
        reason=mesos_pb2.TaskStatus.REASON_COMMAND_EXECUTOR_FAILED,
        message="Command exited with status 3",
        timestamp=1700000000.5,
        uuid=b"\x01" * 16,
        healthy=False,
    )
    status.task_id.value = "t1"
    status.agent_id.value = "A"
    status.executor_id.value = "E"
    expected = json_format.MessageToDict(status, preserving_proto_field_name=True)
    assert task_status_v1(status) == expected
    status.data = b"not shown"
    assert task_status_v1(status) == expected
