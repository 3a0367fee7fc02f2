"""recover() after the agent died: reattach to a container whose parent is gone.

A separate Python process plays the agent: it launches a container, prints its state and
exits without cleaning up (as after ``kill -9``), so the container's process is no longer a
child of the test process, just as after a real agent restart.
"""

from __future__ import annotations

import dataclasses
import json
import os
import select
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.isolation import ContainerState, Isolation, procfs, select_isolation
from tests.integration.isolation.conftest import leftover_cgroups
from tests.integration.isolation.support import wait_for

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parents[3]
AGENT = """
import json, sys
from pathlib import Path
from agent.isolation import ContainerLimits, LaunchSpec, select_isolation
args = json.loads(sys.argv[1])
isolation = select_isolation("auto", args["root_name"], run_dir=Path(args["run_dir"]))
spec = LaunchSpec(args["id"], [args["command"]], args["env"], Path(args["sandbox"]),
                  ContainerLimits.from_resources(1, 64), shell=True)
print(isolation.launch(spec).state().to_json())
"""

LaunchElsewhere = Callable[[str], ContainerState]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"


@pytest.fixture
def launch_elsewhere(
    cgroup_isolation: Isolation, root_name: str, run_dir: Path, tmp_path: Path, env: dict[str, str]
) -> Iterator[LaunchElsewhere]:
    """Launch a shell command from a short-lived agent process; returns its state."""
    launched = 0

    def _launch(command: str) -> ContainerState:
        nonlocal launched
        launched += 1
        sandbox = tmp_path / f"sandbox{launched}"
        sandbox.mkdir()
        args = {
            "root_name": root_name,
            "run_dir": str(run_dir),
            "id": f"r{launched}",
            "command": command,
            "env": env,
            "sandbox": str(sandbox),
        }
        result = subprocess.run(
            [sys.executable, "-c", AGENT, json.dumps(args)],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
            env={"PYTHONPATH": str(REPO), "PATH": env["PATH"]},
        )
        return ContainerState.from_json(result.stdout)

    yield _launch
    # Whatever a test left running goes, as an agent would do at start.
    select_isolation("auto", root_name, run_dir=run_dir).cleanup_orphans(set())


def restarted(root_name: str, run_dir: Path) -> Isolation:
    return select_isolation("auto", root_name, run_dir=run_dir)


def wait_readable(fd: int, timeout_s: float = 5.0) -> None:
    try:
        ready, _, _ = select.select([fd], [], [], timeout_s)
        assert ready, "pidfd not readable in time"
    finally:
        os.close(fd)


def test_recover_gives_a_working_handle(
    launch_elsewhere: LaunchElsewhere, root_name: str, run_dir: Path
) -> None:
    state = launch_elsewhere("sleep 300 & exec sleep 300")
    assert procfs.is_running(state.pid, state.start_time)
    container = restarted(root_name, run_dir).recover(state)
    assert container is not None
    assert container.state() == state
    assert container.poll() is None
    assert (container.stats().pids_current or 0) >= 2
    fd = container.pidfd()
    assert fd is not None
    container.destroy()
    wait_readable(fd)  # a pidfd works for a process that is not our child
    assert not procfs.is_running(state.pid, state.start_time)
    assert not any(Path(path).exists() for path in state.cgroups)
    info = container.poll()
    assert info is not None
    assert (info.status, info.signal) == (None, None)  # killed, but not our child: unknown
    assert "exit status is unknown" in info.message


def test_recovered_container_reports_its_exit_status(
    launch_elsewhere: LaunchElsewhere, root_name: str, run_dir: Path
) -> None:
    state = launch_elsewhere("while [ ! -e go ]; do sleep 0.01; done; exit 7")
    container = restarted(root_name, run_dir).recover(state)
    assert container is not None
    fd = container.pidfd()
    assert fd is not None
    (Path(state.sandbox) / "go").touch()
    wait_readable(fd)
    info = container.poll()
    assert info is not None
    assert info.status == 7  # The helper, which stays as the task's parent, wrote it down.
    container.destroy()


def test_recover_of_an_ended_container_cleans_up(
    launch_elsewhere: LaunchElsewhere, root_name: str, run_dir: Path
) -> None:
    state = launch_elsewhere("exit 0")
    wait_for(lambda: not procfs.is_running(state.pid, state.start_time))
    assert restarted(root_name, run_dir).recover(state) is None
    assert leftover_cgroups(root_name) == []
    assert state.run_dir is not None
    assert not Path(state.run_dir).exists()


def test_pid_reuse_guard(launch_elsewhere: LaunchElsewhere, root_name: str, run_dir: Path) -> None:
    state = launch_elsewhere("exec sleep 300")
    # The same pid with another start time is another process: the container is gone.
    reused = dataclasses.replace(state, start_time=state.start_time + 1)
    assert restarted(root_name, run_dir).recover(reused) is None
    wait_for(lambda: not procfs.is_running(state.pid, state.start_time))
    assert leftover_cgroups(root_name) == []


def test_recover_refuses_another_isolation(
    launch_elsewhere: LaunchElsewhere, root_name: str, run_dir: Path
) -> None:
    state = dataclasses.replace(launch_elsewhere("exec sleep 300"), isolation="posix")
    with pytest.raises(ValueError, match="launched with posix isolation"):
        restarted(root_name, run_dir).recover(state)
