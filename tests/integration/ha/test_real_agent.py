"""A real agent (``python -m agent --master zk://...``) follows the leading master.

Real ZooKeeper (a standalone server, or a three-server ensemble), real ``python -m master --zk``
processes, a real agent with ``--isolation posix`` running a command task that ends when the
test creates a file, and a framework on the SDK's ``zk://`` client. After each test the agent is
shut down (its tasks killed) and the test fails if a process of its work directory is left.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from emporion.testing.failover_job import FailoverFramework
from emporion.testing.master_processes import ZkMaster, probe
from emporion.testing.zookeeper import ZooKeeperCluster, ZooKeeperUnavailableError
from protos.v1 import mesos_pb2
from tests.integration.agent.support import AgentProcess, processes_with
from tests.integration.ha.conftest import WAIT, MasterFactory, wait_one_leader, wait_until

pytestmark = pytest.mark.zk

REREGISTERED = "Reregistered with the master"
StartAgent = Callable[[str], AgentProcess]


@pytest.fixture
def start_agent(tmp_path: Path) -> Iterator[StartAgent]:
    """``start_agent(zk_url)``: a real agent following the leader; stopped and leak-checked."""
    started: list[AgentProcess] = []
    work = tmp_path / "work"

    def start(zk_url: str) -> AgentProcess:
        extra = ("--zk-session-timeout", "2s")
        agent = AgentProcess(zk_url, work, extra, isolation="posix")
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()
    marker = str(work)
    logs = "\n".join(agent.log() for agent in started)
    try:
        wait_until(lambda: not processes_with(marker), "task processes to end", 15)
    except pytest.fail.Exception:
        pytest.fail(f"processes left: {processes_with(marker)}\n{logs[-8000:]}")
    # Every stream the agent gave up on (refused, or left for a new leader) was wound down.
    for sign in ("Task was destroyed but it is pending", "Task exception was never retrieved"):
        assert sign not in logs


@pytest.fixture(scope="module")
def zk_ensemble() -> Iterator[ZooKeeperCluster]:
    """A three-server ensemble for the module."""
    try:
        cluster = ZooKeeperCluster(3)
    except ZooKeeperUnavailableError as error:
        pytest.skip(f"ZooKeeper unavailable: {error}")
    try:
        try:
            cluster.start()
        except ZooKeeperUnavailableError as error:
            pytest.skip(f"ZooKeeper would not start: {error}")
        yield cluster
    finally:
        cluster.close()


def _masters(zk_url: str, tmp_path: Path, count: int) -> list[ZkMaster]:
    masters = [ZkMaster(zk_url, tmp_path, name=f"master{i}") for i in range(count)]
    for master in masters:
        master.start()
    return masters


def _restart_all(ensemble: ZooKeeperCluster) -> None:
    """Start every server again, from this thread (each dies with the thread that started it).

    ``restart`` waits until its server serves, which a server of an ensemble does only once a
    quorum runs, so the others are spawned first.
    """
    first, *others = ensemble.nodes
    for node in others:
        ensemble._spawn(node)
    ensemble.restart(first.myid)
    for node in others:
        ensemble.wait_serving(node.myid)


def _waiting_task(tmp_path: Path) -> tuple[Path, str]:
    """A file and a command that runs until it exists."""
    done = tmp_path / "done"
    return done, f"while [ ! -e {done} ]; do sleep 0.1; done"


def test_the_agent_follows_a_new_leader_and_keeps_its_task(
    zk_url: str, zk_masters: MasterFactory, start_agent: StartAgent, tmp_path: Path
) -> None:
    masters = zk_masters(2)
    leader = wait_one_leader(masters)
    agent = start_agent(zk_url)
    done, command = _waiting_task(tmp_path)

    async def body() -> None:
        framework = FailoverFramework(zk_url, "follow", 1, command=command)
        await framework.start()
        try:
            await framework.wait_running(WAIT)
            assert REREGISTERED not in agent.log()
            leader.stop(signal.SIGKILL)
            new = await asyncio.to_thread(wait_one_leader, [m for m in masters if m is not leader])
            await asyncio.to_thread(
                wait_until, lambda: REREGISTERED in agent.log(), "the agent to reregister"
            )
            await framework.wait_back(new.master_id, WAIT)
            await framework.wait_tasks_back(WAIT)  # The new leader has the task, from the agent.
            assert framework.terminal == {}
            done.touch()
            await framework.wait_terminal("follow-0", mesos_pb2.TASK_FINISHED, WAIT)
        finally:
            await framework.close()

    asyncio.run(body())
    assert agent.process.poll() is None


def test_zookeeper_outages(
    zk_ensemble: ZooKeeperCluster, start_agent: StartAgent, tmp_path: Path
) -> None:
    zk_url = zk_ensemble.url(f"/emporion-ha-{uuid.uuid4().hex[:12]}")
    masters = _masters(zk_url, tmp_path, 2)
    try:
        leader = wait_one_leader(masters)
        agent = start_agent(zk_url)
        done, command = _waiting_task(tmp_path)

        async def body() -> None:
            framework = FailoverFramework(zk_url, "outage", 1, command=command)
            await framework.start()
            try:
                await framework.wait_running(WAIT)
                # One server of three lost: the quorum stands, nothing changes.
                lost = zk_ensemble.leader_id() or 1
                zk_ensemble.kill(lost)
                await framework.wait_tasks_back(WAIT)
                assert await asyncio.to_thread(wait_one_leader, masters) is leader
                zk_ensemble.restart(lost)

                # All of ZooKeeper down: no master leads; the agent keeps its task.
                for node in zk_ensemble.nodes:
                    zk_ensemble.kill(node.myid)

                def none_leads() -> bool:
                    answers = [probe(m.address) for m in masters]
                    return not any(a.leading for a in answers)

                await asyncio.to_thread(wait_until, none_leads, "every master to step down")
                assert not probe(leader.address).leading
                assert processes_with(str(agent.work_dir))
                assert framework.terminal == {}
                reregistered = agent.log().count(REREGISTERED)

                # ZooKeeper back: a leader again, the agent reregisters with its task.
                _restart_all(zk_ensemble)
                await asyncio.to_thread(wait_one_leader, masters)
                await asyncio.to_thread(
                    wait_until,
                    lambda: agent.log().count(REREGISTERED) > reregistered,
                    "the agent to reregister",
                )
                await framework.wait_tasks_back(WAIT)
                assert framework.terminal == {}
                done.touch()
                await framework.wait_terminal("outage-0", mesos_pb2.TASK_FINISHED, WAIT)
            finally:
                await framework.close()

        asyncio.run(body())
        assert agent.process.poll() is None
    finally:
        for master in masters:
            master.close()
