"""The real master on port 0, driven over gRPC by a scheduler and a fake agent.

Covers the path issue 4 is about end to end: subscribe, offers, launch, RUNNING and FINISHED,
acknowledgements relayed to the agent, a superseded subscription, and calls refused with the
right status code.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import grpc
import pytest
from grpc import aio

from protos.resources import Resources
from protos.v1 import mesos_pb2
from tests.integration.master.clients import (
    Call,
    Event,
    FakeAgent,
    Scheduler,
    quick_config,
    running_master,
    wait_for,
)

Op = mesos_pb2.Offer.Operation


def launch_call(offer: mesos_pb2.Offer, *task_ids: str, resources: str = "cpus:1;mem:128") -> Call:
    call = Call(type=Call.ACCEPT)
    call.accept.offer_ids.add().CopyFrom(offer.id)
    call.accept.filters.refuse_seconds = 0
    op = call.accept.operations.add(type=Op.LAUNCH)
    for task_id in task_ids:
        task = op.launch.task_infos.add(name=task_id)
        task.task_id.value = task_id
        task.agent_id.CopyFrom(offer.agent_id)
        task.resources.extend(Resources.parse(resources).to_protos())
        task.command.value = "true"
    return call


def ack_call(status: mesos_pb2.TaskStatus) -> Call:
    call = Call(type=Call.ACKNOWLEDGE)
    call.acknowledge.agent_id.CopyFrom(status.agent_id)
    call.acknowledge.task_id.CopyFrom(status.task_id)
    call.acknowledge.uuid = status.uuid
    return call


@pytest.mark.parametrize("batched", [False, True], ids=["Connect", "ConnectBatched"])
def test_launch_run_finish_with_acknowledgements_relayed(batched: bool) -> None:
    async def main() -> None:
        async with running_master(quick_config()) as server:
            agent = FakeAgent(server.address, batched=batched)
            scheduler = Scheduler(server.address)
            try:
                agent_id = await agent.register("cpus:2;mem:1024")
                framework_id = await scheduler.subscribe()
                (subscribed,) = scheduler.of(Event.SUBSCRIBED)
                assert subscribed.subscribed.heartbeat_interval_seconds == 0.5
                assert subscribed.subscribed.master_info.id == server.master_id
                await wait_for(lambda: bool(scheduler.offers()), "an offer")
                offer = scheduler.offers()[0]
                assert offer.agent_id.value == agent_id
                await scheduler.call(launch_call(offer, "t1"), "Accept")
                await wait_for(lambda: bool(agent.of("run_task")), "RunTask")
                (run,) = agent.of("run_task")
                assert run.run_task.task.task_id.value == "t1"
                assert run.run_task.framework_id.value == framework_id

                for n, state in enumerate((mesos_pb2.TASK_RUNNING, mesos_pb2.TASK_FINISHED), 1):
                    await agent.status_update(framework_id, "t1", state, uuid.uuid4().bytes)
                    await wait_for(lambda n=n: len(scheduler.updates("t1")) == n, "an update")  # type: ignore[misc]
                    status = scheduler.updates("t1")[-1]
                    assert status.state == state
                    await scheduler.call(ack_call(status), "Acknowledge")
                    await wait_for(
                        lambda n=n: len(agent.of("status_update_acknowledgement")) == n,  # type: ignore[misc]
                        "the acknowledgement",
                    )
                    relayed = agent.of("status_update_acknowledgement")[-1]
                    assert relayed.status_update_acknowledgement.uuid == status.uuid
                # The task's resources come back in a new offer (the rest is still offered).
                await wait_for(
                    lambda: any(
                        Resources.from_protos(o.resources) == Resources.parse("cpus:1;mem:128")
                        for o in scheduler.offers()[2:]
                    ),
                    "the task's resources offered again",
                )
                await wait_for(lambda: bool(scheduler.of(Event.HEARTBEAT)), "a heartbeat")
            finally:
                await scheduler.close()
                await agent.close()

    asyncio.run(main())


def test_superseded_subscription_gets_error_and_its_calls_are_refused() -> None:
    async def main() -> None:
        async with running_master(quick_config()) as server:
            first = Scheduler(server.address)
            second = Scheduler(server.address)
            try:
                framework_id = await first.subscribe()
                assert await second.subscribe(framework_id=framework_id) == framework_id
                await asyncio.wait_for(first.ended.wait(), 30)
                (error,) = first.of(Event.ERROR)
                assert error.error.message == "Framework failed over"
                revive = Call(type=Call.REVIVE)
                revive.revive.SetInParent()
                with pytest.raises(aio.AioRpcError) as raised:
                    await first.call(revive, "Revive")
                assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
                await second.call(revive, "Revive")  # The new subscription may call.
            finally:
                await first.close()
                await second.close()

    asyncio.run(main())


def test_refused_calls_get_the_right_status_codes() -> None:
    async def main() -> None:
        async with running_master(quick_config()) as server:
            scheduler = Scheduler(server.address)
            try:
                revive = Call(type=Call.REVIVE)
                revive.revive.SetInParent()
                revive.framework_id.value = "nobody-0000"
                with pytest.raises(aio.AioRpcError) as raised:
                    await scheduler.call(revive, "Revive", stream_id="x")
                assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION

                await scheduler.subscribe()
                revive.framework_id.value = scheduler.framework_id
                with pytest.raises(aio.AioRpcError) as raised:
                    await scheduler.call(revive, "Revive", stream_id="")
                assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert "mesos-stream-id" in (raised.value.details() or "")
                with pytest.raises(aio.AioRpcError) as raised:
                    await scheduler.call(revive, "Revive", stream_id=str(uuid.uuid4()))
                assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
                with pytest.raises(aio.AioRpcError) as raised:
                    await scheduler.call(revive, "Suppress")  # Type does not match the method.
                assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                bad = Call(type=Call.ACCEPT)
                bad.accept.offer_ids.add(value="o")
                bad.accept.offer_ids.add(value="o")
                with pytest.raises(aio.AioRpcError) as raised:
                    await scheduler.call(bad, "Accept")
                assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert "listed twice" in (raised.value.details() or "")
                subscribe = Call(type=Call.SUBSCRIBE)
                subscribe.subscribe.SetInParent()
                with pytest.raises(aio.AioRpcError) as raised:
                    async for _ in scheduler.stub.Subscribe(subscribe):
                        pass
                assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            finally:
                await scheduler.close()

    asyncio.run(main())


def test_framework_survives_a_master_restart_on_the_file_registry(tmp_path: Path) -> None:
    async def main() -> None:
        config = quick_config(tmp_path)
        async with running_master(config) as server:
            scheduler = Scheduler(server.address)
            agent = FakeAgent(server.address)
            try:
                agent_id = await agent.register("cpus:1;mem:256")
                framework_id = await scheduler.subscribe()
            finally:
                await scheduler.close()
                await agent.close()
        async with running_master(config) as server:
            core = server.core
            assert core is not None
            fw = core.framework(framework_id)
            assert fw is not None
            assert not fw.connected
            record = core.agent(agent_id)
            assert record is not None
            assert record.phase.value == "recovering"
            scheduler = Scheduler(server.address)
            try:
                assert await scheduler.subscribe(framework_id=framework_id) == framework_id
            finally:
                await scheduler.close()

    asyncio.run(main())
