"""The scheduler client follows the leader: a detector naming another master (or none), a grown
backoff cut short, calls refused by a master naming the leader; the driver gets it too.

Real gRPC servers (scripted masters on port 0) and an in-memory following detector that the test
moves. No wall-clock assertions: a backoff the client must not wait out is a sleep that never
ends (the client's ``sleep`` seam), so only news of the leader can end it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from framework_sdk import (
    CallFailedError,
    ClientConfig,
    SchedulerClient,
    SchedulerDriver,
    calls,
    events,
    messages,
)
from framework_sdk.aio import LEADER_METADATA
from framework_sdk.detector import LeaderFollowingDetector
from framework_sdk.session import Phase
from protos.v1 import scheduler_pb2
from tests.leader_fakes import FollowingDetector, Sleeps
from tests.unit.sdk.scripted_master import ScriptedMaster
from tests.unit.sdk.scripted_service import run
from tests.unit.sdk.test_driver import Recorder

# The backoff grows far past what a test waits for; following a leader starts it over.
CONFIG = ClientConfig(
    backoff_initial_seconds=0.01,
    backoff_max_seconds=3600.0,
    subscribe_timeout_seconds=20.0,
    call_timeout_seconds=20.0,
)
GROWN = 0.5
"""Delays from this long on are sleeps that never end (see :class:`Sleeps`)."""


class HintingMaster(ScriptedMaster):
    """A scripted master that can refuse a unary call, or a Batch, as a master that does not
    lead: UNAVAILABLE naming the leader in the ``emporion-leader`` trailing metadata."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._hints: dict[str, str] = {}

    def refuse_naming(self, method: str, leader: str) -> None:
        """Refuse the next call of ``method`` (``"Batch"``: the next Batch) naming ``leader``."""
        if method != "Batch":
            self.refuse_next(method, grpc.StatusCode.UNAVAILABLE, _not_leading(leader))
        self._hints[method] = leader

    def _unary_handler(self, method: str) -> Any:
        handle = super()._unary_handler(method)

        def hinting(request: scheduler_pb2.Call, context: grpc.ServicerContext) -> Any:
            leader = self._hints.pop(method, None)
            if leader is not None:
                context.set_trailing_metadata(((LEADER_METADATA, leader),))
            return handle(request, context)

        return hinting

    def _batch(
        self, request: scheduler_pb2.Calls, context: grpc.ServicerContext
    ) -> scheduler_pb2.CallResults:
        leader = self._hints.pop("Batch", None)
        if leader is not None:
            context.set_trailing_metadata(((LEADER_METADATA, leader),))
            context.abort(grpc.StatusCode.UNAVAILABLE, _not_leading(leader))
        return super()._batch(request, context)


def _not_leading(leader: str) -> str:
    return f"not the leading master; the leader is at {leader}"


@pytest.fixture
def framework_info() -> messages.FrameworkInfo:
    return messages.framework_info("follow", user="tester")


@pytest.fixture
def two() -> Iterator[tuple[HintingMaster, HintingMaster]]:
    """Two scripted masters serving Emporion's batched API."""
    with HintingMaster() as first, HintingMaster() as second:
        yield first, second


def _free_address() -> str:
    """An address nothing listens on (a master that died)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


async def _next(client: SchedulerClient) -> events.Event:
    event = await anext(client.events())
    assert not isinstance(event, events.Error), event
    return event


def test_the_fake_detector_follows_the_protocol() -> None:
    assert isinstance(FollowingDetector("a:1"), LeaderFollowingDetector)


# -- the detector names another leader --


def test_a_new_leader_ends_the_subscription_without_the_old_stream_breaking(
    two: tuple[HintingMaster, HintingMaster], framework_info: messages.FrameworkInfo
) -> None:
    old, new = two

    async def body() -> None:
        detector = FollowingDetector(old.address)
        sleeps = Sleeps()
        client = SchedulerClient(detector, framework_info, config=CONFIG, sleep=sleeps)
        async with client:
            assert isinstance(await _next(client), events.Subscribed)
            detector.set(new.address)
            # The old master never ended its stream: the client left on the detector's word.
            lost = await _next(client)
            assert isinstance(lost, events.Disconnected)
            assert lost.reason == (
                f"the leading master moved from {old.address} to {new.address},"
                " says the master detector"
            )
            back = await _next(client)
            assert isinstance(back, events.Subscribed)
            assert back.resubscribed
            assert client.master_address == new.address
            assert sleeps.delays
            assert max(sleeps.delays) <= CONFIG.backoff_initial_seconds
            client.session.validate()

    run(body)
    assert len(old.subscribe_calls) == 1
    (resubscribe,) = new.subscribe_calls
    assert resubscribe.framework_id.value == "framework-1"  # A failover, not a new framework.


def test_no_known_leader_ends_the_subscription_and_waits_for_one(
    two: tuple[HintingMaster, HintingMaster], framework_info: messages.FrameworkInfo
) -> None:
    old, new = two

    async def body() -> None:
        detector = FollowingDetector(old.address)
        async with SchedulerClient(detector, framework_info, config=CONFIG) as client:
            assert isinstance(await _next(client), events.Subscribed)
            detector.set(None)
            lost = await _next(client)
            assert isinstance(lost, events.Disconnected)
            assert lost.reason.startswith("no master is known to lead")
            # It waits in the detector, not in a loop of attempts.
            await detector.waiting.wait()
            assert client.session.phase is Phase.BACKING_OFF
            detector.set(new.address)
            back = await _next(client)
            assert isinstance(back, events.Subscribed)
            assert back.resubscribed
            assert client.master_address == new.address

    run(body)
    assert len(old.subscribe_calls) == 1
    assert len(new.subscribe_calls) == 1


def test_a_grown_backoff_ends_when_the_detector_names_another_leader(
    two: tuple[HintingMaster, HintingMaster], framework_info: messages.FrameworkInfo
) -> None:
    _, new = two

    async def body() -> None:
        # The detector still names a master that died: every attempt fails, the backoff grows.
        detector = FollowingDetector(_free_address())
        sleeps = Sleeps()
        client = SchedulerClient(detector, framework_info, config=CONFIG, sleep=sleeps)
        await client.start()
        try:
            await sleeps.blocked.wait()  # A grown backoff, which would never end by itself.
            assert client.session.attempt > 1
            detector.set(new.address)
            first = await _next(client)
            assert isinstance(first, events.Subscribed)
            assert client.master_address == new.address
            assert sleeps.cut_short == 1
        finally:
            await client.close()

    run(body)


def test_a_leader_from_a_hint_is_not_left_while_the_detector_is_behind(
    two: tuple[HintingMaster, HintingMaster], framework_info: messages.FrameworkInfo
) -> None:
    standby, leader = two
    standby.refuse_next_subscribe(
        grpc.StatusCode.UNAVAILABLE, _not_leading(leader.address), leader=leader.address
    )

    async def body() -> None:
        detector = FollowingDetector(standby.address)  # Behind: still names the standby.
        async with SchedulerClient(detector, framework_info, config=CONFIG) as client:
            assert client.master_address == leader.address
            await client.reconcile()  # Round trips: time for news, were there any.
            # The detector catching up is no news for the master the client is at ...
            detector.set(leader.address)
            await client.reconcile()
            assert client.subscribed
            assert client.master_address == leader.address
            assert client.session.stream_id == "stream-1"

    run(body)
    assert len(leader.subscribe_calls) == 1


# -- a call refused by a master that does not lead --


def test_a_call_refused_naming_the_leader_fails_and_moves_the_subscription(
    two: tuple[HintingMaster, HintingMaster], framework_info: messages.FrameworkInfo
) -> None:
    deposed, leader = two
    deposed.refuse_naming("Reconcile", leader.address)

    async def body() -> None:
        async with SchedulerClient(deposed.address, framework_info, config=CONFIG) as client:
            assert isinstance(await _next(client), events.Subscribed)
            with pytest.raises(CallFailedError) as caught:
                await client.reconcile()
            error = caught.value
            assert (error.call_type, error.code) == ("RECONCILE", "UNAVAILABLE")
            assert error.leader == leader.address
            assert error.message == _not_leading(leader.address)
            lost = await _next(client)
            assert isinstance(lost, events.Disconnected)
            assert lost.reason == (
                f"the leading master moved from {deposed.address} to {leader.address},"
                " says the master refusing RECONCILE"
            )
            back = await _next(client)
            assert isinstance(back, events.Subscribed)
            assert back.resubscribed
            assert client.master_address == leader.address

    run(body)
    # The refused call was not sent again.
    assert [c.method for c in leader.calls] == []
    assert len(deposed.subscribe_calls) == 1


def test_a_batch_refused_naming_the_leader_fails_each_call(
    two: tuple[HintingMaster, HintingMaster], framework_info: messages.FrameworkInfo
) -> None:
    deposed, leader = two
    deposed.refuse_naming("Batch", leader.address)

    async def body() -> None:
        async with SchedulerClient(deposed.address, framework_info, config=CONFIG) as client:
            assert client.batched
            outcomes = await client.send_all([calls.reconcile([]), calls.revive()])
            assert all(isinstance(o, CallFailedError) for o in outcomes)
            assert [o.leader for o in outcomes if isinstance(o, CallFailedError)] == [
                leader.address
            ] * 2
            assert isinstance(await _next(client), events.Subscribed)  # The first one ...
            lost = await _next(client)
            assert isinstance(lost, events.Disconnected)  # ... then the move.
            assert "says the master refusing a Batch of 2 calls" in lost.reason
            assert isinstance(await _next(client), events.Subscribed)
            assert client.master_address == leader.address

    run(body)
    assert leader.calls == []


def test_a_refusal_naming_the_master_itself_changes_nothing(
    two: tuple[HintingMaster, HintingMaster], framework_info: messages.FrameworkInfo
) -> None:
    master, _ = two
    master.refuse_naming("Reconcile", master.address)

    async def body() -> None:
        async with SchedulerClient(master.address, framework_info, config=CONFIG) as client:
            with pytest.raises(CallFailedError) as caught:
                await client.reconcile()
            assert caught.value.leader == master.address
            await client.reconcile()
            assert client.subscribed
            assert client.session.stream_id == "stream-1"

    run(body)
    assert len(master.subscribe_calls) == 1


def test_other_failures_name_no_leader(
    two: tuple[HintingMaster, HintingMaster], framework_info: messages.FrameworkInfo
) -> None:
    master, _ = two
    master.refuse_next("Reconcile", grpc.StatusCode.UNAVAILABLE, "overloaded")

    async def body() -> None:
        async with SchedulerClient(master.address, framework_info, config=CONFIG) as client:
            with pytest.raises(CallFailedError) as caught:
                await client.reconcile()
            assert caught.value.leader is None
            assert client.subscribed

    run(body)


# -- the threaded driver, through its client --


def test_the_driver_follows_a_refusal_naming_the_leader(
    two: tuple[HintingMaster, HintingMaster], framework_info: messages.FrameworkInfo
) -> None:
    deposed, leader = two
    deposed.refuse_naming("Reconcile", leader.address)
    recorder = Recorder()
    driver = SchedulerDriver(recorder, framework_info, deposed.address, config=CONFIG)
    try:
        driver.start()
        recorder.wait_for("registered")
        driver.reconcileTasks([])
        recorder.wait_for("reregistered")
        assert recorder.names() == ["registered", "disconnected", "reregistered"]
        (resubscribe,) = leader.wait_subscribes(1)
        assert resubscribe.framework_id.value == "framework-1"
        driver.reviveOffers()  # Calls now go to the leader.
        assert leader.wait_calls("Revive")[0].stream_id == "stream-1"
    finally:
        driver.abort()
        driver.join()
    assert leader.methods() == ["Revive"]  # The refused RECONCILE was not sent again.


def test_the_driver_follows_a_detector(
    two: tuple[HintingMaster, HintingMaster], framework_info: messages.FrameworkInfo
) -> None:
    old, new = two
    recorder = Recorder()
    detector = FollowingDetector(old.address)
    driver = SchedulerDriver(recorder, framework_info, detector, config=CONFIG)
    try:
        driver.start()
        recorder.wait_for("registered")
        assert detector.loop is not None  # The driver thread's.
        detector.loop.call_soon_threadsafe(detector.set, new.address)
        recorder.wait_for("reregistered")
        assert recorder.names() == ["registered", "disconnected", "reregistered"]
        assert len(new.wait_subscribes(1)) == 1
    finally:
        driver.abort()
        driver.join()
    assert len(old.subscribe_calls) == 1


def test_a_launch_refused_by_a_master_that_does_not_lead_reports_its_tasks_lost(
    two: tuple[HintingMaster, HintingMaster], framework_info: messages.FrameworkInfo
) -> None:
    # The refusal names the leader, so the launch was not applied: as for a launch made while
    # disconnected, the driver answers it with TASK_LOST instead of leaving the task unknown.
    deposed, leader = two
    recorder = Recorder()
    driver = SchedulerDriver(recorder, framework_info, deposed.address, config=CONFIG)
    try:
        driver.start()
        recorder.wait_for("registered")
        deposed.refuse_naming("Accept", leader.address)
        task = messages.TaskInfo(name="t")
        task.task_id.value = "t1"
        driver.launchTasks("o1", [task])
        (status,) = recorder.wait_for("statusUpdate")[0]
        assert status.state == messages.TASK_LOST
        assert status.reason == messages.REASON_MASTER_DISCONNECTED
        assert status.task_id.value == "t1"
        recorder.wait_for("reregistered")
    finally:
        driver.abort()
        driver.join()
    assert "Accept" not in leader.methods()  # Not sent again.
