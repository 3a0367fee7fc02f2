"""A container's exit status outlives the report of its exit, so an agent killed in between
still learns it after its restart (chaos agent_crash F1b: "its exit status is unknown").

The agent's container manager destroys an ended container, then reports its exit (which the
core records in the checkpoint). Before, the destroy removed the run directory, exit status
and all, first: an agent killed between the two found the container gone and its status lost.
Here, at the moment the exit is reported, a second manager over a fresh isolation (the
restarted agent) recovers the container from the state the first one recorded at launch.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.core import ContainerExit
from agent.isolation import Container, Isolation, select_isolation
from agent.runtime.containers import ContainerManager, PreparedLaunch
from protos.resources import Resources

pytestmark = pytest.mark.root


def test_a_restart_while_the_exit_is_reported_learns_the_exit_status(
    cgroup_isolation: Isolation, root_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    states: dict[str, dict[str, object]] = {}
    reported: list[ContainerExit] = []
    after_restart: list[ContainerExit | object] = []

    def launched(container_id: str, container: Container) -> None:
        states[container_id] = container.state().to_dict()

    def failed(container_id: str, message: str) -> None:
        raise AssertionError(f"launch of {container_id} failed: {message}")

    def exited(container_id: str, exit: ContainerExit) -> None:
        reported.append(exit)
        restarted = ContainerManager(
            select_isolation("auto", root_name, run_dir=tmp_path / "run"),
            None,
            launched,
            failed,
            lambda *_: None,
        )
        after_restart.append(restarted.recover(container_id, states[container_id]))

    async def body() -> None:
        manager = ContainerManager(cgroup_isolation, None, launched, failed, exited)
        launch = PreparedLaunch(
            "c1", ["exit 5"], True, env, sandbox, Resources.parse("cpus:0.1;mem:32"), None, []
        )
        manager.launch(launch)
        async with asyncio.timeout(30):
            while not reported:
                await manager.wait_idle()
                await asyncio.sleep(0.01)
            await manager.wait_idle()
        await manager.close()

    asyncio.run(body())
    assert [exit.status for exit in reported] == [5]
    assert after_restart == [ContainerExit(status=5, message="the command exited with status 5")]
    assert not (tmp_path / "run" / "c1").exists()
