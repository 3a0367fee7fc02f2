"""End to end with the real master: a raw scheduler launches through offers onto a real agent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from protos.v1 import mesos_pb2
from tests.integration.agent.conftest import StartAgent, needs_root
from tests.integration.agent.raw_framework import Event, MasterProcess, RawFramework
from tests.integration.agent.support import processes_with


@pytest.fixture
def real_master(tmp_path: Path) -> Iterator[MasterProcess]:
    master = MasterProcess(tmp_path / "master")
    yield master
    master.stop()


@pytest.fixture
def master_address(real_master: MasterProcess) -> str:
    """Agents of these tests register with the real master."""
    return real_master.address


@pytest.fixture
def framework(real_master: MasterProcess) -> Iterator[RawFramework]:
    framework = RawFramework(real_master.address, checkpoint=True)
    framework.subscribe()
    yield framework
    framework.close()


def test_a_framework_runs_a_command_task_through_the_master(
    framework: RawFramework, start_agent: StartAgent
) -> None:
    start_agent()
    offer = framework.launch("t1", "echo hi")
    assert offer.hostname
    running = framework.wait_state("t1", mesos_pb2.TASK_RUNNING)
    assert running.agent_id == offer.agent_id
    finished = framework.wait_state("t1", mesos_pb2.TASK_FINISHED)
    assert finished.message == "Command exited with status 0"


def test_a_task_group_runs_under_the_default_executor_through_the_master(
    framework: RawFramework, start_agent: StartAgent
) -> None:
    start_agent()
    framework.launch_group("dex", {"a": "true", "b": "exit 2"})
    assert framework.wait_state("a", mesos_pb2.TASK_RUNNING).executor_id.value == "dex"
    framework.wait_state("b", mesos_pb2.TASK_RUNNING)
    failed = framework.wait_state("b", mesos_pb2.TASK_FAILED)
    assert failed.message == "Command exited with status 2"
    # 'a' finished or was killed with its group, depending on which ended first.
    framework.wait_for(
        lambda: any(
            s.state in (mesos_pb2.TASK_FINISHED, mesos_pb2.TASK_KILLED)
            for s in framework.updates("a")
        ),
        "the end of a",
    )
    # The executor ended with its tasks: the master tells the framework.
    framework.wait_for(
        lambda: any(e.failure.executor_id.value == "dex" for e in framework.of(Event.FAILURE)),
        "the executor's end",
    )


def test_a_kill_from_the_framework_reaches_the_task(
    framework: RawFramework, start_agent: StartAgent, tmp_path: Path
) -> None:
    start_agent()
    marker = f"e2e-kill-{tmp_path.name}"
    framework.launch("t1", f"sleep 1000 # {marker}")
    framework.wait_state("t1", mesos_pb2.TASK_RUNNING)
    framework.kill("t1")
    framework.wait_state("t1", mesos_pb2.TASK_KILLED)
    assert processes_with(marker) == []


@pytest.mark.root
@needs_root
def test_an_agent_restart_keeps_the_task_with_the_real_master(
    framework: RawFramework, start_agent: StartAgent, tmp_path: Path
) -> None:
    marker = f"e2e-{tmp_path.name}"
    agent = start_agent()
    framework.launch("t1", f"while [ ! -f go ]; do sleep 0.02; done # {marker}")
    framework.wait_state("t1", mesos_pb2.TASK_RUNNING)
    agent.crash()
    assert processes_with(marker)
    start_agent()
    runs = tmp_path / "work" / "agents"
    next(runs.glob("*/frameworks/*/executors/t1/runs/latest")).joinpath("go").touch()
    finished = framework.wait_state("t1", mesos_pb2.TASK_FINISHED)
    assert finished.message == "Command exited with status 0"
