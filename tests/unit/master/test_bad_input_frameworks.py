"""Bad input from frameworks outside ACCEPT: FrameworkInfo bounds, self-chosen framework ids,
REVIVE and SUPPRESS without payload, error messages that quote input, and OFFERS events that
would be over the message-size limit."""

from __future__ import annotations

import pytest

from master.core import CallError, ErrorCode, offers
from master.core.errors import MAX_ERROR_CHARS, shown
from master.core.validation import MAX_FRAMEWORK_INFO_BYTES
from protos.limits import MAX_MESSAGE_BYTES
from protos.v1 import mesos_pb2
from tests.unit.master.harness import Call, Event, FakeAgent, Harness, accept_call, command_task


def _subscribe_call(info: mesos_pb2.FrameworkInfo) -> Call:
    call = Call(type=Call.SUBSCRIBE)
    call.subscribe.framework_info.CopyFrom(info)
    return call


def _refused_subscribe(harness: Harness, info: mesos_pb2.FrameworkInfo) -> CallError:
    registry_before = harness.registry.load()
    with pytest.raises(CallError) as raised:
        harness.master.subscribe("stream-x", _subscribe_call(info), harness.now)
    assert raised.value.code is ErrorCode.INVALID_ARGUMENT
    assert harness.master.state.frameworks == {}
    assert harness.master.state.streams == {}
    assert harness.registry.load() == registry_before
    harness.master.validate()
    return raised.value


# -- FrameworkInfo --------------------------------------------------------------------------------


def test_an_empty_framework_name_is_refused(harness: Harness) -> None:
    error = _refused_subscribe(harness, harness.framework_info(name=""))
    assert error.message == "subscribe.framework_info.name must not be empty"


@pytest.mark.parametrize(
    ("field", "size", "limit"),
    [
        ("name", 1024 * 1024, 1024),
        ("name", 1025, 1024),
        ("user", 256, 255),
        ("principal", 256, 255),
        ("hostname", 256, 255),
        ("webui_url", 4097, 4096),
    ],
)
def test_framework_fields_are_bounded(harness: Harness, field: str, size: int, limit: int) -> None:
    info = harness.framework_info()
    setattr(info, field, "a" * size)
    error = _refused_subscribe(harness, info)
    assert error.message.startswith(f"subscribe.framework_info.{field} 'aaaa")
    assert f"is {size} bytes long; at most {limit} are allowed" in error.message
    assert len(error.message) < 300  # The value is quoted by a bounded prefix.


def test_a_role_is_bounded(harness: Harness) -> None:
    error = _refused_subscribe(harness, harness.framework_info(roles=("r" * 256,)))
    assert "subscribe.framework_info.role 'rrr" in error.message
    assert "is 256 bytes long; at most 255 are allowed" in error.message
    error = _refused_subscribe(harness, harness.framework_info(roles=("eng", "r" * 300)))
    assert "subscribe.framework_info.roles[1] 'rrr" in error.message


def test_the_whole_framework_info_is_bounded(harness: Harness) -> None:
    info = harness.framework_info()
    for n in range(100):
        info.labels.labels.add(key=f"k{n}", value="v" * 1000)
    error = _refused_subscribe(harness, info)
    assert error.message.startswith(f"subscribe.framework_info is {info.ByteSize()} bytes long")
    assert f"at most {MAX_FRAMEWORK_INFO_BYTES} bytes" in error.message


def test_framework_fields_at_their_limits_are_accepted(harness: Harness) -> None:
    info = harness.framework_info(name="n" * 1024)
    info.user = "u" * 255
    info.hostname = "h" * 255
    info.webui_url = "w" * 4096
    harness.subscribe(info)


def test_update_framework_is_bounded_too(harness: Harness) -> None:
    framework_id, stream_id = harness.subscribe()
    call = Call(type=Call.UPDATE_FRAMEWORK)
    info = call.update_framework.framework_info
    info.CopyFrom(harness.framework_info(name=""))
    info.id.value = framework_id
    with pytest.raises(
        CallError, match=r"update_framework\.framework_info\.name must not be empty"
    ):
        harness.call(framework_id, stream_id, call)
    info.name = "x" * 5000
    with pytest.raises(CallError, match=r"name 'xxx.*is 5000 bytes long; at most 1024"):
        harness.call(framework_id, stream_id, call)
    fw = harness.master.framework(framework_id)
    assert fw is not None
    assert fw.info.name == "fw"


@pytest.mark.parametrize(
    ("framework_id", "message"),
    [
        ("f" * 256, "framework_id 'fff"),
        ("a/b", "framework_id 'a/b' must not contain '/'"),
        ("..", "framework_id '..' is not a valid id"),
    ],
)
def test_a_self_chosen_framework_id_must_be_a_valid_id(
    harness: Harness, framework_id: str, message: str
) -> None:
    call = _subscribe_call(harness.framework_info())
    call.framework_id.value = framework_id
    with pytest.raises(CallError) as raised:
        harness.master.subscribe("stream-x", call, harness.now)
    assert raised.value.code is ErrorCode.INVALID_ARGUMENT
    assert raised.value.message.startswith(message)
    assert harness.master.state.frameworks == {}


# -- self-chosen framework ids --------------------------------------------------------------------


def test_generated_framework_ids_skip_self_chosen_ones(harness: Harness) -> None:
    # "M" is the harness master's id: "M-0000" is what it would generate first.
    taken, _ = harness.subscribe(framework_id="M-0000")
    assert taken == "M-0000"
    first, _ = harness.subscribe()
    assert first == "M-0001"
    chosen, chosen_stream = harness.subscribe(framework_id="M-0003")
    harness.call(chosen, chosen_stream, Call(type=Call.TEARDOWN))
    assert "M-0003" in harness.master.state.completed
    assert [harness.subscribe()[0] for _ in range(2)] == ["M-0002", "M-0004"]
    assert set(harness.master.state.frameworks) == {"M-0000", "M-0001", "M-0002", "M-0004"}


# -- REVIVE and SUPPRESS without payload ----------------------------------------------------------


def test_suppress_and_revive_without_payload_mean_every_role(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, stream_id = harness.subscribe(roles=("eng", "ops"))
    harness.call(framework_id, stream_id, Call(type=Call.SUPPRESS))
    fw = harness.master.framework(framework_id)
    assert fw is not None
    assert fw.suppressed_roles == {"eng", "ops"}
    harness.allocate()
    assert harness.offers(framework_id) == []
    harness.call(framework_id, stream_id, Call(type=Call.REVIVE))
    assert fw.suppressed_roles == frozenset()
    harness.allocate()
    assert harness.offers(framework_id)


def test_revive_without_payload_clears_every_filter(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = harness.subscribe()
    harness.allocate()
    (offer,) = harness.offers(framework_id)
    decline = Call(type=Call.DECLINE)
    decline.decline.offer_ids.add().CopyFrom(offer.id)
    decline.decline.filters.refuse_seconds = 3600
    harness.call(framework_id, stream_id, decline)
    harness.allocate()
    assert len(harness.offers(framework_id)) == 1
    harness.call(framework_id, stream_id, Call(type=Call.REVIVE))
    harness.allocate()
    assert len(harness.offers(framework_id)) == 2


# -- error messages quote bounded input -----------------------------------------------------------


def test_shown_bounds_what_it_quotes() -> None:
    assert shown("abc") == "'abc'"
    assert shown("a" * 100) == repr("a" * 100)
    assert shown("a" * 10240) == f"{'a' * 100!r}... (10240 chars)"
    assert shown(b"\x00" * 200, limit=2) == "b'\\x00\\x00'... (200 bytes)"
    assert shown(1.5) == "1.5"


def test_a_call_error_is_never_longer_than_the_limit() -> None:
    error = CallError(ErrorCode.INVALID_ARGUMENT, "x" * 100_000)
    assert len(error.message) == MAX_ERROR_CHARS
    assert error.message.endswith("... (truncated)")
    assert str(error) == error.message


def test_a_10_kb_offer_id_is_quoted_by_a_prefix(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = harness.subscribe()
    with pytest.raises(CallError) as raised:
        harness.call(framework_id, stream_id, accept_call(["o" * 10240]))
    assert raised.value.message.startswith(f"accept.offer_ids[0]: offer {'o' * 100!r}...")
    assert "(10240 chars)" in raised.value.message
    assert len(raised.value.message) < 400
    # With tasks, the TASK_ERROR message is bounded the same way.
    task = command_task("t", agent.agent_id)
    harness.call(framework_id, stream_id, accept_call(["o" * 10240], [task]))
    (status,) = harness.updates(framework_id)
    assert status.reason == mesos_pb2.TaskStatus.REASON_INVALID_OFFERS
    assert len(status.message) < 400


# -- OFFERS events stay under the message-size limit ----------------------------------------------


def test_offers_events_are_split_under_the_limit(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert offers._EVENT_BYTES == MAX_MESSAGE_BYTES - 64
    monkeypatch.setattr(offers, "_EVENT_BYTES", 400)  # Two offers per event, not thousands.
    agents = [harness.register_agent(hostname=f"host{n}") for n in range(10)]
    framework_id, _ = harness.subscribe()
    harness.allocate()
    events = harness.events(framework_id, Event.OFFERS)
    assert len(events) >= 4
    for event in events:
        assert event.ByteSize() <= 400 + 64
    offered = {o.agent_id.value for e in events for o in e.offers.offers}
    assert offered == {agent.agent_id for agent in agents}
    assert len(harness.master.state.offers) == 10


def test_an_offer_over_the_limit_alone_still_goes_out(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(offers, "_EVENT_BYTES", 10)
    harness.register_agent()
    harness.register_agent(hostname="host2")
    framework_id, _ = harness.subscribe()
    harness.allocate()
    events = harness.events(framework_id, Event.OFFERS)
    assert [len(e.offers.offers) for e in events] == [1, 1]
