"""The emulator against the real master (``python -m master`` in a subprocess, port 0).

A framework over raw scheduler stubs (``raw_framework``) sees the emulated agents' offers,
launches tasks onto them and acknowledges their updates; agents are lost and come back; the
master restarts and the agents reregister with their tasks.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest

from bench.launch_throughput import master_process
from emporion.testing import AgentEmulator, Link
from protos.resources import Resources
from protos.v1 import mesos_pb2
from tests.integration.emulator.raw_framework import RawFramework

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.skipif(
    not (ROOT / "master" / "__main__.py").exists(), reason="the master has no entry point yet"
)

MASTER_ARGS = ["--log-level", "WARNING"]
RESOURCES = "cpus:2;mem:1024;disk:1000;ports:[31000-31009]"


def emulator_for(address: str, agents: int, mode: str = "finish") -> AgentEmulator:
    return AgentEmulator(
        address,
        agents=agents,
        resources=RESOURCES,
        mode=mode,
        backoff_min=0.05,
        backoff_max=0.5,
        tick_interval=0.05,
        register_timeout=30,
    )


async def next_update(framework: RawFramework, task_id: str, nth: int) -> mesos_pb2.TaskStatus:
    """The ``nth`` update of a task (1-based), once it has arrived."""
    await framework.wait_for(lambda: len(framework.updates(task_id)) >= nth)
    return framework.updates(task_id)[nth - 1]


def test_emulated_agents_register_and_appear_in_offers() -> None:
    async def main(address: str) -> None:
        async with emulator_for(address, agents=5) as emulator:
            assert emulator.batched  # the master serves ConnectBatched
            framework = RawFramework(address)
            try:
                await framework.subscribe()
                ids = set(emulator.agent_ids)
                await framework.wait_for(
                    lambda: {o.agent_id.value for o in framework.offers()} == ids
                )
                for offer in framework.offers():
                    offered = Resources.from_protos(offer.resources)
                    assert offered.get("cpus") == 2
                    assert offered.get("mem") == 1024
            finally:
                await framework.close()
            emulator.validate()

    with master_process(MASTER_ARGS) as (address, _):
        asyncio.run(main(address))


def test_tasks_go_running_then_finished_with_acknowledgements_relayed() -> None:
    async def main(address: str) -> None:
        async with emulator_for(address, agents=2) as emulator:
            framework = RawFramework(address)
            try:
                await framework.subscribe()
                await framework.wait_for(lambda: bool(framework.offers()))
                await framework.launch(framework.offers()[0], ["a", "b", "c"], "cpus:0.1;mem:8")
                for task_id in ("a", "b", "c"):
                    running = await next_update(framework, task_id, 1)
                    assert running.state == mesos_pb2.TASK_RUNNING
                    assert running.uuid
                    await framework.acknowledge(running)
                    finished = await next_update(framework, task_id, 2)
                    assert finished.state == mesos_pb2.TASK_FINISHED
                    await framework.acknowledge(finished)
                # The master relayed every acknowledgement: the agents forgot the tasks.
                await emulator.wait_for(lambda: emulator.counters.updates_acked == 6)
                assert emulator.counters.unexpected_acks == 0
                assert emulator.counters.updates_retried == 0
                assert all(not a.tasks for a in emulator.agents)
            finally:
                await framework.close()
            emulator.validate()

    with master_process(MASTER_ARGS) as (address, _):
        asyncio.run(main(address))


def test_lost_agent_stops_answering_pings_and_its_tasks_are_lost() -> None:
    async def main(address: str) -> None:
        async with emulator_for(address, agents=1, mode="run") as emulator:
            framework = RawFramework(address)
            try:
                await framework.subscribe()
                await framework.wait_for(lambda: bool(framework.offers()))
                await framework.launch(framework.offers()[0], ["t"], "cpus:0.1;mem:8")
                await framework.wait_for(lambda: bool(framework.updates("t")))
                await framework.acknowledge(framework.updates("t")[0])
                [agent_id] = emulator.agent_ids
                emulator.lose_agent(agent_id, drop_stream=False)
                lost = (mesos_pb2.TASK_LOST, mesos_pb2.TASK_UNREACHABLE)
                await framework.wait_for(
                    lambda: any(s.state in lost for s in framework.updates("t")), timeout=60
                )
                assert emulator.counters.pings_ignored > 0
                update = next(s for s in framework.updates("t") if s.state in lost)
                assert not update.uuid  # generated by the master: nothing to acknowledge
            finally:
                await framework.close()
            emulator.validate()

    args = [*MASTER_ARGS, "--agent-ping-timeout", "0.2", "--max-agent-ping-timeouts", "2"]
    with master_process(args) as (address, _):
        asyncio.run(main(address))


def test_emulator_restart_reregisters_and_the_tasks_live_on() -> None:
    async def main(address: str) -> None:
        emulator = emulator_for(address, agents=2, mode="run")
        framework = RawFramework(address)
        try:
            await emulator.start()
            await framework.subscribe()
            await framework.wait_for(lambda: bool(framework.offers()))
            await framework.launch(framework.offers()[0], ["p", "q"], "cpus:0.1;mem:8")
            await framework.wait_for(lambda: len(framework.updates()) == 2)
            for status in framework.updates():
                await framework.acknowledge(status)
            await emulator.wait_for(lambda: emulator.counters.updates_acked == 2)
            await emulator.stop()  # every agent process "restarts"
            await emulator.start()
            assert emulator.counters.reregistrations == 2
            assert emulator.task_state("p") == emulator.task_state("q") == mesos_pb2.TASK_RUNNING
            await framework.reconcile()
            await framework.wait_for(lambda: len(framework.updates()) == 4)
            assert [s.state for s in framework.updates()[2:]] == [mesos_pb2.TASK_RUNNING] * 2
            assert emulator.counters.kills == 0
            emulator.validate()
        finally:
            await framework.close()
            await emulator.stop()

    with master_process(MASTER_ARGS) as (address, _):
        asyncio.run(main(address))


def test_master_restart_agents_reregister_with_their_tasks() -> None:
    async def main(work_dir: str) -> None:
        with master_process(MASTER_ARGS, work_dir=work_dir) as (address, first_master):
            emulator = emulator_for(address, agents=3, mode="run")
            await emulator.start()
            framework = RawFramework(address, failover_timeout=3600)
            try:
                await framework.subscribe()
                await framework.wait_for(lambda: bool(framework.offers()))
                await framework.launch(framework.offers()[0], ["x", "y"], "cpus:0.1;mem:8")
                await framework.wait_for(lambda: len(framework.updates()) == 2)
                for status in framework.updates():
                    await framework.acknowledge(status)
                await emulator.wait_for(lambda: emulator.counters.updates_acked == 2)
            finally:
                await framework.close()
            first_master.kill()  # crash: no goodbye to anyone
            first_master.wait()
            await emulator.wait_for(
                lambda: all(a.link is not Link.REGISTERED for a in emulator.agents)
            )
        port = int(address.rsplit(":", 1)[1])
        try:
            with master_process(MASTER_ARGS, work_dir=work_dir, port=port):
                await emulator.wait_for(lambda: emulator.counters.reregistrations == 3, timeout=60)
                await emulator.wait_registered(30)
                holder = [a for a in emulator.agents if a.tasks]
                assert len(holder) == 1
                assert sorted(k[1] for k in holder[0].tasks) == ["x", "y"]
                framework = RawFramework(address, failover_timeout=3600)
                framework.info.id.value = holder[0].tasks[next(iter(holder[0].tasks))].framework_id
                try:
                    await framework.subscribe()
                    await framework.reconcile()
                    await framework.wait_for(
                        lambda: {s.task_id.value for s in framework.updates()} >= {"x", "y"}
                    )
                    for status in framework.updates():
                        assert status.state == mesos_pb2.TASK_RUNNING  # not killed
                finally:
                    await framework.close()
                emulator.validate()
        finally:
            await emulator.stop()

    with tempfile.TemporaryDirectory() as work_dir:
        asyncio.run(main(work_dir))
