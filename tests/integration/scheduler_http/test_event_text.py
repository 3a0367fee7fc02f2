"""The SUBSCRIBE stream's JSON text (codec.message_text) is exactly ``json.dumps`` of
``message_json``: the form Mesos writes, checked on events with every kind of field."""

from __future__ import annotations

import json
import math

import pytest

from master.http.scheduler_api.codec import encode_events, message_text
from protos.mesos_http import APPLICATION_JSON, message_json, record
from protos.resources import Resources
from protos.v1 import mesos_pb2, scheduler_pb2

Event = scheduler_pb2.Event


def reference(message: object) -> str:
    return json.dumps(message_json(message), separators=(",", ":"))  # type: ignore[arg-type]


def subscribed() -> Event:
    event = Event(type=Event.SUBSCRIBED)
    event.subscribed.framework_id.value = "f-0001"
    event.subscribed.heartbeat_interval_seconds = 15.0
    info = event.subscribed.master_info
    info.id, info.ip, info.port, info.hostname, info.version = "m", 4294967295, 5050, "h", "1.11"
    info.address.hostname, info.address.ip, info.address.port = "h", "10.0.0.1", 5050
    return event


def offers() -> Event:
    event = Event(type=Event.OFFERS)
    offer = event.offers.offers.add()
    offer.id.value, offer.framework_id.value, offer.agent_id.value = "o", "f", "a"
    offer.hostname = 'höst ✓ "quoted" \\ \n'
    resources = Resources.parse("cpus:2.5;mem:1024;disk:1e12;ports:[31000-31009,32000-32000]")
    offer.resources.extend(resources.to_protos(allocation_role="web"))
    shares = offer.resources.add(name="shares", type=mesos_pb2.Value.SET)
    shares.set.item.extend(["a", "b"])
    offer.allocation_info.role = "web"
    attribute = offer.attributes.add(name="rack", type=mesos_pb2.Value.TEXT)
    attribute.text.value = "r1"
    offer.executor_ids.add().value = "e"
    return event


def update(**fields: object) -> Event:
    event = Event(type=Event.UPDATE)
    status = event.update.status
    status.task_id.value = "t"
    status.state = mesos_pb2.TASK_RUNNING
    status.source = mesos_pb2.TaskStatus.SOURCE_EXECUTOR
    status.agent_id.value = "a"
    status.timestamp = 1765000000.123456
    status.uuid = bytes(range(16))
    for name, value in fields.items():
        setattr(status, name, value)
    return event


def rich_update() -> Event:
    event = update(message="ünïcode\t", data=b"\x00\xff", healthy=False)
    status = event.update.status
    status.labels.labels.add(key="k", value="v")
    network = status.container_status.network_infos.add()
    network.ip_addresses.add(ip_address="10.0.0.2")
    status.reason = mesos_pb2.TaskStatus.REASON_COMMAND_EXECUTOR_FAILED
    status.unreachable_time.nanoseconds = -(2**62)
    return event


EVENTS = {
    "subscribed": subscribed(),
    "offers": offers(),
    "update": update(),
    "rich update": rich_update(),
    "a NaN timestamp": update(timestamp=math.nan),
    "an infinite timestamp": update(timestamp=-math.inf),
    "an empty message": Event(),
    "heartbeat": Event(type=Event.HEARTBEAT),
    "error": Event(type=Event.ERROR, error=Event.Error(message='no "way"')),
    "message": Event(type=Event.MESSAGE, message=Event.Message(data=b"\x01\x02\x03")),
}


@pytest.mark.parametrize("event", EVENTS.values(), ids=list(EVENTS))
def test_event_text_is_json_dumps_of_mesos_json(event: Event) -> None:
    assert message_text(event) == reference(event)


def test_a_type_with_a_map_field_is_written_through_message_json() -> None:
    task = mesos_pb2.TaskInfo(name="t")
    task.task_id.value = "t"
    task.resources.extend(Resources.parse("cpus:1").to_protos())
    task.limits["cpus"].value = 2.0
    task.limits["mem"].value = math.inf
    assert message_text(task) == reference(task)
    written = json.loads(message_text(task))
    assert written["name"] == "t"
    # A map is a JSON object, as protobuf's JSON mapping (and Mesos) write it.
    assert written["limits"] == {"cpus": {"value": 2.0}, "mem": {"value": "Infinity"}}


def test_the_stream_records_hold_that_text() -> None:
    events = list(EVENTS.values())
    expected = b"".join(record(reference(event).encode()) for event in events)
    assert encode_events(events, APPLICATION_JSON) == expected


@pytest.mark.parametrize(
    "identifier",
    [
        mesos_pb2.TaskID(),
        mesos_pb2.TaskID(value=""),
        mesos_pb2.AgentID(value="a1-S0"),
        mesos_pb2.FrameworkID(value='ünï "côdé" \\ \n'),
    ],
    ids=["unset", "set empty", "ascii", "escaped"],
)
def test_one_value_messages_are_written_alike(identifier: object) -> None:
    """Ids (one string field ``value``) are written without listing their fields: the same
    text, ``{}`` when the value is not set and ``{"value":""}`` when it is set empty."""
    assert message_text(identifier) == reference(identifier)  # type: ignore[arg-type]
