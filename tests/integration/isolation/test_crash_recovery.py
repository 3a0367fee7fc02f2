"""A launch cut short by the agent's ``kill -9``: the restarted agent adopts it, or learns it
never ran.

A separate Python process plays the agent and is SIGKILLed at a chosen point of a launch (it
kills itself there, which is what makes the point exact): right after it sent the launch to its
fork server, before learning how the helper's setup went (so before it could record the
container; the server, reading end-of-file after the request, clones the helper and exits), or
just before starting the helper. A fresh isolation object in the test then plays the
restarted agent, which has no record of the container and calls ``find``.

Every mode is covered: cgroups with and without PID namespaces, and the posix fallback. The
helper always stays as the task's supervisor and records its exit status, so a task that ended
while the agent was down is reported with its real status in every mode.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.isolation import Isolation, procfs, select_isolation
from tests.integration.isolation.conftest import leftover_cgroups, marked_processes
from tests.integration.isolation.support import wait_exit, wait_for

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parents[3]

AGENT = """
import json, os, signal, sys
from pathlib import Path
from agent.isolation import ContainerLimits, LaunchSpec, select_isolation
from agent.isolation import launcher
args = json.loads(sys.argv[1])

def die(*_args, **_kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if args["die"] == "after_spawn":  # The helper runs; the agent never hears from it.
    launcher._read_status = die
else:  # Killed with everything prepared, before starting the helper.
    launcher.LaunchHelpers.start = die
isolation = select_isolation(args["mode"], args["root_name"], run_dir=Path(args["run_dir"]))
spec = LaunchSpec(args["id"], [args["command"]], args["env"], Path(args["sandbox"]),
                  ContainerLimits.from_resources(1, 64), shell=True,
                  namespaces=args["namespaces"])
isolation.launch(spec)
"""

MODES = [
    pytest.param(("auto", None), id="cgroups-namespaces"),
    pytest.param(("auto", False), id="cgroups"),
    pytest.param(("posix", False), id="posix"),
]

KilledAgent = Callable[[str, str], str]


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> tuple[str, bool | None]:
    value: tuple[str, bool | None] = request.param
    return value


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"


@pytest.fixture
def restarted(
    mode: tuple[str, bool | None], root_name: str, run_dir: Path, leak_check: None
) -> Iterator[Isolation]:
    """The restarted agent's isolation; at the end it destroys whatever a test left."""
    if os.geteuid() != 0:
        pytest.skip(f"cgroups need root; running as euid {os.geteuid()}")
    isolation = select_isolation(mode[0], root_name, run_dir=run_dir)  # type: ignore[arg-type]
    yield isolation
    isolation.cleanup_orphans(set())


@pytest.fixture
def killed_agent(
    mode: tuple[str, bool | None],
    root_name: str,
    run_dir: Path,
    tmp_path: Path,
    env: dict[str, str],
) -> KilledAgent:
    """Run a launch of ``command`` in an agent process SIGKILLed at ``die``; its id."""

    def _launch(command: str, die: str) -> str:
        container_id = f"c-{die}"
        sandbox = tmp_path / container_id
        sandbox.mkdir()
        args = {
            "mode": mode[0],
            "namespaces": mode[1],
            "root_name": root_name,
            "run_dir": str(run_dir),
            "id": container_id,
            "command": command,
            "env": env,
            "sandbox": str(sandbox),
            "die": die,
        }
        result = subprocess.run(
            [sys.executable, "-c", AGENT, json.dumps(args)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={"PYTHONPATH": str(REPO), "PATH": env["PATH"]},
        )
        assert result.returncode == -signal.SIGKILL, result.stderr
        return container_id

    return _launch


def test_a_launch_in_progress_is_adopted(
    killed_agent: KilledAgent, restarted: Isolation, root_name: str, tmp_path: Path
) -> None:
    container_id = killed_agent("echo started > out; exec sleep 300", "after_spawn")
    container = restarted.find(container_id)
    assert container is not None
    assert container.poll() is None
    wait_for((tmp_path / container_id / "out").exists)
    assert procfs.is_running(container.pid, container.start_time)
    assert container.supervised
    # The task's environment travels in the request only: no copy of it is on disk.
    assert container.run_dir is not None
    assert sorted(p.name for p in container.run_dir.iterdir()) == [
        "intent.json",
        "pids.json",
        "state.json",
    ]
    container.signal_all(signal.SIGTERM)
    info = wait_exit(container)
    assert info.signal == signal.SIGTERM  # Recorded by the helper, though not our child.
    container.destroy()
    wait_for(lambda: marked_processes(root_name) == [])
    assert leftover_cgroups(root_name) == []


def test_a_task_that_ended_while_the_agent_was_down_keeps_its_exit_status(
    killed_agent: KilledAgent, restarted: Isolation, tmp_path: Path
) -> None:
    container_id = killed_agent("exit 3", "after_spawn")
    wait_for((tmp_path / "run" / container_id / "exit_status").exists)
    container = restarted.find(container_id)
    assert container is not None
    info = wait_exit(container)
    assert (info.status, info.signal) == (3, None)
    assert info.message == "The command exited with status 3"
    container.destroy()


def test_a_launch_that_never_spawned_is_cleaned_up(
    killed_agent: KilledAgent, restarted: Isolation, root_name: str, run_dir: Path
) -> None:
    container_id = killed_agent("echo ran > out", "before_spawn")
    assert (run_dir / container_id / "intent.json").exists()
    assert restarted.find(container_id) is None
    assert not (run_dir / container_id).exists()
    assert leftover_cgroups(root_name) == []
    assert marked_processes(root_name) == []
