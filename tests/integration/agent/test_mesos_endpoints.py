"""What Mesos's tools read from an agent: ``/state`` (also ``/slave(1)/state``) in the shape of
Mesos's ``src/slave/http.cpp``, ``/metrics/snapshot`` with Mesos's ``slave/*`` names, and
``?jsonp=``; on a real agent process driven by a fake master."""

from __future__ import annotations

from typing import Any

import httpx

from protos.v1 import mesos_pb2
from tests.integration.agent.conftest import StartAgent
from tests.integration.agent.fake_master import FakeMaster
from tests.integration.agent.support import FW, command_task, run_task, wait_until

MESOS_AGENT_STATE = {
    "version",
    "start_time",
    "id",
    "pid",
    "hostname",
    "capabilities",
    "resources",
    "attributes",
    "flags",
    "frameworks",
    "completed_frameworks",
    "reserved_resources",
    "unreserved_resources",
}
MESOS_EXECUTOR = {
    "id",
    "name",
    "source",
    "container",
    "directory",
    "resources",
    "tasks",
    "queued_tasks",
    "completed_tasks",
}
MESOS_TASK = {"id", "name", "framework_id", "executor_id", "slave_id", "state", "resources"}


def get(http: str, path: str) -> Any:
    response = httpx.get(f"http://{http}{path}")
    assert response.status_code == 200, response.text
    return response.json()


def test_state_and_metrics_in_mesos_shape(master: FakeMaster, start_agent: StartAgent) -> None:
    agent = start_agent()
    master.session()
    master.send(run_task(command_task("t1", "sleep 30")))
    master.wait_and_ack("t1", mesos_pb2.TASK_RUNNING)

    state = get(agent.http, "/state")
    assert set(state) >= MESOS_AGENT_STATE, MESOS_AGENT_STATE - set(state)
    assert state == get(agent.http, "/slave(1)/state") | {"start_time": state["start_time"]}
    port = int(agent.http.rsplit(":", 1)[1])
    assert state["pid"] == f"slave(1)@{state['hostname']}:{port}"
    assert state["resources"]["cpus"] > 0
    assert "work_dir" in state["flags"]
    [framework] = state["frameworks"]
    assert framework["id"] == FW
    [executor] = framework["executors"]
    assert set(executor) >= MESOS_EXECUTOR, MESOS_EXECUTOR - set(executor)
    assert executor["directory"].endswith(f"/runs/{executor['container']}")
    [task] = executor["tasks"]
    assert set(task) >= MESOS_TASK, MESOS_TASK - set(task)
    assert (task["id"], task["state"], task["slave_id"]) == ("t1", "TASK_RUNNING", state["id"])

    metrics = get(agent.http, "/metrics/snapshot")
    assert metrics["slave/registered"] == 1.0
    assert metrics["slave/tasks_running"] == 1.0
    assert metrics["slave/executors_running"] + metrics["slave/executors_registering"] == 1.0
    assert metrics["slave/cpus_used"] > 0
    assert metrics["slave/cpus_total"] == state["resources"]["cpus"]

    master.send(run_task(command_task("t2", "exit 3")))
    master.wait_and_ack("t2", mesos_pb2.TASK_RUNNING)
    master.wait_and_ack("t2", mesos_pb2.TASK_FAILED)
    wait_until(lambda: get(agent.http, "/metrics/snapshot")["slave/tasks_failed"] == 1.0, "count")


def test_jsonp_on_the_agent(master: FakeMaster, start_agent: StartAgent) -> None:
    agent = start_agent()
    master.session()
    for path in ("/state", "/metrics/snapshot"):
        wrapped = httpx.get(f"http://{agent.http}{path}", params={"jsonp": "cb"})
        assert wrapped.status_code == 200
        assert wrapped.headers["content-type"].startswith("text/javascript")
        assert wrapped.text.startswith("cb(")
        refused = httpx.get(f"http://{agent.http}{path}", params={"jsonp": "alert(1)"})
        assert refused.status_code == 400
        assert "query parameter 'jsonp'" in refused.json()["detail"]
