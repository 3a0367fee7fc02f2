"""Bad input through the real gRPC server: precise statuses, never INTERNAL or RESOURCE_EXHAUSTED.

The master's core is tested input by input in ``tests/unit/master/test_bad_input_*.py``; these
check what a scheduler sees over the wire, and that one message-size limit holds end to end (a
task an agent cannot receive is refused at ACCEPT; one it can is delivered without breaking the
agent's session).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import grpc
import pytest
from grpc import aio

from master.runtime import MasterServer
from protos.limits import GRPC_MESSAGE_OPTIONS, MAX_MESSAGE_BYTES
from protos.resources import Resources
from protos.v1 import agent_internal_pb2_grpc, mesos_pb2
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
Value = mesos_pb2.Value


class LimitAgent(FakeAgent):
    """A FakeAgent whose channel takes messages up to the limit, as every Emporion agent's."""

    def __init__(self, address: str) -> None:
        super().__init__(address, batched=True)
        self.channel = aio.insecure_channel(address, options=GRPC_MESSAGE_OPTIONS)
        self.stub = agent_internal_pb2_grpc.AgentGatewayStub(self.channel)


Body = Callable[[MasterServer, Scheduler, FakeAgent], Awaitable[None]]


def run_with(body: Body, info: mesos_pb2.FrameworkInfo | None = None) -> None:
    """A master, an agent of cpus:4;mem:4096 and a subscribed scheduler, then ``body``."""

    async def main() -> None:
        async with running_master(quick_config()) as server:
            agent = LimitAgent(server.address)
            scheduler = Scheduler(server.address)
            try:
                await agent.register("cpus:4;mem:4096;disk:1000")
                await scheduler.subscribe(info)
                await body(server, scheduler, agent)
            finally:
                await scheduler.close()
                await agent.close()

    asyncio.run(main())


def accept(offer: mesos_pb2.Offer, *tasks: mesos_pb2.TaskInfo) -> Call:
    call = Call(type=Call.ACCEPT)
    call.accept.offer_ids.add().CopyFrom(offer.id)
    call.accept.filters.refuse_seconds = 0
    call.accept.operations.add(type=Op.LAUNCH).launch.task_infos.extend(tasks)
    return call


def task(
    task_id: str, offer: mesos_pb2.Offer, resources: str = "cpus:1;mem:64"
) -> mesos_pb2.TaskInfo:
    info = mesos_pb2.TaskInfo(name="t")
    info.task_id.value = task_id
    info.agent_id.CopyFrom(offer.agent_id)
    info.resources.extend(Resources.parse(resources).to_protos())
    info.command.value = "true"
    return info


async def next_offer(scheduler: Scheduler, used: mesos_pb2.Offer) -> mesos_pb2.Offer:
    """The newest offer once there is one newer than ``used``."""
    await wait_for(lambda: scheduler.offers()[-1].id != used.id, "another offer")
    return scheduler.offers()[-1]


async def first_offer(scheduler: Scheduler) -> mesos_pb2.Offer:
    await wait_for(lambda: bool(scheduler.offers()), "an offer")
    return scheduler.offers()[-1]


def test_bad_resources_and_ids_get_task_error_not_internal() -> None:
    async def body(server: MasterServer, scheduler: Scheduler, agent: FakeAgent) -> None:
        offer = await first_offer(scheduler)
        huge = task("huge-mem", offer)
        huge.resources[1].scalar.value = 1e308
        ranges = task("cpus-ranges", offer)
        ranges.resources[0].ClearField("scalar")
        ranges.resources[0].type = Value.RANGES
        ranges.resources[0].ranges.range.add(begin=1, end=2)
        disk = task("disk-set", offer)
        disk.resources.add(name="disk", type=Value.SET).set.item.append("a")
        long_id = task("x" * 300, offer)
        empty = task("no-resources", offer)
        del empty.resources[:]
        await scheduler.call(accept(offer, huge, ranges, disk, long_id, empty), "Accept")
        await wait_for(lambda: len(scheduler.updates()) == 5, "five TASK_ERRORs")
        messages = {s.task_id.value: s.message for s in scheduler.updates()}
        assert all(s.state == mesos_pb2.TASK_ERROR for s in scheduler.updates())
        assert "'mem'" in messages["huge-mem"]
        assert "value is too large" in messages["huge-mem"]
        assert "'cpus' must be a SCALAR resource, not RANGES" in messages["cpus-ranges"]
        assert "'disk' must be a SCALAR resource, not SET" in messages["disk-set"]
        assert "is 300 bytes long; an id is at most 255 bytes" in messages["x" * 300]
        assert messages["no-resources"] == "Task uses no resources"
        assert agent.of("run_task") == []

    run_with(body)


def test_reused_task_ids_refuse_the_call_and_leave_the_running_task_alone() -> None:
    async def body(server: MasterServer, scheduler: Scheduler, agent: FakeAgent) -> None:
        offer = await first_offer(scheduler)
        with pytest.raises(aio.AioRpcError) as raised:
            await scheduler.call(accept(offer, task("t", offer), task("t", offer)), "Accept")
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert raised.value.details() == (
            "accept.operations[0].launch.task_infos[1].task_id 't' is used by"
            " accept.operations[0].launch.task_infos[0] too; task ids must be unique"
        )
        await scheduler.call(accept(offer, task("t", offer)), "Accept")
        await wait_for(lambda: bool(agent.of("run_task")), "RunTask")
        await agent.status_update(
            scheduler.framework_id, "t", mesos_pb2.TASK_RUNNING, uuid.uuid4().bytes
        )
        await wait_for(lambda: bool(scheduler.updates("t")), "TASK_RUNNING")
        offer = await next_offer(scheduler, offer)
        with pytest.raises(aio.AioRpcError) as raised:
            await scheduler.call(accept(offer, task("t", offer, "cpus:2;mem:1")), "Accept")
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "is the id of a task of this framework the master still tracks" in (
            raised.value.details() or ""
        )
        assert [s.state for s in scheduler.updates("t")] == [mesos_pb2.TASK_RUNNING]
        assert len(agent.of("run_task")) == 1

    run_with(body)


def test_framework_info_and_echoed_input_are_bounded() -> None:
    async def main() -> None:
        async with running_master(quick_config()) as server:
            scheduler = Scheduler(server.address)
            try:
                for name, expected in (
                    ("", "subscribe.framework_info.name must not be empty"),
                    ("n" * 1024 * 1024, "is 1048576 bytes long; at most 1024 are allowed"),
                ):
                    call = Call(type=Call.SUBSCRIBE)
                    call.subscribe.framework_info.user = "tester"
                    call.subscribe.framework_info.name = name
                    with pytest.raises(aio.AioRpcError) as raised:
                        async for _ in scheduler.stub.Subscribe(call):
                            pass
                    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                    details = raised.value.details() or ""
                    assert expected in details
                    assert len(details) < 300
                framework_id = await scheduler.subscribe()
                # Long input is quoted by a prefix: the answer is the refusal meant, not
                # RESOURCE_EXHAUSTED. A stream id of '%' takes 3 bytes a character in the status
                # trailer (percent-encoded): echoed whole, 2,800 of them would exceed its 8 KB.
                # (One over 8 KB is refused by gRPC itself before the master sees the call.)
                with pytest.raises(aio.AioRpcError) as raised:
                    await scheduler.call(Call(type=Call.REVIVE), "Revive", stream_id="%" * 2800)
                assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
                assert len(raised.value.details() or "") < 400
                decline = Call(type=Call.ACCEPT)
                decline.accept.offer_ids.add(value="o" * 10240)
                with pytest.raises(aio.AioRpcError) as raised:
                    await scheduler.call(decline, "Accept")
                assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert "(10240 chars)" in (raised.value.details() or "")
                unknown = Call(type=Call.REVIVE)
                unknown.framework_id.value = "f" * 10240
                with pytest.raises(aio.AioRpcError) as raised:
                    await scheduler.call(unknown, "Revive")
                assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
                assert framework_id
            finally:
                await scheduler.close()

    asyncio.run(main())


def test_revive_and_suppress_without_payload_and_self_chosen_ids() -> None:
    async def main() -> None:
        async with running_master(quick_config()) as server:
            chosen, fresh = Scheduler(server.address), Scheduler(server.address)
            try:
                # The id the master would generate next, taken first by a scheduler's choice.
                taken = f"{server.master_id}-0000"
                assert await chosen.subscribe(framework_id=taken) == taken
                await chosen.call(Call(type=Call.SUPPRESS), "Suppress")
                await chosen.call(Call(type=Call.REVIVE), "Revive")
                assert await fresh.subscribe() == f"{server.master_id}-0001"
            finally:
                await chosen.close()
                await fresh.close()

    asyncio.run(main())


def _fat_info() -> mesos_pb2.FrameworkInfo:
    info = mesos_pb2.FrameworkInfo(user="tester", name="fat", failover_timeout=60)
    info.labels.labels.add(key="notes", value="n" * 4096)
    return info


def test_one_message_size_limit_end_to_end() -> None:
    async def body(server: MasterServer, scheduler: Scheduler, agent: FakeAgent) -> None:
        offer = await first_offer(scheduler)
        # 5 MB of data: more than gRPC's default 4 MiB, within the limit; delivered, and the
        # agent's session carries on.
        big = task("five-mb", offer)
        big.data = b"d" * (5 * 1024 * 1024)
        await scheduler.call(accept(offer, big), "Accept")
        await wait_for(lambda: bool(agent.of("run_task")), "the 5 MB RunTask")
        (run,) = agent.of("run_task")
        assert len(run.run_task.task.data) == 5 * 1024 * 1024
        await agent.status_update(
            scheduler.framework_id, "five-mb", mesos_pb2.TASK_RUNNING, uuid.uuid4().bytes
        )
        await wait_for(lambda: bool(scheduler.updates("five-mb")), "TASK_RUNNING")
        # The call fits the limit, but the RunTask message (which adds the 4 KB FrameworkInfo)
        # would not: refused at ACCEPT, naming the size and the limit.
        offer = await next_offer(scheduler, offer)
        huge = task("too-big", offer)
        huge.data = b"d" * (MAX_MESSAGE_BYTES - 1024)
        await scheduler.call(accept(offer, huge), "Accept")
        await wait_for(lambda: bool(scheduler.updates("too-big")), "TASK_ERROR")
        (status,) = scheduler.updates("too-big")
        assert status.state == mesos_pb2.TASK_ERROR
        assert status.reason == mesos_pb2.TaskStatus.REASON_TASK_INVALID
        assert f"more than the {MAX_MESSAGE_BYTES}-byte limit" in status.message
        assert len(agent.of("run_task")) == 1
        assert scheduler.of(Event.ERROR) == []

    run_with(body, _fat_info())
