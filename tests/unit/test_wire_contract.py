"""The wire contract mirrors Mesos v1: names, numbers and the JSON form of messages."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from google.protobuf import json_format

from protos.v1 import executor_pb2, mesos_pb2, scheduler_pb2

ROOT = Path(__file__).resolve().parents[2]


def to_json(message: object) -> dict[str, object]:
    from google.protobuf.message import Message

    assert isinstance(message, Message)
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def test_task_states_have_mesos_values() -> None:
    expected = {
        "TASK_STAGING": 6,
        "TASK_STARTING": 0,
        "TASK_RUNNING": 1,
        "TASK_KILLING": 8,
        "TASK_FINISHED": 2,
        "TASK_FAILED": 3,
        "TASK_KILLED": 4,
        "TASK_ERROR": 7,
        "TASK_LOST": 5,
        "TASK_DROPPED": 9,
        "TASK_UNREACHABLE": 10,
        "TASK_GONE": 11,
        "TASK_GONE_BY_OPERATOR": 12,
        "TASK_UNKNOWN": 13,
    }
    assert {name: mesos_pb2.TaskState.Value(name) for name in expected} == expected
    assert set(mesos_pb2.TaskState.keys()) == set(expected)


def test_accept_call_json_uses_mesos_names() -> None:
    call = scheduler_pb2.Call(type=scheduler_pb2.Call.ACCEPT)
    call.framework_id.value = "fw-1"
    call.accept.offer_ids.add(value="O1")
    op = call.accept.operations.add(type=mesos_pb2.Offer.Operation.LAUNCH)
    task = op.launch.task_infos.add(name="t", task_id=mesos_pb2.TaskID(value="t1"))
    task.agent_id.value = "S1"
    task.command.value = "echo hi"
    res = task.resources.add(name="cpus", type=mesos_pb2.Value.SCALAR)
    res.scalar.value = 0.5
    call.accept.filters.refuse_seconds = 10.0

    as_json = to_json(call)
    assert as_json["type"] == "ACCEPT"
    assert as_json["framework_id"] == {"value": "fw-1"}
    accept = as_json["accept"]
    assert isinstance(accept, dict)
    assert accept["offer_ids"] == [{"value": "O1"}]
    assert accept["filters"] == {"refuse_seconds": 10.0}
    operation = accept["operations"][0]
    assert operation["type"] == "LAUNCH"
    info = operation["launch"]["task_infos"][0]
    assert info["task_id"] == {"value": "t1"}
    assert info["agent_id"] == {"value": "S1"}
    assert info["command"] == {"value": "echo hi"}
    assert info["resources"] == [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}}]

    # And Mesos JSON parses back into the same message.
    assert json_format.ParseDict(as_json, scheduler_pb2.Call()) == call


def test_scheduler_call_and_event_numbers_match_mesos() -> None:
    call_types = {
        "UNKNOWN": 0, "SUBSCRIBE": 1, "TEARDOWN": 2, "ACCEPT": 3, "DECLINE": 4, "REVIVE": 5,
        "KILL": 6, "SHUTDOWN": 7, "ACKNOWLEDGE": 8, "RECONCILE": 9, "MESSAGE": 10, "REQUEST": 11,
        "SUPPRESS": 12, "ACCEPT_INVERSE_OFFERS": 13, "DECLINE_INVERSE_OFFERS": 14,
        "ACKNOWLEDGE_OPERATION_STATUS": 15, "RECONCILE_OPERATIONS": 16, "UPDATE_FRAMEWORK": 17,
    }  # fmt: skip
    assert dict(scheduler_pb2.Call.Type.items()) == call_types
    payload_numbers = {
        "framework_id": 1, "type": 2, "subscribe": 3, "accept": 4, "decline": 5, "kill": 6,
        "shutdown": 7, "acknowledge": 8, "reconcile": 9, "message": 10, "request": 11,
        "accept_inverse_offers": 13, "decline_inverse_offers": 14, "revive": 15, "suppress": 16,
        "acknowledge_operation_status": 17, "reconcile_operations": 18, "update_framework": 19,
    }  # fmt: skip
    fields = scheduler_pb2.Call.DESCRIPTOR.fields_by_name
    assert {name: fields[name].number for name in payload_numbers} == payload_numbers

    event_types = {
        "UNKNOWN": 0, "SUBSCRIBED": 1, "OFFERS": 2, "RESCIND": 3, "UPDATE": 4, "MESSAGE": 5,
        "FAILURE": 6, "ERROR": 7, "HEARTBEAT": 8, "INVERSE_OFFERS": 9,
        "RESCIND_INVERSE_OFFER": 10, "UPDATE_OPERATION_STATUS": 11,
    }  # fmt: skip
    assert dict(scheduler_pb2.Event.Type.items()) == event_types
    subscribed = scheduler_pb2.Event.Subscribed.DESCRIPTOR.fields_by_name
    assert subscribed["heartbeat_interval_seconds"].number == 2
    assert subscribed["master_info"].number == 3


def test_batched_scheduler_api_is_an_additive_extension() -> None:
    """Emporion's Batch and SubscribeBatched: wrappers of the Mesos Call and Event, added to the
    Scheduler service beside every Mesos method, which keep their shapes."""
    service = scheduler_pb2.DESCRIPTOR.services_by_name["Scheduler"]
    methods = {
        m.name: (m.input_type.full_name, m.output_type.full_name, m.server_streaming)
        for m in service.methods
    }
    prefix = "mesos.v1.scheduler."
    assert methods["Subscribe"] == (prefix + "Call", prefix + "Event", True)
    assert methods["SubscribeBatched"] == (prefix + "Call", prefix + "Events", True)
    assert methods["Batch"] == (prefix + "Calls", prefix + "CallResults", False)
    unary = {name for name, (_, out, _) in methods.items() if out == prefix + "Accepted"}
    assert len(unary) == 16
    assert all(methods[name][0] == prefix + "Call" for name in unary)

    def numbers(message: type) -> dict[str, tuple[int, str]]:
        fields = message.DESCRIPTOR.fields  # type: ignore[attr-defined]
        return {
            f.name: (f.number, f.message_type.name if f.message_type else f.type) for f in fields
        }

    assert numbers(scheduler_pb2.Calls) == {"calls": (1, "Call")}
    assert numbers(scheduler_pb2.Events) == {"events": (1, "Event")}
    assert numbers(scheduler_pb2.CallResults) == {"results": (1, "Result")}
    result = scheduler_pb2.CallResults.Result.DESCRIPTOR.fields_by_name
    assert (result["code"].number, result["message"].number) == (1, 2)

    # The calls inside keep their Mesos JSON form.
    ack = scheduler_pb2.Call(type=scheduler_pb2.Call.ACKNOWLEDGE)
    ack.acknowledge.task_id.value = "t1"
    batch = scheduler_pb2.Calls(calls=[ack])
    assert to_json(batch) == {"calls": [to_json(ack)]}
    assert to_json(ack)["type"] == "ACKNOWLEDGE"
    results = scheduler_pb2.CallResults()
    results.results.add(code=0)
    results.results.add(code=3, message="acknowledge.uuid is empty")
    assert to_json(results) == {
        "results": [{"code": 0}, {"code": 3, "message": "acknowledge.uuid is empty"}]
    }


def test_executor_call_and_event_numbers_match_mesos() -> None:
    assert dict(executor_pb2.Call.Type.items()) == {
        "UNKNOWN": 0, "SUBSCRIBE": 1, "UPDATE": 2, "MESSAGE": 3, "HEARTBEAT": 4,
    }  # fmt: skip
    assert dict(executor_pb2.Event.Type.items()) == {
        "UNKNOWN": 0, "SUBSCRIBED": 1, "LAUNCH": 2, "KILL": 3, "ACKNOWLEDGED": 4, "MESSAGE": 5,
        "ERROR": 6, "SHUTDOWN": 7, "LAUNCH_GROUP": 8, "HEARTBEAT": 9,
    }  # fmt: skip
    subscribe = executor_pb2.Call.Subscribe.DESCRIPTOR.fields_by_name
    assert subscribe["unacknowledged_tasks"].number == 1
    assert subscribe["unacknowledged_updates"].number == 2


def test_key_mesos_field_numbers() -> None:
    def numbers(message: type, *names: str) -> dict[str, int]:
        by_name = message.DESCRIPTOR.fields_by_name  # type: ignore[attr-defined]
        return {n: by_name[n].number for n in names}

    assert numbers(mesos_pb2.FrameworkInfo, "user", "name", "id", "failover_timeout",
                   "checkpoint", "role", "hostname", "principal", "webui_url", "capabilities",
                   "labels", "roles", "offer_filters") == {
        "user": 1, "name": 2, "id": 3, "failover_timeout": 4, "checkpoint": 5, "role": 6,
        "hostname": 7, "principal": 8, "webui_url": 9, "capabilities": 10, "labels": 11,
        "roles": 12, "offer_filters": 13,
    }  # fmt: skip
    assert numbers(mesos_pb2.Resource, "name", "type", "scalar", "ranges", "set", "role",
                   "disk", "reservation", "revocable", "shared", "allocation_info",
                   "provider_id", "reservations") == {
        "name": 1, "type": 2, "scalar": 3, "ranges": 4, "set": 5, "role": 6, "disk": 7,
        "reservation": 8, "revocable": 9, "shared": 10, "allocation_info": 11,
        "provider_id": 12, "reservations": 13,
    }  # fmt: skip
    assert numbers(mesos_pb2.TaskInfo, "name", "task_id", "agent_id", "resources", "executor",
                   "data", "command", "health_check", "container", "labels", "discovery",
                   "kill_policy", "check") == {
        "name": 1, "task_id": 2, "agent_id": 3, "resources": 4, "executor": 5, "data": 6,
        "command": 7, "health_check": 8, "container": 9, "labels": 10, "discovery": 11,
        "kill_policy": 12, "check": 13,
    }  # fmt: skip
    assert numbers(mesos_pb2.TaskStatus, "task_id", "state", "data", "message", "agent_id",
                   "timestamp", "executor_id", "healthy", "source", "reason", "uuid") == {
        "task_id": 1, "state": 2, "data": 3, "message": 4, "agent_id": 5, "timestamp": 6,
        "executor_id": 7, "healthy": 8, "source": 9, "reason": 10, "uuid": 11,
    }  # fmt: skip
    assert numbers(mesos_pb2.Offer, "id", "framework_id", "agent_id", "hostname",
                   "resources", "executor_ids", "attributes", "url", "allocation_info") == {
        "id": 1, "framework_id": 2, "agent_id": 3, "hostname": 4, "resources": 5,
        "executor_ids": 6, "attributes": 7, "url": 8, "allocation_info": 10,
    }  # fmt: skip
    assert dict(mesos_pb2.Offer.Operation.Type.items()) == {
        "UNKNOWN": 0, "LAUNCH": 1, "RESERVE": 2, "UNRESERVE": 3, "CREATE": 4, "DESTROY": 5,
        "LAUNCH_GROUP": 6, "GROW_VOLUME": 11, "SHRINK_VOLUME": 12, "CREATE_DISK": 13,
        "DESTROY_DISK": 14,
    }  # fmt: skip
    assert mesos_pb2.TaskStatus.REASON_CONTAINER_LIMITATION_MEMORY == 8
    assert mesos_pb2.TaskStatus.REASON_RECONCILIATION == 9
    assert mesos_pb2.TaskStatus.SOURCE_MASTER == 0
    assert mesos_pb2.FrameworkInfo.Capability.GPU_RESOURCES == 3
    assert mesos_pb2.FrameworkInfo.Capability.PARTITION_AWARE == 5


def test_mesos_defaults_are_kept() -> None:
    assert mesos_pb2.Filters().refuse_seconds == 5.0
    assert mesos_pb2.CommandInfo().shell is True
    check = mesos_pb2.HealthCheck()
    assert (check.delay_seconds, check.interval_seconds, check.timeout_seconds) == (15, 10, 20)
    assert (check.consecutive_failures, check.grace_period_seconds) == (3, 10)


def test_every_enum_has_zero_value() -> None:
    """UNKNOWN = 0 (or Mesos's own zero) exists in every enum, so unset reads safely."""
    missing = []
    for module in (mesos_pb2, scheduler_pb2, executor_pb2):
        pending = list(module.DESCRIPTOR.message_types_by_name.values())
        enums = list(module.DESCRIPTOR.enum_types_by_name.values())
        while pending:
            message = pending.pop()
            pending.extend(message.nested_types)
            enums.extend(message.enum_types)
        missing += [e.full_name for e in enums if 0 not in e.values_by_number]
    assert missing == []


def test_generated_code_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "protos.codegen", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_drift_check_notices_an_edited_generated_file(tmp_path: Path) -> None:
    from protos import codegen

    shutil.copytree(ROOT / "protos" / "v1", tmp_path / "protos" / "v1")
    assert codegen.stale_files(tmp_path) == []
    edited = tmp_path / "protos" / "v1" / "mesos_pb2.py"
    edited.write_text(edited.read_text() + "\n# hand edit\n")
    (tmp_path / "protos" / "v1" / "orphan_pb2.py").write_text("")
    assert sorted(codegen.stale_files(tmp_path)) == [
        "protos/v1/mesos_pb2.py: differs from its .proto source",
        "protos/v1/orphan_pb2.py: generated file without a .proto source",
    ]
