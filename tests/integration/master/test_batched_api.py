"""Emporion's batched scheduler API on the real master: ``Batch`` and ``SubscribeBatched``.

``Batch`` must apply its calls in order, exactly as their unary methods would (a refused call gets
its own status and the others still apply), with the same stream-id checks; ``SubscribeBatched``
must deliver the events ``Subscribe`` delivers, in the same order, and be superseded the same way.
"""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from protos.v1 import mesos_pb2, scheduler_pb2
from tests.integration.master.clients import (
    Call,
    Event,
    FakeAgent,
    Scheduler,
    quick_config,
    running_master,
    wait_for,
)
from tests.integration.master.test_master_grpc import ack_call, launch_call

OK = grpc.StatusCode.OK.value[0]
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]
NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED.value[0]
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION.value[0]


def revive_call() -> Call:
    call = Call(type=Call.REVIVE)
    call.revive.SetInParent()
    return call


def reconcile_call(*task_ids: str) -> Call:
    call = Call(type=Call.RECONCILE)
    call.reconcile.SetInParent()
    for task_id in task_ids:
        call.reconcile.tasks.add().task_id.value = task_id
    return call


def test_batch_applies_calls_in_order_with_a_result_each() -> None:
    async def main() -> None:
        async with running_master(quick_config()) as server:
            agent = FakeAgent(server.address, batched=True)
            scheduler = Scheduler(server.address, batched=True)
            try:
                await agent.register("cpus:2;mem:1024")
                framework_id = await scheduler.subscribe()
                await wait_for(lambda: bool(scheduler.offers()), "an offer")
                offer = scheduler.offers()[0]
                bad_kill = Call(type=Call.KILL)
                bad_kill.kill.SetInParent()  # No task_id: refused.
                unknown_agent_ack = Call(type=Call.ACKNOWLEDGE)
                unknown_agent_ack.acknowledge.agent_id.value = "no-such-agent"
                unknown_agent_ack.acknowledge.task_id.value = "t1"
                unknown_agent_ack.acknowledge.uuid = uuid.uuid4().bytes
                subscribe = Call(type=Call.SUBSCRIBE)
                subscribe.subscribe.framework_info.name = "nested"
                results = await scheduler.batch(
                    [
                        launch_call(offer, "t1"),
                        bad_kill,
                        unknown_agent_ack,
                        subscribe,
                        Call(type=Call.UNKNOWN),
                        reconcile_call("t1"),  # Sees t1: the ACCEPT before it was applied.
                    ]
                )
                codes = [code for code, _ in results]
                assert codes == [
                    OK,
                    INVALID_ARGUMENT,
                    NOT_FOUND,
                    INVALID_ARGUMENT,
                    INVALID_ARGUMENT,
                    OK,
                ]
                assert (results[0][1], results[5][1]) == ("", "")
                assert "kill.task_id" in results[1][1]
                assert "no-such-agent" in results[2][1]
                assert "SUBSCRIBE cannot be batched" in results[3][1]
                await wait_for(lambda: bool(agent.of("run_task")), "RunTask")
                await wait_for(lambda: bool(scheduler.updates("t1")), "the reconciliation")
                (answer,) = scheduler.updates("t1")
                assert answer.state == mesos_pb2.TASK_STAGING
                assert answer.reason == mesos_pb2.TaskStatus.REASON_RECONCILIATION

                # Acknowledgements of several tasks travel in one Batch and reach the agent.
                await agent.status_update(
                    framework_id, "t1", mesos_pb2.TASK_RUNNING, uuid.uuid4().bytes
                )
                await wait_for(lambda: len(scheduler.updates("t1")) == 2, "TASK_RUNNING")
                await agent.status_update(
                    framework_id, "t1", mesos_pb2.TASK_FINISHED, uuid.uuid4().bytes
                )
                await wait_for(lambda: len(scheduler.updates("t1")) == 3, "TASK_FINISHED")
                statuses = scheduler.updates("t1")[1:]
                results = await scheduler.batch([ack_call(s) for s in statuses])
                assert results == [(OK, ""), (OK, "")]
                await wait_for(
                    lambda: len(agent.of("status_update_acknowledgement")) == 2, "both acks"
                )
                relayed = [
                    m.status_update_acknowledgement.uuid
                    for m in agent.of("status_update_acknowledgement")
                ]
                assert relayed == [s.uuid for s in statuses]
                assert await scheduler.batch([]) == []
            finally:
                await scheduler.close()
                await agent.close()

    asyncio.run(main())


def test_batch_enforces_the_stream_id_per_call() -> None:
    async def main() -> None:
        async with running_master(quick_config()) as server:
            first = Scheduler(server.address, batched=True)
            second = Scheduler(server.address, batched=True)
            try:
                framework_id = await first.subscribe()
                (code, message), *_ = await first.batch([revive_call(), revive_call()], "")
                assert code == INVALID_ARGUMENT
                assert "mesos-stream-id" in message
                results = await first.batch([revive_call()], str(uuid.uuid4()))
                assert [code for code, _ in results] == [PERMISSION_DENIED]
                nobody = revive_call()
                nobody.framework_id.value = "nobody-0000"
                results = await first.batch([nobody, revive_call()])
                assert [code for code, _ in results] == [FAILED_PRECONDITION, OK]

                await second.subscribe(framework_id=framework_id)
                await asyncio.wait_for(first.ended.wait(), 30)
                results = await first.batch([revive_call(), revive_call()])
                assert [code for code, _ in results] == [PERMISSION_DENIED] * 2
                assert await second.batch([revive_call()]) == [(OK, "")]
            finally:
                await first.close()
                await second.close()

    asyncio.run(main())


def test_calls_after_a_batched_teardown_are_refused() -> None:
    async def main() -> None:
        async with running_master(quick_config()) as server:
            scheduler = Scheduler(server.address, batched=True)
            try:
                await scheduler.subscribe()
                teardown = Call(type=Call.TEARDOWN)
                results = await scheduler.batch([revive_call(), teardown, revive_call()])
                assert [code for code, _ in results] == [OK, OK, FAILED_PRECONDITION]
                assert "torn down" in results[2][1]
                await asyncio.wait_for(scheduler.ended.wait(), 30)
            finally:
                await scheduler.close()

    asyncio.run(main())


def _summary(event: scheduler_pb2.Event) -> tuple[object, ...]:
    """What an event says, without the ids that differ between two masters."""
    kind = Event.Type.Name(event.type)
    if event.type == Event.UPDATE:
        status = event.update.status
        return (kind, status.task_id.value, mesos_pb2.TaskState.Name(status.state), status.reason)
    if event.type == Event.OFFERS:
        return (kind, len(event.offers.offers))
    return (kind,)


async def _scenario(batched: bool) -> tuple[list[tuple[object, ...]], list[int]]:
    """Subscribe, launch two tasks, have the agent report three updates in one message, wait for
    the freed resources' offer, reconcile; the events (heartbeats left out) and batch sizes."""
    config = quick_config(allocation_interval=3600.0, heartbeat_interval=3600.0)
    async with running_master(config) as server:
        agent = FakeAgent(server.address, batched=True)
        scheduler = Scheduler(server.address, batched=batched)
        try:
            await agent.register("cpus:2;mem:1024")
            framework_id = await scheduler.subscribe()
            await wait_for(lambda: bool(scheduler.offers()), "an offer")
            launch = launch_call(scheduler.offers()[0], "t1", "t2", resources="cpus:1;mem:512")
            await scheduler.call(launch, "Accept")
            await wait_for(lambda: len(agent.of("run_task")) == 2, "RunTask twice")
            await agent.send(
                agent.status_update_message(framework_id, "t1", mesos_pb2.TASK_RUNNING, b"1" * 16),
                agent.status_update_message(framework_id, "t2", mesos_pb2.TASK_RUNNING, b"2" * 16),
                agent.status_update_message(framework_id, "t1", mesos_pb2.TASK_FINISHED, b"3" * 16),
            )
            await wait_for(lambda: len(scheduler.offers()) == 2, "the freed resources offered")
            await scheduler.call(reconcile_call(), "Reconcile")
            await wait_for(lambda: len(scheduler.updates()) == 5, "the reconciliation")
        finally:
            await scheduler.close()
            await agent.close()
    events = [_summary(e) for e in scheduler.events if e.type != Event.HEARTBEAT]
    return events, scheduler.batches


def test_subscribe_batched_delivers_the_same_events_in_the_same_order() -> None:
    async def main() -> None:
        plain, _ = await _scenario(batched=False)
        batched, sizes = await _scenario(batched=True)
        assert batched == plain
        reconciled = mesos_pb2.TaskStatus.REASON_RECONCILIATION
        assert plain == [
            ("SUBSCRIBED",),
            ("OFFERS", 1),
            ("UPDATE", "t1", "TASK_RUNNING", 0),
            ("UPDATE", "t2", "TASK_RUNNING", 0),
            ("UPDATE", "t1", "TASK_FINISHED", 0),
            ("OFFERS", 1),
            ("UPDATE", "t1", "TASK_FINISHED", reconciled),
            ("UPDATE", "t2", "TASK_RUNNING", reconciled),
        ]
        # The three updates came from one agent message, so they were queued together and went
        # out in one Events message.
        assert 3 in sizes
        assert sum(sizes) == len(batched)

    asyncio.run(main())


@pytest.mark.parametrize("successor_batched", [True, False], ids=["batched", "plain"])
def test_superseded_batched_stream_gets_error(successor_batched: bool) -> None:
    async def main() -> None:
        async with running_master(quick_config()) as server:
            first = Scheduler(server.address, batched=True)
            second = Scheduler(server.address, batched=successor_batched)
            try:
                framework_id = await first.subscribe()
                assert await second.subscribe(framework_id=framework_id) == framework_id
                await asyncio.wait_for(first.ended.wait(), 30)
                (error,) = first.of(Event.ERROR)
                assert error.error.message == "Framework failed over"
                assert first.events[-1].type == Event.ERROR
                assert not second.of(Event.ERROR)
            finally:
                await first.close()
                await second.close()

    asyncio.run(main())


def test_subscribe_batched_refuses_a_bad_subscribe() -> None:
    async def main() -> None:
        async with running_master(quick_config()) as server:
            scheduler = Scheduler(server.address, batched=True)
            try:
                bad = Call(type=Call.SUBSCRIBE)
                bad.subscribe.SetInParent()  # No framework_info.
                with pytest.raises(grpc.aio.AioRpcError) as raised:
                    async for _ in scheduler.stub.SubscribeBatched(bad):
                        pass
                assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            finally:
                await scheduler.close()

    asyncio.run(main())
