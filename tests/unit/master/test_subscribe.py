"""SUBSCRIBE: registration, failover, superseded subscriptions, and the checks on who may call."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from master.core import CallError, CloseSubscription, ErrorCode, FrameworkPhase, SendEvent
from tests.unit.master.harness import Call, Capability, Event, FakeAgent, Harness


def test_new_framework_gets_subscribed_with_id_heartbeat_and_master_info(harness: Harness) -> None:
    framework_id, stream_id = harness.subscribe()
    assert framework_id == "M-0000"
    (event,) = harness.events(framework_id, Event.SUBSCRIBED)
    assert event.subscribed.framework_id.value == framework_id
    assert event.subscribed.heartbeat_interval_seconds == 15.0
    assert event.subscribed.master_info.id == "M"
    fw = harness.master.framework(framework_id)
    assert fw is not None
    assert fw.phase is FrameworkPhase.CONNECTED
    assert fw.stream_id == stream_id
    assert harness.registry.load().frameworks[framework_id].disconnected_at is None


def test_frameworks_get_consecutive_ids(harness: Harness) -> None:
    assert [harness.subscribe(name=f"f{i}")[0] for i in range(3)] == ["M-0000", "M-0001", "M-0002"]


def test_second_subscriber_supersedes_the_first(harness: Harness) -> None:
    framework_id, first = harness.subscribe(failover_timeout=60)
    harness.clear()
    _, second = harness.subscribe(framework_id=framework_id, failover_timeout=60)
    assert second != first
    closes = harness.closed_streams()
    assert closes == [CloseSubscription(first, "Framework failed over")]
    # SUBSCRIBED goes to the new stream only.
    sends = [e for e in harness.effects if isinstance(e, SendEvent)]
    assert [(e.stream_id, e.event.type) for e in sends] == [(second, Event.SUBSCRIBED)]
    # The old stream's end does not disconnect the framework.
    harness.close_stream(first)
    fw = harness.master.framework(framework_id)
    assert fw is not None
    assert fw.connected


def test_failover_takes_outstanding_offers_back_silently(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, _ = harness.subscribe(failover_timeout=60)
    harness.allocate()
    assert len(harness.offers(framework_id)) == 1
    harness.clear()
    harness.subscribe(framework_id=framework_id, failover_timeout=60)
    assert harness.events(framework_id, Event.RESCIND) == []
    assert harness.master.state.offers == {}
    harness.allocate()
    assert len(harness.offers(framework_id)) == 1  # Offered again to the new scheduler.


def test_resubscribe_of_a_disconnected_framework_reconnects_it(harness: Harness) -> None:
    framework_id, stream_id = harness.subscribe(failover_timeout=60)
    harness.close_stream(stream_id)
    harness.advance(30)
    harness.subscribe(framework_id=framework_id, failover_timeout=60)
    harness.advance(60)  # The old deadline passes harmlessly.
    fw = harness.master.framework(framework_id)
    assert fw is not None
    assert fw.connected
    assert harness.registry.load().frameworks[framework_id].disconnected_at is None


def test_unknown_framework_id_is_accepted_as_mesos_does(harness: Harness) -> None:
    framework_id, _ = harness.subscribe(framework_id="old-master-0007")
    assert framework_id == "old-master-0007"


def test_torn_down_framework_cannot_resubscribe(harness: Harness) -> None:
    framework_id, stream_id = harness.subscribe()
    harness.call(framework_id, stream_id, Call(type=Call.TEARDOWN))
    with pytest.raises(CallError) as raised:
        harness.subscribe(framework_id=framework_id)
    assert raised.value.code is ErrorCode.FAILED_PRECONDITION
    assert "torn down" in raised.value.message


def test_multi_role_framework_subscribes_with_roles(harness: Harness) -> None:
    framework_id, _ = harness.subscribe(roles=("eng", "ops"))
    fw = harness.master.framework(framework_id)
    assert fw is not None
    assert fw.roles == {"eng", "ops"}


def test_suppressed_roles_at_subscribe_get_no_offers(harness: Harness, agent: FakeAgent) -> None:
    framework_id, _ = harness.subscribe(roles=("eng", "ops"), suppressed_roles=("eng",))
    harness.allocate()
    assert {o.allocation_info.role for o in harness.offers(framework_id)} == {"ops"}


def _subscribe_call(harness: Harness) -> Call:
    call = Call(type=Call.SUBSCRIBE)
    call.subscribe.framework_info.CopyFrom(harness.framework_info())
    return call


def _set(field: str, value: object) -> Callable[[Call], None]:
    """A mutation setting ``subscribe.framework_info.<field>``."""

    def mutate(call: Call) -> None:
        setattr(call.subscribe.framework_info, field, value)

    return mutate


def _ids(call_id: str, info_id: str = "") -> Callable[[Call], None]:
    def mutate(call: Call) -> None:
        call.framework_id.value = call_id
        if info_id:
            call.subscribe.framework_info.id.value = info_id

    return mutate


BAD_SUBSCRIBES: list[tuple[Callable[[Call], object], str]] = [
    (lambda c: c.ClearField("subscribe"), "subscribe is required"),
    (lambda c: c.subscribe.ClearField("framework_info"), "subscribe.framework_info is required"),
    (lambda c: c.subscribe.framework_info.ClearField("name"), "framework_info.name is required"),
    (_set("failover_timeout", math.nan), "failover_timeout nan"),
    (_set("failover_timeout", -1.0), "failover_timeout -1.0"),
    (lambda c: c.subscribe.framework_info.roles.append("eng"), "needs the MULTI_ROLE"),
    (_set("role", "a//b"), "framework_info.role"),
    (lambda c: c.subscribe.suppressed_roles.append("other"), "suppressed_roles[0]"),
    (_ids("a", "b"), "differs from subscribe.framework_info.id"),
    (_ids("a/b"), "framework_id 'a/b'"),
    (
        lambda c: c.subscribe.offer_constraints.role_constraints["*"].groups.add(),
        "offer constraints are not supported",
    ),
]


@pytest.mark.parametrize(("mutate", "message"), BAD_SUBSCRIBES)
def test_bad_subscribe_is_refused_and_changes_nothing(
    harness: Harness, mutate: Callable[[Call], object], message: str
) -> None:
    call = _subscribe_call(harness)
    mutate(call)
    with pytest.raises(CallError) as raised:
        harness.master.subscribe("s", call, harness.now)
    assert raised.value.code is ErrorCode.INVALID_ARGUMENT
    assert message in raised.value.message
    assert harness.master.state.frameworks == {}
    assert harness.master.state.streams == {}
    assert harness.master.state.take_effects() == []


def test_multi_role_rules(harness: Harness) -> None:
    info = harness.framework_info(roles=("eng",), capabilities=[Capability.MULTI_ROLE])
    info.role = "eng"  # Both role and roles: refused.
    call = Call(type=Call.SUBSCRIBE)
    call.subscribe.framework_info.CopyFrom(info)
    with pytest.raises(CallError, match="must not be set by a MULTI_ROLE framework"):
        harness.master.subscribe("s", call, harness.now)
    info.ClearField("role")
    info.roles.append("eng")
    call.subscribe.framework_info.CopyFrom(info)
    with pytest.raises(CallError, match=r"roles\[1\]: role 'eng' is listed twice"):
        harness.master.subscribe("s", call, harness.now)


def test_failover_may_not_change_user_principal_or_checkpoint(harness: Harness) -> None:
    framework_id, _ = harness.subscribe(failover_timeout=10)
    info = harness.framework_info(failover_timeout=10, checkpoint=True)
    with pytest.raises(CallError, match="checkpoint cannot change"):
        harness.subscribe(info, framework_id=framework_id)
    info = harness.framework_info(failover_timeout=10)
    info.user = "someone-else"
    with pytest.raises(CallError, match="user cannot change"):
        harness.subscribe(info, framework_id=framework_id)
    fw = harness.master.framework(framework_id)
    assert fw is not None
    assert fw.info.user == "tester"


# -- who may call ---------------------------------------------------------------------------


def _revive() -> Call:
    return Call(type=Call.REVIVE, revive=Call.Revive())


def test_call_before_subscribe_is_a_failed_precondition(harness: Harness) -> None:
    with pytest.raises(CallError) as raised:
        harness.call("nobody-0000", "stream", _revive())
    assert raised.value.code is ErrorCode.FAILED_PRECONDITION


def test_call_without_framework_id_is_invalid(harness: Harness) -> None:
    harness.subscribe()
    with pytest.raises(CallError) as raised:
        harness.master.call("stream-1", _revive(), harness.now)
    assert raised.value.code is ErrorCode.INVALID_ARGUMENT
    assert "framework_id is required" in raised.value.message


def test_call_without_stream_id_is_invalid(harness: Harness) -> None:
    framework_id, _ = harness.subscribe()
    with pytest.raises(CallError) as raised:
        harness.call(framework_id, None, _revive())
    assert raised.value.code is ErrorCode.INVALID_ARGUMENT
    assert "mesos-stream-id" in raised.value.message


def test_call_from_superseded_stream_is_permission_denied(harness: Harness) -> None:
    framework_id, first = harness.subscribe(failover_timeout=5)
    harness.subscribe(framework_id=framework_id, failover_timeout=5)
    with pytest.raises(CallError) as raised:
        harness.call(framework_id, first, _revive())
    assert raised.value.code is ErrorCode.PERMISSION_DENIED


def test_call_of_disconnected_framework_is_a_failed_precondition(harness: Harness) -> None:
    framework_id, stream_id = harness.subscribe(failover_timeout=5)
    harness.close_stream(stream_id)
    with pytest.raises(CallError) as raised:
        harness.call(framework_id, stream_id, _revive())
    assert raised.value.code is ErrorCode.FAILED_PRECONDITION


def test_subscribe_type_is_not_a_call(harness: Harness) -> None:
    framework_id, stream_id = harness.subscribe()
    with pytest.raises(CallError, match="not a call this method takes"):
        harness.call(framework_id, stream_id, Call(type=Call.SUBSCRIBE))
    with pytest.raises(CallError, match="type must be SUBSCRIBE"):
        harness.master.subscribe("s", _revive(), harness.now)


def test_heartbeats_every_interval_while_subscribed(harness: Harness) -> None:
    framework_id, stream_id = harness.subscribe(failover_timeout=100)
    harness.advance(45)
    assert len(harness.events(framework_id, Event.HEARTBEAT)) == 3
    harness.close_stream(stream_id)
    harness.advance(45)
    assert len(harness.events(framework_id, Event.HEARTBEAT)) == 3
