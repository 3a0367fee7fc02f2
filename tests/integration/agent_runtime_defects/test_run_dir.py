"""An agent leaves no run directory behind (issue 10: each run left an empty
``/run/emporion-<hash>``). Real master, real agent; the run directory holds one directory per
live container and goes with the last one, and an agent that starts with nothing to recover
leaves none either."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from agent.isolation.selection import default_run_dir
from agent.runtime.main import isolation_root_name
from protos.v1 import mesos_pb2
from tests.integration.agent.conftest import StartAgent
from tests.integration.agent.raw_framework import MasterProcess, RawFramework
from tests.integration.agent.support import wait_until
from tests.integration.agent_runtime_defects.offers import launch_many


def _run_dir(work: Path) -> Path:
    return default_run_dir(isolation_root_name(work.resolve()))


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGUSR1])
def test_the_run_directory_goes_with_the_last_container_and_the_agent(
    real_master: MasterProcess, start_agent: StartAgent, tmp_path: Path, stop: signal.Signals
) -> None:
    agent = start_agent()
    run_dir = _run_dir(tmp_path / "work")
    framework = RawFramework(real_master.address)
    framework.subscribe()
    try:
        used: set[str] = set()
        launch_many(framework, 1, "sleep 3600", "t", used)
        framework.wait_state("t0", mesos_pb2.TASK_RUNNING)
        assert run_dir.is_dir()  # The live container's directory is in it.
        framework.kill("t0")
        framework.wait_state("t0", mesos_pb2.TASK_KILLED)
        wait_until(lambda: not run_dir.exists(), "the run directory to go with the container")
        launch_many(framework, 1, "true", "u", used)
        framework.wait_state("u0", mesos_pb2.TASK_FINISHED)
        assert agent.stop(stop) == 0
        assert not run_dir.exists()
    finally:
        framework.close()


def test_an_agent_with_nothing_to_do_leaves_no_run_directory(
    start_agent: StartAgent, tmp_path: Path
) -> None:
    agent = start_agent()
    assert agent.stop(signal.SIGTERM) == 0
    assert not _run_dir(tmp_path / "work").exists()
