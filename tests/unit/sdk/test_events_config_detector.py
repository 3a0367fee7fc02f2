"""Typed events, ClientConfig and master detection."""

from __future__ import annotations

import asyncio

import pytest

from framework_sdk import ClientConfig, MasterDetector, StaticMasterDetector, events
from framework_sdk.detector import create_detector, parse_address, register_scheme
from protos.v1 import scheduler_pb2

Event = scheduler_pb2.Event


# -- events --


def test_every_wire_event_type_has_a_typed_form() -> None:
    expected = {
        Event.SUBSCRIBED: events.Subscribed,
        Event.OFFERS: events.Offers,
        Event.INVERSE_OFFERS: events.InverseOffers,
        Event.RESCIND: events.Rescind,
        Event.RESCIND_INVERSE_OFFER: events.RescindInverseOffer,
        Event.UPDATE: events.Update,
        Event.UPDATE_OPERATION_STATUS: events.UpdateOperationStatus,
        Event.MESSAGE: events.Message,
        Event.FAILURE: events.Failure,
        Event.ERROR: events.Error,
        Event.HEARTBEAT: events.Heartbeat,
        Event.UNKNOWN: events.Unknown,
    }
    assert set(expected) == set(Event.Type.values())
    for kind, cls in expected.items():
        wire = Event(type=kind)
        typed = events.from_proto(wire)
        assert type(typed) is cls
        assert typed.raw is wire


def test_payloads_are_carried_over() -> None:
    wire = Event(type=Event.SUBSCRIBED)
    wire.subscribed.framework_id.value = "fw"
    wire.subscribed.heartbeat_interval_seconds = 3
    typed = events.from_proto(wire, resubscribed=True)
    assert typed == events.Subscribed(
        framework_id=wire.subscribed.framework_id,
        heartbeat_interval_seconds=3.0,
        master_info=None,
        resubscribed=True,
    )
    offers = Event(type=Event.OFFERS)
    offers.offers.offers.add().id.value = "o1"
    typed_offers = events.from_proto(offers)
    assert isinstance(typed_offers, events.Offers)
    assert [o.id.value for o in typed_offers.offers] == ["o1"]
    message = Event(type=Event.MESSAGE)
    message.message.data = b"hi"
    message.message.agent_id.value = "a"
    message.message.executor_id.value = "e"
    assert events.from_proto(message) == events.Message(
        agent_id=message.message.agent_id, executor_id=message.message.executor_id, data=b"hi"
    )


def test_failure_tells_agent_loss_from_executor_exit() -> None:
    lost = Event(type=Event.FAILURE)
    lost.failure.agent_id.value = "a"
    typed = events.from_proto(lost)
    assert isinstance(typed, events.Failure)
    assert typed.agent_lost
    assert typed.status is None
    exited = Event(type=Event.FAILURE)
    exited.failure.agent_id.value = "a"
    exited.failure.executor_id.value = "e"
    exited.failure.status = 256
    typed = events.from_proto(exited)
    assert isinstance(typed, events.Failure)
    assert not typed.agent_lost
    assert typed.status == 256


def test_events_can_be_matched() -> None:
    wire = Event(type=Event.ERROR)
    wire.error.message = "bye"
    match events.from_proto(wire):
        case events.Error(message=text):
            assert text == "bye"
        case _:
            pytest.fail("not matched")


# -- config --


def test_config_defaults_follow_mesos_advice() -> None:
    config = ClientConfig()
    assert config.backoff_max_seconds == 15.0
    assert config.heartbeat_misses == 5.0
    assert config.call_timeout_seconds == 75.0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"backoff_initial_seconds": 0}, ValueError, "backoff_initial_seconds must be positive"),
        ({"heartbeat_misses": float("nan")}, ValueError, "heartbeat_misses must be positive"),
        ({"call_timeout_seconds": "5"}, TypeError, "call_timeout_seconds must be a number"),
        ({"backoff_max_seconds": 0.1}, ValueError, "backoff_max_seconds must be >="),
    ],
)
def test_config_rejects_bad_values(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        ClientConfig(**kwargs)  # type: ignore[arg-type]


def test_config_from_env() -> None:
    config = ClientConfig.from_env(
        {"EMPORION_SDK_BACKOFF_MAX_SECONDS": "30", "EMPORION_SDK_HEARTBEAT_MISSES": "3", "X": "1"}
    )
    assert (config.backoff_max_seconds, config.heartbeat_misses) == (30.0, 3.0)
    assert config.backoff_initial_seconds == ClientConfig().backoff_initial_seconds
    with pytest.raises(
        ValueError, match="EMPORION_SDK_CALL_TIMEOUT_SECONDS='soon' is not a number"
    ):
        ClientConfig.from_env({"EMPORION_SDK_CALL_TIMEOUT_SECONDS": "soon"})
    with pytest.raises(ValueError, match="invalid EMPORION_SDK_"):
        ClientConfig.from_env({"EMPORION_SDK_CALL_TIMEOUT_SECONDS": "-1"})


# -- detection --


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:5050", ("127.0.0.1", 5050)),
        ("master.example:1", ("master.example", 1)),
        ("[::1]:5050", ("[::1]", 5050)),
    ],
)
def test_parse_address(address: str, expected: tuple[str, int]) -> None:
    assert parse_address(address) == expected


@pytest.mark.parametrize(
    ("address", "match"),
    [
        ("localhost", "is not 'host:port'"),
        (":5050", "is not 'host:port'"),
        ("host:0", "no valid port"),
        ("host:99999", "no valid port"),
        ("host:http", "no valid port"),
        ("::1:5050", "IPv6 host in brackets"),
        ("[::1:5050", "malformed"),
    ],
)
def test_parse_address_rejects(address: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_address(address)


def test_static_detector_answers_its_address() -> None:
    detector = create_detector("127.0.0.1:5050")
    assert isinstance(detector, StaticMasterDetector)
    assert isinstance(detector, MasterDetector)
    assert asyncio.run(detector.detect()) == "127.0.0.1:5050"
    asyncio.run(detector.close())
    assert create_detector(detector) is detector


def test_unknown_scheme_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="no detector for scheme 'nope'"):
        create_detector("nope://127.0.0.1:2181/mesos")
    with pytest.raises(TypeError, match="master must be"):
        create_detector(5050)  # type: ignore[arg-type]


def test_zk_urls_get_the_zookeeper_detector() -> None:
    from framework_sdk.zk_detector import ZooKeeperMasterDetector

    detector = create_detector("zk://127.0.0.1:2181/emporion")
    assert isinstance(detector, ZooKeeperMasterDetector)
    asyncio.run(detector.close())


def test_registered_scheme_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("framework_sdk.detector._SCHEMES", {})  # Leave the real table alone.
    seen: list[str] = []

    def factory(url: str) -> MasterDetector:
        seen.append(url)
        return StaticMasterDetector("10.0.0.1:5050")

    register_scheme("testscheme", factory)
    detector = create_detector("testscheme://whatever")
    assert seen == ["testscheme://whatever"]
    assert asyncio.run(detector.detect()) == "10.0.0.1:5050"
    with pytest.raises(ValueError, match="plain word"):
        register_scheme("zk://", factory)
