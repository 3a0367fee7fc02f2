"""A leading master cut off from ZooKeeper (a network partition) during a running job.

Real ZooKeeper, two real ``python -m master --zk`` processes, a real agent (``--isolation
posix``) running a command task, and a framework on the SDK's ``zk://`` client. The leader
reaches ZooKeeper through a :class:`~tests.zk.proxy.TcpProxy` that the test cuts; everything
else connects directly. The cut leader must stop leading at once (kazoo reports SUSPENDED),
before its session expires and the other master is elected, so two masters never lead at the
same time; the agent and the framework move to the new leader without the task being killed;
and when the partition heals the old leader comes back as a follower naming the new one.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from emporion.testing.failover_job import FailoverFramework
from emporion.testing.master_processes import ZkMaster, probe
from emporion.testing.zookeeper import ZooKeeperCluster
from protos.v1 import mesos_pb2
from tests.integration.agent.support import AgentProcess, processes_with
from tests.integration.ha.conftest import WAIT, wait_until
from tests.zk.proxy import TcpProxy

pytestmark = pytest.mark.zk

REREGISTERED = "Reregistered with the master"
SESSION_TIMEOUT = 2.0


@pytest.fixture
def proxy(zk_server: ZooKeeperCluster) -> Iterator[TcpProxy]:
    """A cuttable relay to the ZooKeeper server."""
    relay = TcpProxy(zk_server.node(1).client_port)
    yield relay
    relay.close()


def _sample_leaders(masters: list[ZkMaster]) -> list[str]:
    return [m.name for m in masters if probe(m.address, 2.0).leading]


def test_a_partitioned_leader_steps_down_and_the_job_goes_on(
    zk_server: ZooKeeperCluster, proxy: TcpProxy, tmp_path: Path
) -> None:
    path = f"/emporion-ha-{uuid.uuid4().hex[:12]}"
    direct_url = zk_server.url(path)
    cut_url = f"zk://{proxy.address}{path}"
    # The older candidate leads: start the one behind the proxy first.
    cut = ZkMaster(cut_url, tmp_path, session_timeout=SESSION_TIMEOUT, name="cut")
    other = ZkMaster(direct_url, tmp_path, session_timeout=SESSION_TIMEOUT, name="other")
    masters = [cut, other]
    agent: AgentProcess | None = None
    done = tmp_path / "done"
    try:
        cut.start()
        wait_until(lambda: probe(cut.address).leading, "the first master to lead")
        other.start()
        wait_until(lambda: probe(other.address).leader == cut.address, "the other to follow")
        agent = AgentProcess(
            direct_url,
            tmp_path / "work",
            ("--zk-session-timeout", f"{SESSION_TIMEOUT}s"),
            isolation="posix",
        )

        async def body() -> None:
            framework = FailoverFramework(
                direct_url, "split", 1, command=f"while [ ! -e {done} ]; do sleep 0.1; done"
            )
            await framework.start()
            try:
                await framework.wait_running(WAIT)
                proxy.cut()
                # Until the other master leads, at most one leads at any moment; the cut one
                # stops as soon as its connection is suspended.
                seen: list[list[str]] = []
                deadline = time.monotonic() + WAIT
                while True:
                    leading = await asyncio.to_thread(_sample_leaders, masters)
                    seen.append(leading)
                    assert len(leading) <= 1, f"two masters lead at once: {seen}"
                    if leading == ["other"]:
                        break
                    assert time.monotonic() < deadline, f"no new leader: {seen}"
                    await asyncio.sleep(0.05)
                assert not probe(cut.address).leading
                # The agent and the framework move over; the task was never killed.
                await asyncio.to_thread(
                    wait_until, lambda: REREGISTERED in agent.log(), "the agent to reregister"
                )
                await framework.wait_back(other.master_id, WAIT)
                await framework.wait_tasks_back(WAIT)
                assert framework.terminal == {}
                assert processes_with(str(agent.work_dir))

                # The partition heals: the old leader's session has expired, so it contends
                # again behind the new leader and follows it.
                proxy.restore()
                await asyncio.to_thread(
                    wait_until,
                    lambda: probe(cut.address).leader == other.address,
                    "the healed master to name the new leader",
                )
                assert _sample_leaders(masters) == ["other"]
                done.touch()
                await framework.wait_terminal("split-0", mesos_pb2.TASK_FINISHED, WAIT)
                assert framework.terminal == {"split-0": mesos_pb2.TASK_FINISHED}
            finally:
                await framework.close()

        asyncio.run(body())
        assert agent.process.poll() is None
    finally:
        if agent is not None:
            agent.stop()
            marker = str(agent.work_dir)
            wait_until(lambda: not processes_with(marker), "task processes to end", 15)
        for master in masters:
            if master.process is not None:
                master.stop(signal.SIGTERM)
            master.close()
