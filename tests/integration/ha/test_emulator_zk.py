"""Emulated agents given a ``zk://`` URL follow the leading master through ZooKeeper.

A real ZooKeeper server, real ``python -m master --zk`` processes, the agent emulator (one
ZooKeeper session for all its agents) and a framework on the SDK's ``zk://`` client: a crashed
leader, a frozen one, and ZooKeeper itself going away.
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from emporion.testing.agent_emulator import AgentEmulator
from emporion.testing.failover_job import FailoverFramework
from emporion.testing.master_processes import ZkMaster, probe
from emporion.testing.zookeeper import ZooKeeperCluster
from protos.v1 import mesos_pb2
from tests.integration.ha.conftest import WAIT, MasterFactory, wait_one_leader, wait_until

pytestmark = pytest.mark.zk

AGENTS = 20
TASKS = 4


def _emulator(zk_url: str) -> AgentEmulator:
    return AgentEmulator(
        zk_url,
        agents=AGENTS,
        resources="cpus:2;mem:1024;disk:1000",
        mode="run",
        backoff_min=0.05,
        backoff_max=0.5,
        tick_interval=0.05,
        register_timeout=WAIT,
        zk_session_timeout=2.0,
        reregister_spread=0.1,
    )


async def _all_with(emulator: AgentEmulator, master: ZkMaster) -> None:
    """Until every agent is registered with ``master``."""

    def done() -> bool:
        ids = emulator.agent_ids
        return len(ids) == AGENTS and all(emulator.master_of(a) == master.address for a in ids)

    await emulator.wait_for(done, WAIT)


def _tasks_run_on_their_agents(emulator: AgentEmulator, framework: FailoverFramework) -> None:
    for task_id in framework.task_ids:
        assert emulator.task_state(task_id) == mesos_pb2.TASK_RUNNING, task_id
    assert framework.terminal == {}


def test_agents_wait_for_a_leader_and_follow_a_new_one_after_kill_9(
    zk_url: str, zk_masters: MasterFactory
) -> None:
    async def body() -> None:
        emulator = _emulator(zk_url)
        await emulator.start(wait=False)  # No master yet: the agents wait for one.
        framework = FailoverFramework(zk_url, "follow", TASKS, suppress=True)
        try:
            assert emulator.agent_ids == []
            assert not emulator.leader
            masters = zk_masters(2)  # From this (the main) thread, which they die with.
            leader = await asyncio.to_thread(wait_one_leader, masters)
            await _all_with(emulator, leader)
            assert emulator.counters.registrations == AGENTS
            await framework.start()
            await framework.wait_running(WAIT)
            _tasks_run_on_their_agents(emulator, framework)

            leader.stop(signal.SIGKILL)
            new = await asyncio.to_thread(wait_one_leader, [m for m in masters if m is not leader])
            await _all_with(emulator, new)
            assert emulator.leader == new.address
            assert emulator.counters.reregistrations >= AGENTS
            await framework.wait_back(new.master_id, WAIT)
            assert framework.suppressed  # So the new leader offers it nothing.
            await framework.wait_tasks_back(WAIT)  # The new leader has them, from the agents.
            _tasks_run_on_their_agents(emulator, framework)
            emulator.validate()
        finally:
            await framework.close()
            await emulator.stop()

    asyncio.run(body())


def test_agents_leave_a_frozen_leader_at_once(zk_url: str, zk_masters: MasterFactory) -> None:
    # A ping a minute: an agent would notice the frozen leader's silence only after minutes,
    # longer than the test waits. Only the leader change, which ends every session at once,
    # brings the agents to the new leader in time.
    masters = zk_masters(2, extra_args=("--agent-ping-timeout", "60secs"))
    old = wait_one_leader(masters)
    new = next(m for m in masters if m is not old)

    async def body() -> None:
        emulator = _emulator(zk_url)
        async with emulator:
            await _all_with(emulator, old)
            old.pause()  # Past its session timeout: ZooKeeper deletes its candidacy.
            try:
                await _all_with(emulator, new)
                assert emulator.counters.reregistrations == AGENTS
            finally:
                old.resume()
            emulator.validate()

    asyncio.run(body())
    assert wait_one_leader(masters) is new


def test_agents_keep_their_tasks_while_zookeeper_is_down(
    zk_url: str, zk_masters: MasterFactory, zk_server: ZooKeeperCluster
) -> None:
    masters = zk_masters(2)
    wait_one_leader(masters)

    async def body() -> None:
        emulator = _emulator(zk_url)
        framework = FailoverFramework(zk_url, "outage", TASKS)
        async with emulator:
            await framework.start()
            try:
                await framework.wait_running(WAIT)
                zk_server.kill(1)  # The only server: no master may lead.

                def none_leads() -> bool:
                    return not any(probe(m.address).leading for m in masters)

                await asyncio.to_thread(wait_until, none_leads, "every master to step down")
                _tasks_run_on_their_agents(emulator, framework)

                zk_server.restart(1)  # From the main thread, which it dies with.
                leader = await asyncio.to_thread(wait_one_leader, masters)
                await _all_with(emulator, leader)
                await framework.wait_back(leader.master_id, WAIT)
                await framework.wait_tasks_back(WAIT)
                _tasks_run_on_their_agents(emulator, framework)
                emulator.validate()
            finally:
                await framework.close()

    try:
        asyncio.run(body())
    finally:
        if zk_server.node(1).process is None:
            zk_server.restart(1)  # The next test of the module needs it.
