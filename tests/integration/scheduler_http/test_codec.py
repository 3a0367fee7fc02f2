"""The scheduler API's codec on its own: Mesos's JSON, Accept negotiation, call decoding."""

from __future__ import annotations

import json
import math

import pytest
from google.protobuf import json_format

from master.http.scheduler_api.codec import (
    APPLICATION_JSON,
    APPLICATION_PROTOBUF,
    ApiError,
    accepted_media_type,
    decode_call,
    encode_events,
)
from protos.mesos_http import message_json
from protos.resources import Resources
from protos.v1 import mesos_pb2, scheduler_pb2
from tests.integration.scheduler_http.clients import RecordIODecoder

Event = scheduler_pb2.Event


def offers_event() -> scheduler_pb2.Event:
    event = Event(type=Event.OFFERS)
    offer = event.offers.offers.add()
    offer.id.value = "O1"
    offer.framework_id.value = "F1"
    offer.agent_id.value = "A1"
    offer.hostname = "host"
    offer.resources.extend(Resources.parse("cpus:1.5;mem:256;ports:[31000-31099]").to_protos())
    disk = offer.resources.add(name="volumes", type=mesos_pb2.Value.SET)
    disk.set.item.extend(["a", "b"])
    return event


def update_event(state: int) -> scheduler_pb2.Event:
    event = Event(type=Event.UPDATE)
    status = event.update.status
    status.task_id.value = "t1"
    status.state = state  # type: ignore[assignment]
    status.uuid = b"\x00\x01\xfe\xff" * 4
    status.timestamp = 1700000000.25
    status.source = mesos_pb2.TaskStatus.SOURCE_EXECUTOR
    return event


@pytest.mark.parametrize(
    "event",
    [offers_event(), update_event(mesos_pb2.TASK_STARTING), update_event(mesos_pb2.TASK_FINISHED)],
    ids=["offers", "starting", "finished"],
)
def test_mesos_json_reads_back_as_the_same_event(event: scheduler_pb2.Event) -> None:
    document = json.loads(json.dumps(message_json(event)))
    assert json_format.ParseDict(document, Event()) == event


def test_mesos_json_writes_numbers_names_and_base64() -> None:
    offer = message_json(offers_event())["offers"]["offers"][0]
    ports = next(r for r in offer["resources"] if r["name"] == "ports")
    assert ports["ranges"] == {"range": [{"begin": 31000, "end": 31099}]}
    assert ports["type"] == "RANGES"
    update = message_json(update_event(mesos_pb2.TASK_STARTING))
    status = update["update"]["status"]
    # TASK_STARTING is enum value 0, set explicitly: it is written (Mesos's proto2 presence).
    assert status["state"] == "TASK_STARTING"
    assert status["uuid"] == "AAH+/wAB/v8AAf7/AAH+/w=="
    assert status["source"] == "SOURCE_EXECUTOR"
    assert "message" not in status  # Unset fields are left out.
    assert status["timestamp"] == 1700000000.25


def test_non_finite_numbers_are_written_as_protobuf_spells_them() -> None:
    resource = mesos_pb2.Resource(name="cpus", type=mesos_pb2.Value.SCALAR)
    resource.scalar.value = math.inf
    assert message_json(resource)["scalar"] == {"value": "Infinity"}
    resource.scalar.value = math.nan
    assert message_json(resource)["scalar"] == {"value": "NaN"}


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (None, APPLICATION_JSON),
        ("", APPLICATION_JSON),
        ("*/*", APPLICATION_JSON),
        ("application/*", APPLICATION_JSON),
        ("application/x-protobuf", APPLICATION_PROTOBUF),
        ("application/json;q=0, application/x-protobuf", APPLICATION_PROTOBUF),
        ("application/x-protobuf, application/json", APPLICATION_JSON),
        ("Application/JSON; charset=utf-8", APPLICATION_JSON),
        ("text/html, */*;q=0.1", APPLICATION_JSON),
    ],
)
def test_accept_negotiation(accept: str | None, media: str) -> None:
    assert accepted_media_type(accept) == media


@pytest.mark.parametrize("accept", ["text/html", "application/json;q=0", "*/*;q=0"])
def test_an_accept_of_neither_is_406(accept: str) -> None:
    with pytest.raises(ApiError) as raised:
        accepted_media_type(accept)
    assert raised.value.status == 406


def test_calls_decode_from_json_with_parameters_and_protobuf() -> None:
    body = b'{"type": "DECLINE", "framework_id": {"value": "F"}, "decline": {"offer_ids": []}}'
    call = decode_call("application/json; charset=utf-8", body)
    assert call.type == scheduler_pb2.Call.DECLINE
    assert decode_call(APPLICATION_PROTOBUF, call.SerializeToString()) == call
    accept = {"type": "ACCEPT", "accept": {"filters": {"refuse_seconds": 5}}}
    accepted = decode_call(APPLICATION_JSON, json.dumps(accept).encode())
    assert accepted.accept.filters.refuse_seconds == 5


@pytest.mark.parametrize("media", [APPLICATION_JSON, APPLICATION_PROTOBUF])
def test_events_are_framed_one_record_each(media: str) -> None:
    events = [offers_event(), update_event(mesos_pb2.TASK_RUNNING), Event(type=Event.HEARTBEAT)]
    records = RecordIODecoder().feed(encode_events(events, media))
    assert len(records) == len(events)
    if media == APPLICATION_PROTOBUF:
        assert [Event.FromString(r) for r in records] == events
    else:
        assert [json_format.ParseDict(json.loads(r), Event()) for r in records] == events
