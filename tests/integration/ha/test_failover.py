"""A job across a crashed leader: a new master leads, the frameworks (``zk://`` URL) and the
emulated agents come back to it, no task is lost.

Real ``python -m master --zk`` processes and a real ZooKeeper server.
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from emporion.testing.agent_emulator import AgentEmulator
from emporion.testing.failover_job import FailoverFramework
from emporion.testing.master_processes import ZkMaster, probe
from master.registry.zookeeper import ZooKeeperRegistry
from protos.leader_info import parse_zk_url
from protos.leader_zk import KazooZnodeStore, zookeeper_client
from tests.integration.ha.conftest import WAIT, MasterFactory, wait_one_leader, wait_until

pytestmark = pytest.mark.zk

AGENTS = 3
FRAMEWORKS = 2
TASKS = 2


def _emulator(masters: list[ZkMaster]) -> AgentEmulator:
    return AgentEmulator(
        [m.address for m in masters],
        agents=AGENTS,
        resources="cpus:2;mem:1024;disk:1000",
        mode="run",
        backoff_min=0.05,
        backoff_max=0.5,
        tick_interval=0.05,
        register_timeout=WAIT,
    )


def test_kill_9_of_the_leader_loses_no_task(zk_url: str, zk_masters: MasterFactory) -> None:
    masters = zk_masters(3)
    leader = wait_one_leader(masters)

    async def body() -> None:
        frameworks = [FailoverFramework(zk_url, f"ha{i}", TASKS) for i in range(FRAMEWORKS)]
        async with _emulator(masters) as emulator:
            for framework in frameworks:
                await framework.start()
            try:
                for framework in frameworks:
                    await framework.wait_running(WAIT)
                    assert framework.subscriptions[-1].master_info is not None
                    assert framework.subscriptions[-1].master_info.id == leader.master_id
                leader.stop(signal.SIGKILL)
                rest = [m for m in masters if m is not leader]
                new = await asyncio.to_thread(wait_one_leader, rest)
                for framework in frameworks:
                    await framework.wait_back(new.master_id, WAIT)
                    await framework.wait_tasks_back(WAIT)
                    assert framework.terminal == {}
                    assert framework.client.framework_id is not None
                    assert framework.subscriptions[0].framework_id == (
                        framework.subscriptions[-1].framework_id
                    )
                await emulator.wait_registered(WAIT)
                tasks = [t for f in frameworks for t in f.task_ids]
                assert all(emulator.task_state(t) is not None for t in tasks)
                emulator.validate()
            finally:
                for framework in frameworks:
                    await framework.close()

    asyncio.run(body())
    assert probe(new_leader_address(masters)).leading


def new_leader_address(masters: list[ZkMaster]) -> str:
    """The address of the one master still leading."""
    return wait_one_leader([m for m in masters if m.process is not None]).address


def test_a_frozen_leader_is_replaced_and_on_waking_neither_leads_nor_writes(
    zk_url: str, zk_masters: MasterFactory
) -> None:
    masters = zk_masters(2, session_timeout=2.0)
    old = wait_one_leader(masters)
    new = next(m for m in masters if m is not old)
    old.pause()  # Past its session timeout: ZooKeeper deletes its candidacy.
    assert wait_one_leader(masters) is new

    async def body() -> None:
        first = FailoverFramework(zk_url, "before-wake", 0)
        await first.start()
        try:
            await first.wait_back(new.master_id, WAIT)
            old.resume()

            def deposed() -> bool:
                answer = probe(old.address)
                return not answer.leading and answer.leader == new.address

            await asyncio.to_thread(wait_until, deposed, "the woken master refusing")
            # The new leader still writes the registry (compare-and-set on the version it
            # loaded): the woken master did not write under it, or this would fail.
            second = FailoverFramework(zk_url, "after-wake", 0)
            await second.start()
            try:
                await second.wait_back(new.master_id, WAIT)
                names = await asyncio.to_thread(_framework_names, zk_url)
                assert {"before-wake", "after-wake"} <= names
            finally:
                await second.close()
        finally:
            await first.close()

    asyncio.run(body())
    assert wait_one_leader(masters) is new
    assert "stepped down" in old.log_path.read_text()


def _framework_names(zk_url: str) -> set[str]:
    """The names of the frameworks in the ZooKeeper registry."""
    url = parse_zk_url(zk_url)
    client = zookeeper_client(url, session_timeout=5.0)
    client.start(timeout=WAIT)
    try:
        state = ZooKeeperRegistry(KazooZnodeStore(client), f"{url.path}/registry").load()
        return {record.info.name for record in state.frameworks.values()}
    finally:
        client.stop()
        client.close()
