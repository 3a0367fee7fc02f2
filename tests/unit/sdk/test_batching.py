"""The SDK on Emporion's batched API: SubscribeBatched with a fallback, and calls sent in Batches.

The scripted master serves ``SubscribeBatched`` and ``Batch`` (``batched=True``) or answers them
UNIMPLEMENTED like a Mesos-only master (``batched=False``). Tests count the Batch calls it got;
to make several calls queue up deterministically they hold one call unanswered
(:meth:`ScriptedMaster.hold_next`) while the next ones are made.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest

from framework_sdk import (
    CallRefusedError,
    NotSubscribedError,
    SchedulerClient,
    SchedulerDriver,
    Status,
    calls,
    events,
    messages,
)
from tests.unit.sdk.conftest import FAST
from tests.unit.sdk.scripted_master import (
    ScriptedMaster,
    make_offer,
    message_event,
    offers_event,
    update_event,
)
from tests.unit.sdk.scripted_service import run
from tests.unit.sdk.test_client import client_for, next_event
from tests.unit.sdk.test_driver import Recorder


def status_of(task_id: str, n: int) -> messages.TaskStatus:
    status = messages.TaskStatus(state=messages.TASK_RUNNING)
    status.task_id.value = task_id
    status.agent_id.value = "agent-1"
    status.uuid = n.to_bytes(16, "big")
    return status


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "plain"])
def test_subscribes_batched_when_offered_else_falls_back(
    batched: bool, framework_info: messages.FrameworkInfo
) -> None:
    with ScriptedMaster(batched=batched) as master:

        async def main() -> None:
            async with client_for(master, framework_info) as client:
                assert client.batched is batched
                assert master.batched_streams == int(batched)
                master.send(
                    offers_event(make_offer("o1")),
                    update_event("t1", messages.TASK_RUNNING),
                    update_event("t1", messages.TASK_FINISHED),
                )
                seen = [await next_event(client) for _ in range(4)]
                assert [type(e) for e in seen] == [
                    events.Subscribed,
                    events.Offers,
                    events.Update,
                    events.Update,
                ]
                states = [e.status.state for e in seen[2:] if isinstance(e, events.Update)]
                assert states == [messages.TASK_RUNNING, messages.TASK_FINISHED]
                client.session.validate()

        run(main)
        # The fallback is not a failed attempt: one SUBSCRIBE reached the master.
        assert len(master.subscribe_calls) == 1


def test_fallback_holds_after_a_reconnection(framework_info: messages.FrameworkInfo) -> None:
    with ScriptedMaster(batched=False) as master:

        async def main() -> None:
            async with client_for(master, framework_info) as client:
                await next_event(client)
                master.fail_stream(grpc.StatusCode.UNAVAILABLE, "restarting")
                assert isinstance(await next_event(client), events.Disconnected)
                resubscribed = await next_event(client)
                assert isinstance(resubscribed, events.Subscribed)
                assert resubscribed.resubscribed
                assert not client.batched
                await client.revive()
                assert master.methods() == ["Revive"]

        run(main)


def test_calls_made_in_one_iteration_share_one_batch(
    framework_info: messages.FrameworkInfo,
) -> None:
    with ScriptedMaster() as master:

        async def main() -> None:
            async with client_for(master, framework_info) as client:
                master.refuse_next(
                    "Decline", grpc.StatusCode.INVALID_ARGUMENT, "decline.offer_ids[0]: unknown"
                )
                outcomes = await asyncio.gather(
                    *(client.acknowledge(status_of(f"t{i}", i)) for i in range(5)),
                    client.decline(["o1"]),
                    client.acknowledge(status_of("t5", 5)),
                    return_exceptions=True,
                )
                assert outcomes[:5] == [None] * 5
                assert outcomes[6] is None
                refused = outcomes[5]
                assert isinstance(refused, CallRefusedError)
                assert (refused.call_type, refused.code) == ("DECLINE", "INVALID_ARGUMENT")
                assert refused.message == "decline.offer_ids[0]: unknown"
                # A lone call goes on its own unary method.
                await client.acknowledge(status_of("t6", 6))

        run(main)
        assert master.batches == [7]
        assert master.methods() == ["Acknowledge"] * 5 + ["Decline"] + ["Acknowledge"] * 2
        assert [c.batch for c in master.calls] == [0] * 7 + [None]
        acked = [c.call.acknowledge.task_id.value for c in master.calls]
        assert acked[:5] + acked[6:] == [f"t{i}" for i in range(7)]


def test_send_all_applies_in_order_with_an_outcome_each(
    master: ScriptedMaster, framework_info: messages.FrameworkInfo
) -> None:
    async def main() -> None:
        async with client_for(master, framework_info) as client:
            master.send(offers_event(make_offer("o1", agent_id="agent-7")))
            await next_event(client)
            await next_event(client)
            task = messages.TaskInfo(name="t1")
            task.task_id.value = "t1"
            task.command.value = "true"
            master.refuse_next("Kill", grpc.StatusCode.NOT_FOUND, "no such agent")
            outcomes = await client.send_all(
                [
                    calls.launch(["o1"], [task]),
                    calls.kill("t1"),
                    calls.acknowledge(status_of("t0", 1)),
                ]
            )
            assert outcomes[0] is None
            assert outcomes[2] is None
            assert isinstance(outcomes[1], CallRefusedError)
            assert outcomes[1].code == "NOT_FOUND"
            assert await client.send_all([]) == []
            with pytest.raises(ValueError, match="TEARDOWN cannot be sent with send_all"):
                await client.send_all([calls.revive(), calls.teardown()])

    run(main)
    assert master.methods() == ["Accept", "Kill", "Acknowledge"]
    # The launched task got its agent from the offer, the kill the task's agent.
    accept, kill, _ = master.calls
    assert accept.call.accept.operations[0].launch.task_infos[0].agent_id.value == "agent-7"
    assert kill.call.kill.agent_id.value == "agent-7"
    assert master.batches == ([3] if master.batched else [])


def test_send_all_while_not_subscribed_sends_nothing(
    framework_info: messages.FrameworkInfo,
) -> None:
    async def main() -> None:
        client = SchedulerClient("127.0.0.1:1", framework_info, config=FAST)
        with pytest.raises(NotSubscribedError):
            await client.send_all([calls.revive()])
        await client.close()

    run(main)


def test_teardown_goes_after_the_calls_gathered_before_it(
    framework_info: messages.FrameworkInfo,
) -> None:
    with ScriptedMaster() as master:

        async def main() -> None:
            async with client_for(master, framework_info) as client:
                acks = [
                    asyncio.ensure_future(client.acknowledge(status_of(f"t{i}", i)))
                    for i in range(3)
                ]
                await asyncio.sleep(0)  # The acks are gathered, not yet sent.
                await client.teardown()
                await asyncio.gather(*acks)

        run(main)
        assert master.methods() == ["Acknowledge"] * 3 + ["Teardown"]
        assert master.batches == [3]


def test_calls_gathered_when_the_client_closes_are_not_sent(
    framework_info: messages.FrameworkInfo,
) -> None:
    with ScriptedMaster() as master:

        async def main() -> None:
            async with client_for(master, framework_info) as client:
                acks = [
                    asyncio.ensure_future(client.acknowledge(status_of(f"t{i}", i)))
                    for i in range(2)
                ]
                await asyncio.sleep(0)  # Gathered, not yet sent.
                await client.close()
                outcomes = await asyncio.gather(*acks, return_exceptions=True)
                assert all(isinstance(o, NotSubscribedError) for o in outcomes)

        run(main)
        assert master.calls == []


# -- the driver --


def test_driver_acks_of_a_burst_go_in_one_batch(
    master: ScriptedMaster, framework_info: messages.FrameworkInfo
) -> None:
    recorder = Recorder()
    driver = SchedulerDriver(recorder, framework_info, master.address, config=FAST)
    try:
        assert driver.start() is Status.DRIVER_RUNNING
        recorder.wait_for("registered")
        # The driver's DECLINE is held by the master while 20 updates arrive, so their 20
        # acknowledgements queue up behind it.
        release = master.hold_next("Decline")
        recorder.hooks["resourceOffers"] = lambda d, offers: d.declineOffer(offers[0].id)
        master.send(offers_event(make_offer("o1")))
        master.wait_calls("Decline")
        master.send(
            *(
                update_event(f"t{i}", messages.TASK_RUNNING, uuid=bytes([i + 1]) * 16)
                for i in range(20)
            ),
            message_event("agent-1", "executor-1", b"after the updates"),
        )
        recorder.wait_for("frameworkMessage")  # Every statusUpdate returned: acks queued.
        release.set()
        acks = master.wait_calls("Acknowledge", 20)
        assert sorted(c.call.acknowledge.task_id.value for c in acks) == sorted(
            f"t{i}" for i in range(20)
        )
        if master.batched:
            assert master.batches == [20]
            assert [c.batch for c in acks] == [0] * 20
            assert [c.call.acknowledge.task_id.value for c in acks] == [f"t{i}" for i in range(20)]
        else:
            assert master.batches == []
    finally:
        driver.abort()
        driver.join()


def test_driver_batch_keeps_order_and_reports_refusals(
    master: ScriptedMaster, framework_info: messages.FrameworkInfo
) -> None:
    recorder = Recorder()
    driver = SchedulerDriver(recorder, framework_info, master.address, config=FAST)
    try:
        assert driver.start() is Status.DRIVER_RUNNING
        recorder.wait_for("registered")
        master.send(offers_event(make_offer("o1"), make_offer("o2")))
        recorder.wait_for("resourceOffers")
        release = master.hold_next("Revive")
        driver.reviveOffers()
        master.wait_calls("Revive")
        # Queued while REVIVE is held: they go out together, in this order.
        master.refuse_next("Kill", grpc.StatusCode.INVALID_ARGUMENT, "kill.task_id: bad id")
        task = messages.TaskInfo(name="t1")
        task.task_id.value = "t1"
        task.command.value = "true"
        driver.launchTasks(messages.OfferID(value="o1"), [task])
        driver.killTask(messages.TaskID(value="t1"))
        driver.declineOffer(messages.OfferID(value="o2"))
        driver.reconcileTasks([])
        release.set()
        master.wait_calls("Reconcile")
        (message, status_inside) = recorder.wait_for("error")[0]
        assert "kill.task_id: bad id" in message
        assert status_inside is Status.DRIVER_RUNNING
        assert master.methods() == ["Revive", "Accept", "Kill", "Decline", "Reconcile"]
        assert master.batches == ([4] if master.batched else [])
        assert driver.status is Status.DRIVER_RUNNING
    finally:
        driver.abort()
        driver.join()


def test_driver_launch_in_a_batch_refused_for_a_stale_stream_is_reported_lost(
    framework_info: messages.FrameworkInfo,
) -> None:
    with ScriptedMaster() as master:
        recorder = Recorder()
        driver = SchedulerDriver(recorder, framework_info, master.address, config=FAST)
        try:
            driver.start()
            recorder.wait_for("registered")
            release = master.hold_next("Revive")
            driver.reviveOffers()
            master.wait_calls("Revive")
            master.refuse_next("Accept", grpc.StatusCode.PERMISSION_DENIED, "superseded")
            task = messages.TaskInfo(name="t")
            task.task_id.value = "t1"
            driver.launchTasks("o1", [task])
            driver.reconcileTasks([])
            release.set()
            (status,) = recorder.wait_for("statusUpdate")[0]
            assert status.state == messages.TASK_LOST
            assert status.reason == messages.REASON_MASTER_DISCONNECTED
            assert "error" not in recorder.names()
            assert master.batches == [2]
        finally:
            driver.abort()
            driver.join()
