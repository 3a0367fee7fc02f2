"""framework_sdk.calls: Calls built from plain arguments, with precise argument errors."""

from __future__ import annotations

import pytest

from framework_sdk import calls, messages
from protos.v1 import mesos_pb2, scheduler_pb2, scheduler_pb2_grpc

Call = scheduler_pb2.Call


def test_every_unary_call_type_has_a_service_method() -> None:
    streaming = {Call.UNKNOWN, Call.SUBSCRIBE}
    assert set(calls.UNARY_METHODS) == set(Call.Type.values()) - streaming
    for method in calls.UNARY_METHODS.values():
        assert hasattr(scheduler_pb2_grpc.SchedulerServicer, method)


def test_every_builder_sets_its_payload_even_when_empty() -> None:
    from tests.unit.sdk.scripted_master import PAYLOADS

    status = mesos_pb2.TaskStatus(uuid=b"u")
    status.task_id.value = "t"
    status.agent_id.value = "a"
    op_status = mesos_pb2.OperationStatus()
    op_status.uuid.value = b"u"
    built = [
        calls.teardown(),
        calls.accept("o1", []),
        calls.decline("o1"),
        calls.revive(),
        calls.suppress(),
        calls.kill("t"),
        calls.shutdown("e", "a"),
        calls.acknowledge(status),
        calls.acknowledge_operation_status(op_status),
        calls.reconcile(),
        calls.message("a", "e", b""),
        calls.request([]),
        calls.update_framework(messages.framework_info("fw")),
    ]
    for call in built:
        payload = PAYLOADS[calls.UNARY_METHODS[call.type]]
        present = {field.name for field, _ in call.ListFields()}
        assert payload is None or payload in present, calls.call_name(call)


def test_call_name() -> None:
    assert calls.call_name(Call(type=Call.ACCEPT)) == "ACCEPT"


def test_offer_ids_accept_one_or_many_ids_or_strings() -> None:
    one = messages.OfferID(value="o1")
    assert calls.offer_ids_of(one) == [one]
    assert calls.offer_ids_of("o1") == [one]
    assert calls.offer_ids_of(["o1", messages.OfferID(value="o2")])[1].value == "o2"
    assert calls.offer_ids_of(x for x in ["o3"])[0].value == "o3"


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        ([], ValueError, "offer_ids is empty"),
        (["o1", "o1"], ValueError, r"offer_ids\[1\] repeats offer 'o1'"),
        ([""], ValueError, r"offer_ids\[0\] is empty"),
        ([3], TypeError, r"offer_ids\[0\] must be a OfferID or str"),
        (3, TypeError, "offer_ids must be OfferIDs"),
        ([messages.TaskID(value="t")], TypeError, r"offer_ids\[0\] must be a OfferID"),
    ],
)
def test_offer_ids_errors_name_the_argument(
    value: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        calls.offer_ids_of(value)


def task(task_id: str) -> mesos_pb2.TaskInfo:
    info = mesos_pb2.TaskInfo(name=task_id)
    info.task_id.value = task_id
    info.command.value = "true"
    return info


def test_launch_builds_one_launch_operation() -> None:
    call = calls.launch(["o1"], [task("a"), task("b")], messages.filters(10))
    assert call.type == Call.ACCEPT
    assert [o.value for o in call.accept.offer_ids] == ["o1"]
    (op,) = call.accept.operations
    assert op.type == mesos_pb2.Offer.Operation.LAUNCH
    assert [t.task_id.value for t in op.launch.task_infos] == ["a", "b"]
    assert call.accept.filters.refuse_seconds == 10
    assert not call.HasField("framework_id")


def test_launch_without_tasks_declines() -> None:
    call = calls.launch("o1", [])
    assert call.type == Call.ACCEPT
    assert list(call.accept.operations) == []
    assert not call.accept.HasField("filters")


def test_launch_and_accept_reject_bad_tasks() -> None:
    with pytest.raises(ValueError, match=r"tasks\[1\].task_id is not set"):
        calls.launch("o1", [task("a"), mesos_pb2.TaskInfo()])
    with pytest.raises(TypeError, match=r"tasks\[0\] must be a TaskInfo"):
        calls.launch("o1", ["a"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"task_infos\[1\].task_id repeats task 'a'"):
        calls.launch("o1", [task("a"), task("a")])
    with pytest.raises(ValueError, match=r"operations\[0\].type is not set"):
        calls.accept("o1", [mesos_pb2.Offer.Operation()])
    with pytest.raises(TypeError, match=r"operations\[0\] must be an Offer.Operation"):
        calls.accept("o1", [task("a")])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="filters must be a Filters"):
        calls.accept("o1", [], 5)  # type: ignore[arg-type]


def test_accept_keeps_operation_order() -> None:
    reserve = mesos_pb2.Offer.Operation(type=mesos_pb2.Offer.Operation.RESERVE)
    launch = mesos_pb2.Offer.Operation(type=mesos_pb2.Offer.Operation.LAUNCH)
    launch.launch.task_infos.append(task("a"))
    call = calls.accept(["o1", "o2"], [reserve, launch])
    assert [op.type for op in call.accept.operations] == [reserve.type, launch.type]


def test_decline() -> None:
    call = calls.decline(messages.OfferID(value="o1"), messages.filters(60))
    assert call.type == Call.DECLINE
    assert call.decline.offer_ids[0].value == "o1"
    assert call.decline.filters.refuse_seconds == 60


def test_revive_and_suppress_roles() -> None:
    assert list(calls.revive().revive.roles) == []
    assert list(calls.revive("web").revive.roles) == ["web"]
    assert list(calls.suppress(["a", "b"]).suppress.roles) == ["a", "b"]
    assert calls.suppress(None).type == Call.SUPPRESS
    with pytest.raises(ValueError, match=r"roles\[1\] must be a non-empty role name"):
        calls.suppress(["a", ""])
    with pytest.raises(TypeError, match="roles must be role names"):
        calls.revive(3)


def test_kill() -> None:
    policy = mesos_pb2.KillPolicy()
    policy.grace_period.nanoseconds = 10
    call = calls.kill("t1", "a1", policy)
    assert call.type == Call.KILL
    assert (call.kill.task_id.value, call.kill.agent_id.value) == ("t1", "a1")
    assert call.kill.kill_policy.grace_period.nanoseconds == 10
    assert not calls.kill(messages.TaskID(value="t1")).kill.HasField("agent_id")
    with pytest.raises(ValueError, match="task_id is empty"):
        calls.kill("")
    with pytest.raises(TypeError, match="kill_policy must be a KillPolicy"):
        calls.kill("t", None, "soon")  # type: ignore[arg-type]


def test_shutdown_and_message() -> None:
    call = calls.shutdown("e1", "a1")
    assert (call.shutdown.executor_id.value, call.shutdown.agent_id.value) == ("e1", "a1")
    message = calls.message("a1", "e1", b"hi")
    assert message.type == Call.MESSAGE
    assert (message.message.agent_id.value, message.message.data) == ("a1", b"hi")
    with pytest.raises(TypeError, match="data must be bytes"):
        calls.message("a1", "e1", "hi")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="executor_id must be a ExecutorID"):
        calls.shutdown(3, "a1")


def test_acknowledge_needs_uuid_and_agent() -> None:
    status = mesos_pb2.TaskStatus(uuid=b"u" * 16)
    status.task_id.value = "t1"
    status.agent_id.value = "a1"
    call = calls.acknowledge(status)
    assert call.type == Call.ACKNOWLEDGE
    ack = call.acknowledge
    assert (ack.task_id.value, ack.agent_id.value, ack.uuid) == ("t1", "a1", b"u" * 16)
    status.ClearField("uuid")
    with pytest.raises(ValueError, match="has no uuid: it needs no acknowledgement"):
        calls.acknowledge(status)
    status.uuid = b"u"
    status.ClearField("agent_id")
    with pytest.raises(ValueError, match="has no agent_id"):
        calls.acknowledge(status)


def test_acknowledge_operation_status() -> None:
    status = mesos_pb2.OperationStatus()
    status.operation_id.value = "op"
    status.uuid.value = b"x" * 16
    status.agent_id.value = "a1"
    ack = calls.acknowledge_operation_status(status).acknowledge_operation_status
    assert (ack.operation_id.value, ack.uuid, ack.agent_id.value) == ("op", b"x" * 16, "a1")
    with pytest.raises(ValueError, match="no uuid"):
        calls.acknowledge_operation_status(mesos_pb2.OperationStatus())


def test_reconcile_explicit_and_implicit() -> None:
    assert list(calls.reconcile().reconcile.tasks) == []
    status = mesos_pb2.TaskStatus()
    status.task_id.value = "t1"
    status.agent_id.value = "a1"
    call = calls.reconcile([status, "t2", messages.TaskID(value="t3")])
    entries = [(t.task_id.value, t.agent_id.value) for t in call.reconcile.tasks]
    assert entries == [("t1", "a1"), ("t2", ""), ("t3", "")]
    with pytest.raises(TypeError, match="not a single one"):
        calls.reconcile(status)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"tasks\[0\].task_id is empty"):
        calls.reconcile([mesos_pb2.TaskStatus()])


def test_request() -> None:
    request = mesos_pb2.Request()
    request.agent_id.value = "a1"
    assert calls.request([request]).request.requests[0].agent_id.value == "a1"
    with pytest.raises(TypeError, match=r"requests\[0\] must be a Request"):
        calls.request(["cpus:1"])  # type: ignore[list-item]


def test_subscribe_and_update_framework() -> None:
    info = messages.framework_info("fw", framework_id="fw-1")
    constraints = scheduler_pb2.OfferConstraints()
    constraints.role_constraints["*"].groups.add()
    call = calls.subscribe(info, ["b", "a"], constraints)
    assert call.type == Call.SUBSCRIBE
    assert call.framework_id.value == "fw-1"
    assert list(call.subscribe.suppressed_roles) == ["b", "a"]
    assert call.subscribe.offer_constraints == constraints
    update = calls.update_framework(info, ["a"])
    assert update.update_framework.framework_info == info
    assert not update.update_framework.HasField("offer_constraints")
    with pytest.raises(ValueError, match=r"framework_info\.name is empty"):
        calls.subscribe(mesos_pb2.FrameworkInfo())
    with pytest.raises(TypeError, match="framework_info must be a FrameworkInfo"):
        calls.update_framework("fw")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="offer_constraints must be OfferConstraints"):
        calls.subscribe(info, (), {})  # type: ignore[arg-type]


def test_teardown() -> None:
    assert calls.teardown() == Call(type=Call.TEARDOWN)
