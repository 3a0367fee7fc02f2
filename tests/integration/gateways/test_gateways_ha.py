"""Agent gateways under ZooKeeper: a real agent given ``zk://`` finds the leader's gateways
through ``agent_address`` in its MasterInfo, keeps its task when its gateway is killed or the
leader is, and reaches the new leader's gateways after a failover."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import pytest

from emporion.testing.failover_job import FailoverFramework
from emporion.testing.master_processes import ZkMaster
from protos.v1 import mesos_pb2
from tests.integration.ha.conftest import WAIT, MasterFactory, wait_one_leader, wait_until
from tests.integration.ha.test_real_agent import REREGISTERED, StartAgent

pytestmark = pytest.mark.zk


def kill_gateway(master: ZkMaster) -> None:
    """SIGKILL the master's one gateway process (its agents' streams break)."""
    assert master.process is not None
    found = subprocess.run(
        ["pgrep", "-P", str(master.process.pid), "-f", "master.gateway"],
        check=False,
        capture_output=True,
        text=True,
    )
    (pid,) = found.stdout.split()
    os.kill(int(pid), signal.SIGKILL)


def test_an_agent_on_zk_goes_through_the_leaders_gateways_and_survives_their_loss(
    zk_url: str, zk_masters: MasterFactory, start_agent: StartAgent, tmp_path: Path
) -> None:
    masters = zk_masters(2, extra_args=("--agent-gateways", "1"))
    leader = wait_one_leader(masters)
    agent = start_agent(zk_url)
    done = tmp_path / "done"
    command = f"while [ ! -e {done} ]; do sleep 0.1; done"

    def reregistered(more_than: int) -> None:
        wait_until(lambda: agent.log().count(REREGISTERED) > more_than, "the agent to reregister")

    async def body() -> None:
        framework = FailoverFramework(zk_url, "gateways", 1, command=command)
        await framework.start()
        try:
            await framework.wait_running(WAIT)
            # Its stream is held by the leader's gateway: killing that breaks it (a direct
            # stream to the master would not notice), and the agent comes back with its task.
            seen = agent.log().count(REREGISTERED)
            kill_gateway(leader)
            await asyncio.to_thread(reregistered, seen)
            await framework.wait_tasks_back(WAIT)
            # The leader dies: the new one's gateways take the agent, which keeps its task.
            seen = agent.log().count(REREGISTERED)
            leader.stop(signal.SIGKILL)
            new = await asyncio.to_thread(wait_one_leader, [m for m in masters if m is not leader])
            await asyncio.to_thread(reregistered, seen)
            await framework.wait_back(new.master_id, WAIT)
            await framework.wait_tasks_back(WAIT)
            seen = agent.log().count(REREGISTERED)
            kill_gateway(new)
            await asyncio.to_thread(reregistered, seen)
            await framework.wait_tasks_back(WAIT)
            assert framework.terminal == {}
            done.touch()
            await framework.wait_terminal("gateways-0", mesos_pb2.TASK_FINISHED, WAIT)
        finally:
            await framework.close()

    asyncio.run(body())
    assert agent.process.poll() is None
