"""A new leader holds offers back while the agents its registry admits are still away.

Real ZooKeeper, real ``python -m master --zk`` processes and emulated agents: two of five agents
are lost before the leader is killed, so the new leader sees three of the five it expects and
stays paused (``allocator/recovery_paused`` 1 in ``/metrics/snapshot``, and a framework asking
why it gets nothing is told ``RECOVERY_PAUSED``); one lost agent coming back makes four, 80 %,
and once no other comes for an allocation interval the pause ends.
"""

from __future__ import annotations

import asyncio
import signal

import httpx
import pytest

from emporion.testing.agent_emulator import AgentEmulator
from emporion.testing.failover_job import FailoverFramework
from emporion.testing.master_processes import ZkMaster
from tests.integration.ha.conftest import WAIT, MasterFactory, wait_one_leader, wait_until

pytestmark = pytest.mark.zk

AGENTS = 5


def _paused(master: ZkMaster) -> float | None:
    """``allocator/recovery_paused`` of a leading master (None while it does not lead)."""
    figures = httpx.get(f"http://{master.http_address}/metrics/snapshot", timeout=10).json()
    if not figures.get("master/elected"):
        return None
    value = figures.get("allocator/recovery_paused")
    return None if value is None else float(value)


def _reasons(master: ZkMaster, framework_id: str) -> list[str]:
    answer = httpx.post(
        f"http://{master.http_address}/api/v1",
        json={"type": "GET_EXPLANATION", "get_explanation": {"framework_id": framework_id}},
        timeout=10,
    )
    if answer.status_code != 200:
        return []
    explanations = answer.json()["get_explanation"]["explanations"]
    return [str(e["code"]) for e in explanations]


def test_offers_wait_for_the_agents_then_resume(zk_url: str, zk_masters: MasterFactory) -> None:
    async def body() -> None:
        emulator = AgentEmulator(
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
        framework = FailoverFramework(zk_url, "paused", 0)  # declines whatever it is offered
        masters = zk_masters(2)
        leader = await asyncio.to_thread(wait_one_leader, masters)
        await emulator.start()
        try:
            await framework.start()
            await framework.wait_back(leader.master_id, WAIT)
            lost = emulator.agent_ids[:2]
            for agent_id in lost:
                emulator.lose_agent(agent_id)
            leader.stop(signal.SIGKILL)
            new = await asyncio.to_thread(wait_one_leader, [m for m in masters if m is not leader])
            await emulator.wait_for(
                lambda: (
                    sum(emulator.master_of(a) == new.address for a in emulator.agent_ids)
                    == AGENTS - 2
                ),
                WAIT,
            )
            await asyncio.to_thread(wait_until, lambda: _paused(new) == 1.0, "a paused allocator")
            await framework.wait_back(new.master_id, WAIT)
            framework_id = framework.subscriptions[-1].framework_id.value
            await asyncio.to_thread(
                wait_until,
                lambda: "RECOVERY_PAUSED" in _reasons(new, framework_id),
                "the framework told why it gets nothing",
            )
            assert _paused(new) == 1.0  # Three of five: it waits for the agents still away.

            emulator.restore_agent(lost[0])
            await asyncio.to_thread(wait_until, lambda: _paused(new) == 0.0, "the pause's end")
        finally:
            await framework.close()
            await emulator.stop()

    asyncio.run(body())
