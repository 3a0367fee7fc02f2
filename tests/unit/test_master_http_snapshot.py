"""master.core.snapshot: the JSON views of the master's state behind the HTTP API.

Driven through the master's harness (real state machine, no I/O); every snapshot must survive
``json.dumps`` unchanged.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from master.config import MasterConfig
from master.core import (
    agents_snapshot,
    frameworks_snapshot,
    metrics_snapshot,
    roles_snapshot,
    state_snapshot,
    state_summary,
    tasks_snapshot,
    weights_snapshot,
)
from master.core.liveness import ping_interval
from master.core.snapshot import resources_json
from protos.resources import Resources
from protos.v1 import agent_internal_pb2, mesos_pb2
from protos.v1.scheduler_pb2 import Call
from tests.unit.master.harness import Capability, FakeAgent, Harness, accept_call, command_task

RESOURCES = "cpus:4;mem:4096;disk:1000;ports:[31000-32000];cpus(eng):1"


def roundtrip(value: Any) -> Any:
    """``value`` through JSON: it must be plain data."""
    text = json.dumps(value, allow_nan=False)
    assert json.loads(text) == value
    return value


def report(
    harness: Harness, agent: FakeAgent, framework_id: str, task_id: str, state: int, *, at: float
) -> None:
    """The agent reports ``task_id`` in ``state`` with status timestamp ``at``."""
    message = agent_internal_pb2.AgentMessage()
    status = message.status_update.status
    message.status_update.framework_id.value = framework_id
    status.task_id.value = task_id
    status.agent_id.value = agent.agent_id
    status.state = state  # type: ignore[assignment]
    status.timestamp = at
    status.uuid = int(at * 1000).to_bytes(16, "big")
    harness.agent_send(agent, message)


def launch(
    harness: Harness, agent: FakeAgent, framework_id: str, stream_id: str, *task_ids: str
) -> None:
    """Launch ``task_ids`` (cpus:1;mem:128 each) on ``agent``'s current offer to the framework."""
    harness.allocate()
    offer = [o for o in harness.offers(framework_id) if o.agent_id.value == agent.agent_id][-1]
    tasks = [command_task(t, agent.agent_id) for t in task_ids]
    harness.call(framework_id, stream_id, accept_call([offer.id.value], tasks, refuse_seconds=0))


@pytest.fixture
def cluster() -> tuple[Harness, FakeAgent, str, str]:
    """A master with weights eng=2, one agent (cpus(eng):1 reserved), one framework in role
    eng running t1, and an outstanding offer of the rest."""
    harness = Harness(config=MasterConfig(registry="memory", weights={"eng": 2.0}))
    agent = harness.register_agent(resources=RESOURCES)
    framework_id, stream_id = harness.subscribe(harness.framework_info(name="web", roles=("eng",)))
    launch(harness, agent, framework_id, stream_id, "t1")
    report(harness, agent, framework_id, "t1", mesos_pb2.TASK_RUNNING, at=10.0)
    harness.allocate()
    return harness, agent, framework_id, stream_id


def test_resources_json_is_mesos_summary() -> None:
    resources = Resources.parse(
        "cpus:2;mem:512;ports:[31010-31020,31000-31005];cpus(eng):1;disks:{b,a};cpus{REV}:0.5"
    )
    assert resources_json(resources) == {
        "cpus": 3.0,
        "gpus": 0.0,
        "mem": 512.0,
        "disk": 0.0,
        "cpus_revocable": 0.5,
        "ports": "[31000-31005, 31010-31020]",
        "disks": "{a, b}",
    }
    assert resources_json(Resources.EMPTY) == {"cpus": 0.0, "gpus": 0.0, "mem": 0.0, "disk": 0.0}
    # Sums stay exact (thousandths), as the scheduler's own arithmetic does.
    assert resources_json(Resources.parse("cpus:0.1") + Resources.parse("cpus:0.2"))["cpus"] == 0.3


def test_state_shows_agents_frameworks_tasks_and_offers(
    cluster: tuple[Harness, FakeAgent, str, str],
) -> None:
    harness, agent, framework_id, _ = cluster
    state = roundtrip(
        state_snapshot(harness.master, version="9.9", start_time=1.0, elected_time=2.0)
    )
    assert state["id"] == "M"
    assert state["version"] == "9.9"
    assert (state["start_time"], state["elected_time"]) == (1.0, 2.0)
    assert state["leader_info"]["id"] == "M"
    assert state["activated_slaves"] == 1
    assert state["unreachable_slaves"] == 0

    [slave] = state["slaves"]
    assert slave["id"] == agent.agent_id
    assert slave["active"]
    assert slave["phase"] == "connected"
    assert slave["resources"]["cpus"] == 5.0
    assert slave["used_resources"]["cpus"] == 1.0
    assert slave["used_resources"]["mem"] == 128.0
    assert slave["offered_resources"]["cpus"] == 4.0  # the rest, offered again
    assert slave["reserved_resources"] == {
        "eng": {"cpus": 1.0, "gpus": 0.0, "mem": 0.0, "disk": 0.0}
    }
    assert slave["unreserved_resources"]["ports"] == "[31000-32000]"

    [framework] = state["frameworks"]
    assert framework["id"] == framework_id
    assert framework["name"] == "web"
    assert framework["role"] == "eng"
    assert framework["active"]
    assert framework["connected"]
    assert framework["used_resources"]["cpus"] == 1.0
    assert framework["offered_resources"]["cpus"] == 4.0
    assert framework["resources"]["cpus"] == 5.0
    [task] = framework["tasks"]
    assert task == {
        "id": "t1",
        "name": "t1",
        "framework_id": framework_id,
        "executor_id": "",
        "slave_id": agent.agent_id,
        "state": "TASK_RUNNING",
        "resources": {"cpus": 1.0, "gpus": 0.0, "mem": 128.0, "disk": 0.0},
        "role": "eng",
        "statuses": [
            {"state": "TASK_STAGING", "timestamp": harness.now},
            {"state": "TASK_RUNNING", "timestamp": 10.0},
        ],
    }
    [offer] = framework["offers"]
    assert offer["framework_id"] == framework_id
    assert offer["slave_id"] == agent.agent_id
    assert offer["allocation_info"] == {"role": "eng"}
    assert offer["id"] in harness.master.state.offers


def test_a_filtered_view_names_only_what_was_asked(
    cluster: tuple[Harness, FakeAgent, str, str],
) -> None:
    harness, agent, framework_id, _ = cluster
    assert len(frameworks_snapshot(harness.master, framework_id)["frameworks"]) == 1
    assert frameworks_snapshot(harness.master, "nope")["frameworks"] == []
    assert len(agents_snapshot(harness.master, agent.agent_id)["slaves"]) == 1
    assert agents_snapshot(harness.master, "nope") == {"slaves": [], "recovered_slaves": []}


def test_unreachable_agents_and_their_tasks() -> None:
    harness = Harness()
    agent = harness.register_agent()
    info = harness.framework_info(capabilities=[Capability.PARTITION_AWARE])
    framework_id, stream_id = harness.subscribe(info)
    launch(harness, agent, framework_id, stream_id, "t1")
    report(harness, agent, framework_id, "t1", mesos_pb2.TASK_RUNNING, at=10.0)
    agent.responsive = False
    config = harness.config
    harness.advance(ping_interval(config) + config.agent_ping_deadline + config.agent_ping_timeout)
    state = roundtrip(state_snapshot(harness.master, version="", start_time=0, elected_time=None))
    assert "elected_time" not in state
    assert state["slaves"] == []
    assert state["unreachable_slaves"] == 1
    [framework] = state["frameworks"]
    assert framework["tasks"] == []
    assert [t["state"] for t in framework["unreachable_tasks"]] == ["TASK_UNREACHABLE"]
    metrics = metrics_snapshot(harness.master, now=0.0, start_time=0.0)
    assert metrics["master/slaves_unreachable"] == metrics["master/tasks_unreachable"] == 1.0
    assert metrics["master/slaves_active"] == metrics["master/cpus_total"] == 0.0


def test_agents_known_from_the_registry_are_listed_apart_until_they_return(
    cluster: tuple[Harness, FakeAgent, str, str],
) -> None:
    harness, agent, _, _ = cluster
    restarted = harness.restart()
    view = roundtrip(agents_snapshot(restarted.master))
    assert view["slaves"] == []
    assert view["recovered_slaves"] == [
        {"id": agent.agent_id, "hostname": "host1", "port": 5051, "attributes": {}}
    ]
    assert (
        state_snapshot(restarted.master, version="", start_time=0, elected_time=0)[
            "recovering_slaves"
        ]
        == 1
    )


def test_tasks_are_paged_by_launch_time(cluster: tuple[Harness, FakeAgent, str, str]) -> None:
    harness, agent, framework_id, stream_id = cluster
    for task_id in ("t2", "t3", "t4"):
        harness.advance(10.0)
        harness.pong_all(agent)
        launch(harness, agent, framework_id, stream_id, task_id)
    # Mesos orders by a task's first status: here STAGING, at launch.
    report(harness, agent, framework_id, "t2", mesos_pb2.TASK_FINISHED, at=harness.now)

    def ids(**kwargs: Any) -> list[str]:
        return [t["id"] for t in roundtrip(tasks_snapshot(harness.master, **kwargs))["tasks"]]

    assert ids() == ["t4", "t3", "t2", "t1"]
    assert ids(order="asc") == ["t1", "t2", "t3", "t4"]
    assert ids(limit=2) == ["t4", "t3"]
    assert ids(limit=2, offset=1) == ["t3", "t2"]
    assert ids(offset=10) == []
    assert ids(limit=0) == []
    assert ids(task_id="t3") == ["t3"]
    assert ids(framework_id="other") == []
    # Acknowledged, t2 is forgotten by the live state but listed from the history.
    call = harness_ack(framework_id, agent.agent_id, "t2", int(harness.now * 1000))
    harness.call(framework_id, stream_id, call)
    assert "t2" not in harness.master.state.frameworks[framework_id].tasks
    [t2] = roundtrip(tasks_snapshot(harness.master, task_id="t2"))["tasks"]
    assert t2["state"] == "TASK_FINISHED"
    assert [s["state"] for s in t2["statuses"]] == ["TASK_STAGING", "TASK_FINISHED"]
    assert ids() == ["t4", "t3", "t2", "t1"]


def harness_ack(framework_id: str, agent_id: str, task_id: str, stamp: int) -> Call:
    """The ACKNOWLEDGE of the update ``report`` sent with timestamp ``stamp`` / 1000."""
    call = Call(type=Call.ACKNOWLEDGE)
    call.framework_id.value = framework_id
    call.acknowledge.agent_id.value = agent_id
    call.acknowledge.task_id.value = task_id
    call.acknowledge.uuid = stamp.to_bytes(16, "big")
    return call


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": -1}, "limit must be >= 0"),
        ({"offset": -5}, "offset must be >= 0"),
        ({"order": "up"}, "order must be 'asc' or 'des'"),
    ],
)
def test_tasks_refuse_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tasks_snapshot(Harness().master, **kwargs)


def test_state_summary_counts_tasks_by_state(
    cluster: tuple[Harness, FakeAgent, str, str],
) -> None:
    harness, agent, framework_id, stream_id = cluster
    launch(harness, agent, framework_id, stream_id, "t2")
    summary = roundtrip(state_summary(harness.master))
    assert summary["hostname"] == "127.0.0.1"
    [slave] = summary["slaves"]
    assert (slave["TASK_RUNNING"], slave["TASK_STAGING"], slave["TASK_FAILED"]) == (1, 1, 0)
    assert slave["framework_ids"] == [framework_id]
    [framework] = summary["frameworks"]
    assert "tasks" not in framework
    assert (framework["TASK_RUNNING"], framework["TASK_STAGING"]) == (1, 1)
    assert framework["slave_ids"] == [agent.agent_id]


def test_roles_and_weights(cluster: tuple[Harness, FakeAgent, str, str]) -> None:
    harness, _, framework_id, _ = cluster
    [role] = roundtrip(roles_snapshot(harness.master))["roles"]
    assert role == {
        "name": "eng",
        "weight": 2.0,
        "quota": {"role": "eng", "guarantee": {}, "limit": {}, "consumed": {}},
        "resources": {"cpus": 5.0, "disk": 1000.0, "mem": 4096.0},
        "allocated": {"cpus": 1.0, "mem": 128.0},
        "offered": {"cpus": 4.0, "disk": 1000.0, "mem": 3968.0},
        "reserved": {"cpus": 1.0},
        "frameworks": [framework_id],
    }
    assert roundtrip(weights_snapshot(harness.master)) == [{"role": "eng", "weight": 2.0}]
    assert weights_snapshot(Harness().master) == []
