"""Following a refusing master's leader hint, and events arriving after the client closed."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest

from framework_sdk import ClientConfig, SchedulerClient, events, messages
from framework_sdk.session import MAX_REDIRECTS, Retry, SchedulerSession
from protos.v1 import scheduler_pb2
from tests.unit.sdk.conftest import FAST
from tests.unit.sdk.scripted_master import ScriptedMaster, heartbeat_event
from tests.unit.sdk.scripted_service import off_loop, run
from tests.unit.sdk.test_session import subscribed_event

# A backoff this long outlasts run()'s guard: a client that backs off fails the test.
SLOW_BACKOFF = ClientConfig(
    backoff_initial_seconds=3600.0,
    backoff_max_seconds=3600.0,
    subscribe_timeout_seconds=20.0,
    call_timeout_seconds=20.0,
)


# -- the session (sans-I/O) --


def subscribed_session(info: messages.FrameworkInfo) -> SchedulerSession:
    session = SchedulerSession(info, config=FAST)
    session.subscribe_call(0.0)
    session.stream_opened("stream-1")
    session.receive(subscribed_event(), 0.0)
    return session


def test_events_after_close_are_dropped(framework_info: messages.FrameworkInfo) -> None:
    session = subscribed_session(framework_info)
    session.close("framework torn down")
    assert session.receive(heartbeat_event(), 1.0) is None
    assert session.close_reason == "framework torn down"
    session.validate()


def test_refusals_naming_a_leader_are_retried_at_once_a_few_times(
    framework_info: messages.FrameworkInfo,
) -> None:
    session = SchedulerSession(framework_info, config=SLOW_BACKOFF)
    for n in range(MAX_REDIRECTS):
        session.subscribe_call(0.0)
        retry = session.subscribe_failed("UNAVAILABLE", "not leading", 0.0, leader="b:1")
        assert isinstance(retry, Retry)
        assert retry.delay == 0.0
        assert "the leader is at b:1" in retry.reason
        assert session.redirects == n + 1
        session.validate()
    # Masters naming each other forever get the usual backoff.
    session.subscribe_call(0.0)
    retry = session.subscribe_failed("UNAVAILABLE", "not leading", 0.0, leader="b:1")
    assert isinstance(retry, Retry)
    assert retry.delay >= 1800.0
    assert session.redirects == 0
    session.validate()


def test_a_leader_named_with_another_code_gets_the_backoff(
    framework_info: messages.FrameworkInfo,
) -> None:
    session = SchedulerSession(framework_info, config=SLOW_BACKOFF)
    session.subscribe_call(0.0)
    retry = session.subscribe_failed("INTERNAL", "oops", 0.0, leader="b:1")
    assert isinstance(retry, Retry)
    assert retry.delay >= 1800.0


def test_subscribing_resets_the_redirects(framework_info: messages.FrameworkInfo) -> None:
    session = SchedulerSession(framework_info, config=FAST)
    session.subscribe_call(0.0)
    session.subscribe_failed("UNAVAILABLE", "not leading", 0.0, leader="b:1")
    session.subscribe_call(0.0)
    session.stream_opened("stream-1")
    session.receive(subscribed_event(), 0.0)
    assert session.redirects == 0
    session.validate()


# -- the client against scripted masters --


def test_client_follows_the_leader_hint_at_once(framework_info: messages.FrameworkInfo) -> None:
    with ScriptedMaster() as standby, ScriptedMaster() as leader:
        standby.refuse_next_subscribe(
            grpc.StatusCode.UNAVAILABLE, "not the leading master", leader=leader.address
        )

        async def body() -> None:
            client = SchedulerClient(standby.address, framework_info, config=SLOW_BACKOFF)
            async with client:
                event = await anext(client.events())
                assert isinstance(event, events.Subscribed)
                assert client.master_address == leader.address
                client.session.validate()

        run(body)
        assert len(standby.subscribe_calls) == 1
        assert len(leader.subscribe_calls) == 1


def test_the_hint_serves_one_attempt_then_the_detector_answers(
    framework_info: messages.FrameworkInfo,
) -> None:
    with ScriptedMaster() as standby, ScriptedMaster() as leader:
        standby.refuse_next_subscribe(
            grpc.StatusCode.UNAVAILABLE, "not the leading master", leader=leader.address
        )

        async def body() -> None:
            async with SchedulerClient(standby.address, framework_info, config=FAST) as client:
                assert client.master_address == leader.address
                leader.fail_stream(grpc.StatusCode.UNAVAILABLE, "going away")
                # The static detector is asked again: back to the configured master.
                await off_loop(lambda: standby.wait_subscribes(2))
                while not (client.subscribed and client.master_address == standby.address):
                    event = await anext(client.events())
                    assert not isinstance(event, events.Error), event

        run(body)


def test_a_hint_naming_the_refusing_master_itself_gets_the_backoff(
    framework_info: messages.FrameworkInfo,
) -> None:
    with ScriptedMaster() as master:
        master.refuse_next_subscribe(grpc.StatusCode.UNAVAILABLE, "electing", leader=master.address)

        async def body() -> None:
            async with SchedulerClient(master.address, framework_info, config=FAST) as client:
                assert client.session.redirects == 0
                assert client.master_address == master.address

        run(body)
        assert len(master.subscribe_calls) == 2


def test_events_after_teardown_are_dropped_quietly(
    master: ScriptedMaster,
    framework_info: messages.FrameworkInfo,
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = master.hold_next("Teardown")

    async def body() -> None:
        client = SchedulerClient(master.address, framework_info, config=FAST)
        async with client:
            await anext(client.events())
            task = client._task
            assert task is not None
            teardown = asyncio.create_task(client.teardown())
            await off_loop(lambda: master.wait_calls("Teardown"))
            # The master still writes on the stream while TEARDOWN is being answered.
            master.send(scheduler_pb2.Event(type=scheduler_pb2.Event.HEARTBEAT))
            await asyncio.shield(task)  # The connection task ends on reading it.
            release.set()
            await teardown
            assert client.closed
            assert client.session.close_reason == "framework torn down"

    with caplog.at_level(logging.DEBUG, logger="framework_sdk"):
        run(body)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert any("dropped a HEARTBEAT event" in r.getMessage() for r in caplog.records)
