"""Per-agent launch back-pressure (issue 10): thousands of launches asked of one agent at once.

One ACCEPT of 5,000 tasks of ``cpus:0.0001;mem:0.001`` used to make the agent stop answering
pings (the master marked it unreachable), keep creating containers for minutes after the
framework's TEARDOWN, and hold another framework's task in STAGING behind them. Real master,
real agent, real cgroups; nothing is timed: the tests assert what happens, not how fast.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from protos.v1 import mesos_pb2
from tests.integration.agent.conftest import StartAgent, needs_root
from tests.integration.agent.raw_framework import Call, Event, MasterProcess, RawFramework
from tests.integration.agent.support import wait_until
from tests.integration.agent_runtime_defects.offers import PER_ACCEPT, launch_many

FLOOD = 2000  # Two ACCEPTs at the master's default cap of 1,000 tasks each.
MAX_CONCURRENT = 2
STRAY = 50
"""How many more containers than counted when the TEARDOWN was sent may still appear: those
in progress then, and the few started before the agent read the message."""

pytestmark = [pytest.mark.root, needs_root]


def started_containers(work: Path, framework_id: str) -> int:
    """Containers the agent started for ``framework_id``: the sandboxes its launch helper wrote
    stderr into (a launch cancelled while queued leaves none)."""
    return sum(
        1 for _ in work.glob(f"agents/*/frameworks/{framework_id}/executors/*/runs/*/stderr")
    )


def agent_lacks(http: str, framework_id: str) -> bool:
    """Whether the agent's /state no longer lists ``framework_id`` (all its containers gone)."""
    with urllib.request.urlopen(f"http://{http}/state", timeout=30) as response:
        state = json.load(response)
    return all(f["id"] != framework_id for f in state["frameworks"])


def never_lost(framework: RawFramework) -> bool:
    lost = (mesos_pb2.TASK_LOST, mesos_pb2.TASK_UNREACHABLE, mesos_pb2.TASK_GONE_BY_OPERATOR)
    return not any(e.update.status.state in lost for e in framework.of(Event.UPDATE))


def test_a_flood_of_launches_neither_cuts_the_agent_off_nor_holds_up_another_framework(
    real_master: MasterProcess, start_agent: StartAgent, tmp_path: Path
) -> None:
    agent = start_agent(["--max-concurrent-launches", str(MAX_CONCURRENT)])
    work = tmp_path / "work"
    flood = RawFramework(real_master.address)
    flood.info.name = "flood"
    flood.subscribe()
    other = RawFramework(real_master.address)
    other.info.name = "other"
    try:
        launch_many(flood, FLOOD, "sleep 3600")
        other.subscribe()
        other.launch("small", "sleep 3600", "cpus:0.1;mem:32")
        # The other framework's task runs while the flood's launches still wait.
        other.wait_state("small", mesos_pb2.TASK_RUNNING)
        assert started_containers(work, flood.info.id.value) < FLOOD
        flood.wait_for(
            lambda: (
                sum(e.update.status.state == mesos_pb2.TASK_RUNNING for e in flood.of(Event.UPDATE))
                >= 20
            ),
            "some of the flood running",
        )
        before = started_containers(work, flood.info.id.value)
        flood.call("Teardown", Call(type=Call.TEARDOWN))
        # Every container of the flood goes; those still queued are never created.
        wait_until(lambda: agent_lacks(agent.http, flood.info.id.value), "the flood to go", 120)
        assert started_containers(work, flood.info.id.value) <= before + STRAY
        other.wait_state("small", mesos_pb2.TASK_RUNNING)
        assert never_lost(other)
        assert never_lost(flood)
        assert "is unreachable" not in real_master.log_path.read_text()
        assert "No ping from the master" not in agent.log()
    finally:
        flood.close()
        other.close()


def test_a_kill_of_a_queued_launch_ends_it_at_once_and_creates_nothing(
    real_master: MasterProcess, start_agent: StartAgent, tmp_path: Path
) -> None:
    start_agent(["--max-concurrent-launches", str(MAX_CONCURRENT)])
    work = tmp_path / "work"
    framework = RawFramework(real_master.address)
    framework.subscribe()
    try:
        launch_many(framework, PER_ACCEPT, "sleep 3600")
        last = f"t{PER_ACCEPT - 1}"
        kill = Call(type=Call.KILL)
        kill.kill.task_id.value = last
        framework.call("Kill", kill)
        killed = framework.wait_state(last, mesos_pb2.TASK_KILLED)
        assert killed.reason == mesos_pb2.TaskStatus.REASON_TASK_KILLED_DURING_LAUNCH
        assert [s.state for s in framework.updates(last)] == [mesos_pb2.TASK_KILLED]
        fw = framework.info.id.value
        # Nothing was made for it, not even its sandbox (a launch is prepared in its turn).
        assert not list(work.glob(f"agents/*/frameworks/{fw}/executors/{last}"))
        framework.call("Teardown", Call(type=Call.TEARDOWN))
    finally:
        framework.close()
