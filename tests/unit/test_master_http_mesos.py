"""What Mesos's tools read from a master: the shape of ``/master/state`` field by field against
Mesos's ``src/master/readonly_handler.cpp`` (``state`` and ``SlaveWriter``), ``pid`` and
``leader_info`` on the HTTP port, ``/master/flags``, Mesos's other names of the state, and
``?jsonp=``."""

from __future__ import annotations

import json

from master.core import state_summary
from protos.mesos_json import jsonp, resources_json
from protos.resources import Resources
from tests.unit.test_master_http_app import FakeView, app_of, get, json_of, leading_view

MESOS_STATE_FIELDS = {
    # readonly_handler.cpp, the /state handler's calculateState (always written, or written
    # because Emporion has them: elected_time, leader, leader_info, flags).
    "version",
    "start_time",
    "elected_time",
    "id",
    "pid",
    "hostname",
    "capabilities",
    "activated_slaves",
    "deactivated_slaves",
    "unreachable_slaves",
    "leader",
    "leader_info",
    "flags",
    "slaves",
    "recovered_slaves",
    "frameworks",
    "completed_frameworks",
    "orphan_tasks",
    "unregistered_frameworks",
}
MESOS_AGENT_FIELDS = {
    # SlaveWriter: json(SlaveInfo) then these.
    "id",
    "hostname",
    "port",
    "attributes",
    "pid",
    "registered_time",
    "resources",
    "used_resources",
    "offered_resources",
    "reserved_resources",
    "unreserved_resources",
    "active",
    "deactivated",
    "version",
    "capabilities",
}
MESOS_FRAMEWORK_FIELDS = {
    # Summary<Framework> then FullFrameworkWriter.
    "id",
    "name",
    "used_resources",
    "offered_resources",
    "capabilities",
    "hostname",
    "webui_url",
    "active",
    "connected",
    "user",
    "failover_timeout",
    "checkpoint",
    "registered_time",
    "unregistered_time",
    "resources",
    "tasks",
    "unreachable_tasks",
    "completed_tasks",
    "offers",
    "executors",
}


def test_the_state_has_every_field_mesos_tools_read() -> None:
    view = leading_view()
    [response] = get(app_of(view), "/master/state")
    state = json_of(response)
    assert set(state) >= MESOS_STATE_FIELDS, MESOS_STATE_FIELDS - set(state)
    [agent] = state["slaves"]
    assert set(agent) >= MESOS_AGENT_FIELDS, MESOS_AGENT_FIELDS - set(agent)
    [framework] = state["frameworks"]
    assert set(framework) >= MESOS_FRAMEWORK_FIELDS, MESOS_FRAMEWORK_FIELDS - set(framework)
    assert framework["role"] == "*" or framework["roles"]


def test_pid_and_leader_info_name_the_http_port() -> None:
    view = leading_view()  # leads, serving HTTP on 10.0.0.1:8080
    state = json_of(get(app_of(view), "/master/state")[0])
    assert state["pid"] == state["leader"] == "master@10.0.0.1:8080"
    assert state["leader_info"]["port"] == 8080
    assert state["leader_info"]["address"]["port"] == 8080
    assert state["leader_info"]["pid"] == "master@10.0.0.1:8080"
    assert state["leader_info"]["id"] == state["id"]
    [agent] = state["slaves"]
    # The agent's libprocess name: its HTTP port, where its files and state are.
    assert agent["pid"] == f"slave(1)@{agent['hostname']}:{agent['port']}"


def test_flags_and_the_other_names_of_the_state() -> None:
    view = leading_view()
    app = app_of(view)
    state, json_name, root, flags, alias = get(
        app, "/master/state", "/master/state.json", "/state", "/master/flags", "/flags"
    )
    assert json_of(state)["id"] == json_of(json_name)["id"] == json_of(root)["id"]
    assert json_of(flags) == json_of(alias)
    assert "flags" in json_of(flags)
    # A follower answers its own flags (any master), and redirects the state.
    follower = FakeView(leader="10.0.0.2:8081")
    flags_there, state_there = get(app_of(follower), "/master/flags", "/state")
    assert flags_there.status_code == 200
    assert state_there.status_code == 307
    assert state_there.headers["location"] == "http://10.0.0.2:8081/state"


def test_jsonp_wraps_every_read_only_endpoint() -> None:
    view = leading_view()
    assert view.master is not None
    [summary] = get(app_of(view), "/master/state-summary?jsonp=angular.callbacks._0")
    assert summary.status_code == 200
    assert summary.headers["content-type"].startswith("text/javascript")
    body = summary.text
    assert body.startswith("angular.callbacks._0(")
    assert body.endswith(");")
    inner = body.removeprefix("angular.callbacks._0(").removesuffix(");")
    assert json.loads(inner) == state_summary(view.master)
    paths = ["/master/state", "/master/slaves", "/master/frameworks", "/master/tasks"]
    paths += ["/master/roles", "/master/weights", "/metrics/snapshot", "/master/flags"]
    responses = get(app_of(view), *(f"{p}?jsonp=cb" for p in paths))
    for path, response in zip(paths, responses, strict=True):
        assert response.status_code == 200, path
        assert response.text.startswith("cb("), path
        assert response.text.endswith(");"), path


def test_a_jsonp_callback_that_is_not_a_name_is_refused() -> None:
    view = leading_view()
    for callback in ("alert(1)//", "a b", "", "1abc", "a..b", "x" * 300):
        [response] = get(app_of(view), f"/master/state-summary?jsonp={callback}")
        assert response.status_code == 400, callback
        assert "query parameter 'jsonp'" in response.json()["detail"]


def test_resources_summary_is_mesos_shape() -> None:
    summary = resources_json(Resources.parse("cpus:2;mem:512;ports:[31000-31002,31003-31005]"))
    assert summary == {
        "cpus": 2.0,
        "gpus": 0.0,
        "mem": 512.0,
        "disk": 0.0,
        "ports": "[31000-31005]",
    }
    assert jsonp("f", "{}") == "f({});"


def test_leader_info_ip_is_the_http_address_in_network_order() -> None:
    view = leading_view()
    info = json_of(get(app_of(view), "/master/state")[0])["leader_info"]
    assert info["address"]["ip"] == "10.0.0.1"
    assert int(info["ip"]).to_bytes(4, "little") == bytes([10, 0, 0, 1])


MESOS_EXPORTER_MASTER_KEYS = {
    # What mesos_exporter's master collector reads (master.go), each group all or nothing.
    *(f"master/{r}_{k}" for r in ("cpus", "mem", "disk") for k in ("total", "used")),
    *(f"master/{r}_revocable_{k}" for r in ("cpus", "mem", "disk") for k in ("total", "used")),
    "master/elected",
    "master/uptime_secs",
    "master/slave_registrations",
    "master/slave_reregistrations",
    "master/slave_shutdowns_scheduled",
    "master/slave_shutdowns_canceled",
    "master/slave_shutdowns_completed",
    "master/slave_removals",
    "master/slaves_active",
    "master/slaves_inactive",
    "master/slaves_disconnected",
    "master/frameworks_active",
    "master/frameworks_inactive",
    "master/frameworks_disconnected",
    "master/outstanding_offers",
    *(f"master/tasks_{s}" for s in ("error", "failed", "finished", "killed", "lost")),
    *(f"master/tasks_{s}" for s in ("running", "staging", "starting")),
    "master/valid_framework_to_executor_messages",
    "master/invalid_framework_to_executor_messages",
    "master/valid_executor_to_framework_messages",
    "master/invalid_executor_to_framework_messages",
    "master/valid_status_update_acknowledgements",
    "master/invalid_status_update_acknowledgements",
    "master/valid_status_updates",
    "master/invalid_status_updates",
    "allocator/mesos/allocation_runs",
}


def test_the_metrics_mesos_exporter_reads_are_served_and_count() -> None:
    view = leading_view()
    assert view.master is not None
    metrics = json_of(get(app_of(view), "/metrics/snapshot")[0])
    assert set(metrics) >= MESOS_EXPORTER_MASTER_KEYS, MESOS_EXPORTER_MASTER_KEYS - set(metrics)
    assert metrics["master/slave_registrations"] == 1
    assert metrics["master/valid_status_updates"] == 1  # t1's TASK_RUNNING
    cycles = view.master.state.history.allocation_cycles
    for seconds in (0.001, 0.002, 0.003):
        cycles.observe(seconds)
    metrics = json_of(get(app_of(view), "/metrics/snapshot")[0])
    assert metrics["allocator/mesos/allocation_runs"] == 3
    assert metrics["allocator/mesos/allocation_run_ms/min"] == 1.0
    assert metrics["allocator/mesos/allocation_run_ms/max"] == 3.0
    assert metrics["allocator/mesos/allocation_run_ms/p50"] == 2.0
    assert abs(metrics["allocator/mesos/allocation_run_ms"] - 2.0) < 1e-9
