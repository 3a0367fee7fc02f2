"""SchedulerClient (asyncio) against a scripted master: subscribing, calls, reconnecting, errors."""

from __future__ import annotations

import getpass

import grpc
import pytest

from framework_sdk import (
    CallFailedError,
    CallRefusedError,
    ClientConfig,
    NotSubscribedError,
    SchedulerClient,
    SubscriptionError,
    events,
    messages,
)
from tests.unit.sdk.conftest import FAST
from tests.unit.sdk.scripted_master import (
    ScriptedMaster,
    error_event,
    heartbeat_event,
    make_offer,
    offers_event,
    update_event,
)
from tests.unit.sdk.scripted_service import off_loop, run


async def next_event(client: SchedulerClient, *, heartbeats: bool = False) -> events.Event:
    return await anext(client.events(heartbeats=heartbeats))


def client_for(
    master: ScriptedMaster, info: messages.FrameworkInfo, config: ClientConfig = FAST
) -> SchedulerClient:
    return SchedulerClient(master.address, info, config=config)


def test_subscribes_and_reports_subscribed_first(
    master: ScriptedMaster, framework_info: messages.FrameworkInfo
) -> None:
    async def body() -> None:
        async with client_for(master, framework_info) as client:
            event = await next_event(client)
            assert isinstance(event, events.Subscribed)
            assert not event.resubscribed
            assert event.framework_id.value == "framework-1"
            assert event.master_info is not None
            assert event.master_info.id == "scripted-master"
            assert client.subscribed
            assert client.framework_id == messages.FrameworkID(value="framework-1")
            assert client.master_address == master.address
            client.session.validate()

    run(body)
    (subscribe,) = master.subscribe_calls
    assert subscribe.subscribe.framework_info.name == "test-framework"
    assert subscribe.subscribe.framework_info.user == "tester"
    assert not subscribe.HasField("framework_id")


def test_empty_user_is_filled_with_the_current_user(master: ScriptedMaster) -> None:
    async def body() -> None:
        async with client_for(master, messages.framework_info("fw")):
            pass

    run(body)
    assert master.subscribe_calls[0].subscribe.framework_info.user == getpass.getuser()


def test_calls_carry_framework_id_and_stream_id(
    master: ScriptedMaster, framework_info: messages.FrameworkInfo
) -> None:
    async def body() -> None:
        async with client_for(master, framework_info) as client:
            await client.decline(["o1"], messages.filters(30))
            await client.revive()
            await client.suppress("*")
            await client.kill("t1", "a1")
            await client.reconcile([])
            await client.message("a1", "e1", b"data")
            await client.request([messages.Request()])
            await client.shutdown("e1", "a1")

    run(body)
    recorded = master.calls
    assert [c.method for c in recorded] == [
        "Decline",
        "Revive",
        "Suppress",
        "Kill",
        "Reconcile",
        "Message",
        "Request",
        "Shutdown",
    ]
    assert {c.stream_id for c in recorded} == {"stream-1"}
    assert {c.call.framework_id.value for c in recorded} == {"framework-1"}
    assert recorded[0].call.decline.filters.refuse_seconds == 30


def test_launch_fills_the_agent_from_the_offer(
    master: ScriptedMaster, framework_info: messages.FrameworkInfo
) -> None:
    async def body() -> None:
        async with client_for(master, framework_info) as client:
            await next_event(client)  # SUBSCRIBED
            master.send(offers_event(make_offer("o1", agent_id="agent-9")))
            offers = await next_event(client)
            assert isinstance(offers, events.Offers)
            task = messages.TaskInfo(name="t")
            task.task_id.value = "t1"
            task.command.value = "true"
            await client.launch([offers.offers[0].id], [task])
            master.send(
                update_event("t1", messages.TASK_RUNNING, uuid=b"u" * 16, agent_id="agent-9")
            )
            update = await next_event(client)
            assert isinstance(update, events.Update)
            await client.acknowledge(update.status)
            await client.kill("t1")

    run(body)
    accept, ack, kill = master.calls
    assert accept.call.accept.operations[0].launch.task_infos[0].agent_id.value == "agent-9"
    assert ack.call.acknowledge.uuid == b"u" * 16
    assert ack.call.acknowledge.agent_id.value == "agent-9"
    assert kill.call.kill.agent_id.value == "agent-9"


def test_refused_call_raises_with_the_masters_message(
    master: ScriptedMaster, framework_info: messages.FrameworkInfo
) -> None:
    async def body() -> None:
        async with client_for(master, framework_info) as client:
            master.refuse_next(
                "Accept", grpc.StatusCode.INVALID_ARGUMENT, "accept.offer_ids[0]: unknown offer"
            )
            with pytest.raises(CallRefusedError) as refused:
                await client.accept(["o9"], [])
            assert refused.value.call_type == "ACCEPT"
            assert refused.value.code == "INVALID_ARGUMENT"
            assert refused.value.message == "accept.offer_ids[0]: unknown offer"
            assert "accept.offer_ids[0]: unknown offer" in str(refused.value)
            master.refuse_next("Kill", grpc.StatusCode.UNAVAILABLE, "overloaded")
            with pytest.raises(CallFailedError, match="KILL did not reach the master"):
                await client.kill("t1")
            assert client.subscribed
            await client.revive()  # The client carries on.

    run(body)
    assert master.methods() == ["Accept", "Kill", "Revive"]


def test_bad_arguments_fail_before_sending(
    master: ScriptedMaster, framework_info: messages.FrameworkInfo
) -> None:
    async def body() -> None:
        async with client_for(master, framework_info) as client:
            with pytest.raises(ValueError, match="offer_ids is empty"):
                await client.decline([])
            with pytest.raises(ValueError, match="no uuid"):
                await client.acknowledge(messages.TaskStatus())

    run(body)
    assert master.calls == []


@pytest.mark.parametrize("how", ["end", "fail"])
def test_reconnects_as_a_failover_when_the_stream_breaks(
    master: ScriptedMaster, framework_info: messages.FrameworkInfo, how: str
) -> None:
    async def body() -> None:
        async with client_for(master, framework_info) as client:
            assert isinstance(await next_event(client), events.Subscribed)
            if how == "end":
                master.end_stream()
            else:
                master.fail_stream(grpc.StatusCode.UNAVAILABLE, "master going away")
            lost = await next_event(client)
            assert isinstance(lost, events.Disconnected)
            assert ("UNAVAILABLE" if how == "fail" else "ended the stream") in lost.reason
            back = await next_event(client)
            assert isinstance(back, events.Subscribed)
            assert back.resubscribed
            await client.revive()
            client.session.validate()

    run(body)
    _first, second = master.subscribe_calls
    assert second.framework_id.value == "framework-1"
    assert second.subscribe.framework_info.id.value == "framework-1"
    assert master.calls[-1].stream_id == "stream-2"


def test_reconnects_when_heartbeats_stop(framework_info: messages.FrameworkInfo) -> None:
    # SUBSCRIBED promises a heartbeat every 0.05 s and none ever comes.
    with ScriptedMaster(heartbeat_interval=0.05) as master:

        async def body() -> None:
            async with client_for(master, framework_info) as client:
                await next_event(client)
                lost = await next_event(client)
                assert isinstance(lost, events.Disconnected)
                assert "heartbeats stopped" in lost.reason
                back = await next_event(client)
                assert isinstance(back, events.Subscribed)
                assert back.resubscribed

        run(body)
        assert master.subscribe_calls[1].framework_id.value == "framework-1"


def test_heartbeats_are_only_yielded_when_asked_for(
    master: ScriptedMaster, framework_info: messages.FrameworkInfo
) -> None:
    async def body() -> None:
        async with client_for(master, framework_info) as client:
            await next_event(client)
            master.send(heartbeat_event(), heartbeat_event(), offers_event(make_offer("o1")))
            assert isinstance(await next_event(client), events.Offers)
            master.send(heartbeat_event())
            assert isinstance(await next_event(client, heartbeats=True), events.Heartbeat)

    run(body)


def test_error_event_ends_the_client(
    master: ScriptedMaster, framework_info: messages.FrameworkInfo
) -> None:
    async def body() -> None:
        async with client_for(master, framework_info) as client:
            await next_event(client)
            master.send(error_event("Framework failed over"))
            seen = [event async for event in client.events()]
            assert seen == [events.Error(message="Framework failed over")]
            assert client.closed

    run(body)
    assert len(master.subscribe_calls) == 1


def test_calls_after_an_error_are_not_sent(
    master: ScriptedMaster, framework_info: messages.FrameworkInfo
) -> None:
    async def body() -> None:
        async with client_for(master, framework_info) as client:
            master.send(error_event("Framework has been removed"))
            async for _ in client.events():
                pass
            with pytest.raises(NotSubscribedError, match="KILL not sent"):
                await client.kill("t1")
            with pytest.raises(SubscriptionError, match="Framework has been removed"):
                await client.wait_subscribed()

    run(body)
    assert master.calls == []


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, "subscribe.framework_info.roles: bad"),
        (grpc.StatusCode.FAILED_PRECONDITION, "framework fw-1 was torn down"),
    ],
)
def test_subscribe_refused_for_good_raises(
    master: ScriptedMaster,
    framework_info: messages.FrameworkInfo,
    code: grpc.StatusCode,
    message: str,
) -> None:
    master.refuse_next_subscribe(code, message)

    async def body() -> None:
        with pytest.raises(SubscriptionError, match=f"{code.name}.*{message}"):
            async with client_for(master, framework_info):
                pass

    run(body)
    assert len(master.subscribe_calls) == 1


def test_subscribe_retried_while_the_master_is_unavailable(
    master: ScriptedMaster, framework_info: messages.FrameworkInfo
) -> None:
    master.refuse_next_subscribe(grpc.StatusCode.UNAVAILABLE, "starting")
    master.refuse_next_subscribe(grpc.StatusCode.UNAVAILABLE, "not the leader")

    async def body() -> None:
        async with client_for(master, framework_info) as client:
            event = await next_event(client)
            assert isinstance(event, events.Subscribed)
            assert not event.resubscribed  # Failed attempts are not subscriptions.

    run(body)
    assert len(master.subscribe_calls) == 3


def test_calls_before_subscribed_are_not_sent(framework_info: messages.FrameworkInfo) -> None:
    with ScriptedMaster(send_subscribed=False) as master:

        async def body() -> None:
            client = client_for(master, framework_info)
            await client.start()
            await off_loop(lambda: master.wait_streams(1))
            with pytest.raises(NotSubscribedError, match="DECLINE not sent"):
                await client.decline("o1")
            await client.close()

        run(body)
        assert master.calls == []


def test_no_subscribed_in_time_means_retry(framework_info: messages.FrameworkInfo) -> None:
    quick = ClientConfig(
        backoff_initial_seconds=0.01, backoff_max_seconds=0.05, subscribe_timeout_seconds=0.1
    )
    with ScriptedMaster(send_subscribed=False) as master:

        async def body() -> None:
            client = client_for(master, framework_info, quick)
            await client.start()
            await off_loop(lambda: master.wait_subscribes(3))
            await client.close()

        run(body)


def test_stream_not_starting_with_subscribed_is_dropped(
    framework_info: messages.FrameworkInfo,
) -> None:
    with ScriptedMaster(send_subscribed=False) as master:

        async def body() -> None:
            client = client_for(master, framework_info)
            await client.start()
            await off_loop(lambda: master.wait_streams(1))
            master.send(offers_event(make_offer("o1")))
            await off_loop(lambda: master.wait_subscribes(2))
            await client.close()

        run(body)


def test_suppress_while_connecting_rides_on_the_next_subscribe(
    framework_info: messages.FrameworkInfo,
) -> None:
    with ScriptedMaster(send_subscribed=False) as master:

        async def body() -> None:
            client = client_for(master, framework_info)
            await client.start()
            await off_loop(lambda: master.wait_streams(1))
            await client.suppress()  # Not subscribed: remembered, not sent, no error.
            master.end_stream()
            await off_loop(lambda: master.wait_subscribes(2))
            await client.close()

        run(body)
        assert master.calls == []
        assert list(master.subscribe_calls[1].subscribe.suppressed_roles) == ["*"]


def test_update_framework_is_sent_and_kept_for_resubscription(
    master: ScriptedMaster, framework_info: messages.FrameworkInfo
) -> None:
    async def body() -> None:
        async with client_for(master, framework_info) as client:
            await next_event(client)
            await client.suppress(["*"])
            renamed = messages.framework_info("renamed", user="tester")
            await client.update_framework(renamed)
            master.end_stream()
            assert isinstance(await next_event(client), events.Disconnected)
            assert isinstance(await next_event(client), events.Subscribed)

    run(body)
    update = master.wait_calls("UpdateFramework")[0].call.update_framework
    assert update.framework_info.name == "renamed"
    assert update.framework_info.id.value == "framework-1"
    assert list(update.suppressed_roles) == ["*"]
    resubscribe = master.subscribe_calls[1].subscribe
    assert resubscribe.framework_info.name == "renamed"
    assert list(resubscribe.suppressed_roles) == ["*"]


def test_teardown_sends_teardown_and_closes(
    master: ScriptedMaster, framework_info: messages.FrameworkInfo
) -> None:
    async def body() -> None:
        async with client_for(master, framework_info) as client:
            await next_event(client)
            await client.teardown()
            assert client.closed
            assert [event async for event in client.events()] == []

    run(body)
    assert master.methods() == ["Teardown"]
    assert len(master.subscribe_calls) == 1


def test_leaving_the_context_disconnects_without_teardown(
    master: ScriptedMaster, framework_info: messages.FrameworkInfo
) -> None:
    async def body() -> SchedulerClient:
        async with client_for(master, framework_info) as client:
            await next_event(client)
        assert client.closed
        assert [event async for event in client.events()] == []
        await client.close()  # Idempotent.
        return client

    client = run(body)
    assert master.calls == []
    assert client.session.close_reason == "closed by the scheduler"


def test_wait_subscribed_needs_start(framework_info: messages.FrameworkInfo) -> None:
    async def body() -> None:
        client = SchedulerClient("127.0.0.1:1", framework_info)
        with pytest.raises(NotSubscribedError, match="not started"):
            await client.wait_subscribed()

    run(body)


def test_bad_constructor_arguments() -> None:
    with pytest.raises(TypeError, match="framework_info must be a FrameworkInfo"):
        SchedulerClient("127.0.0.1:5050", "fw")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="is not 'host:port'"):
        SchedulerClient("localhost", messages.framework_info("fw"))
