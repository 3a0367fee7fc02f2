"""framework_sdk.messages: the re-exported Mesos types and constants, and the builders."""

from __future__ import annotations

import math

import pytest

from framework_sdk import messages
from protos.resources import Resources
from protos.v1 import mesos_pb2, scheduler_pb2


def test_every_exported_name_exists() -> None:
    missing = [name for name in messages.__all__ if not hasattr(messages, name)]
    assert missing == []


def test_message_types_are_the_wire_types() -> None:
    assert messages.TaskInfo is mesos_pb2.TaskInfo
    assert messages.FrameworkInfo is mesos_pb2.FrameworkInfo
    assert messages.Offer is mesos_pb2.Offer
    assert messages.TaskStatus is mesos_pb2.TaskStatus
    assert messages.Filters is mesos_pb2.Filters
    assert messages.TaskID is mesos_pb2.TaskID
    assert messages.Value is mesos_pb2.Value
    assert messages.Call is scheduler_pb2.Call
    assert messages.Event is scheduler_pb2.Event


def test_every_mesos_message_is_reexported() -> None:
    from google.protobuf.message import Message

    names = [
        n
        for n in dir(mesos_pb2)
        if isinstance(getattr(mesos_pb2, n), type) and issubclass(getattr(mesos_pb2, n), Message)
    ]
    assert [n for n in names if getattr(messages, n, None) is not getattr(mesos_pb2, n)] == []


def test_task_states_reasons_sources_have_mesos_values() -> None:
    assert messages.TASK_FINISHED == 2
    assert messages.TASK_STAGING == 6
    assert messages.TASK_UNREACHABLE == 10
    assert messages.REASON_RECONCILIATION == 9
    assert messages.REASON_MASTER_DISCONNECTED == 7
    assert messages.SOURCE_MASTER == 0
    assert messages.SOURCE_EXECUTOR == 2
    for name, value in mesos_pb2.TaskState.items():
        assert getattr(messages, name) == value
    for name, reason in mesos_pb2.TaskStatus.Reason.items():
        assert getattr(messages, name) == reason


def test_driver_statuses_match_mesos() -> None:
    assert (
        messages.DRIVER_NOT_STARTED,
        messages.DRIVER_RUNNING,
        messages.DRIVER_ABORTED,
        messages.DRIVER_STOPPED,
    ) == (1, 2, 3, 4)


def test_mesos_style_field_access_works() -> None:
    """The shapes a ported Mesos framework relies on."""
    task = messages.TaskInfo()
    task.task_id.value = "t1"
    task.agent_id.value = "a1"
    task.name = "task t1"
    task.command.value = "echo hello"
    cpus = task.resources.add()
    cpus.name = "cpus"
    cpus.type = messages.Value.SCALAR
    cpus.scalar.value = 1
    status = messages.TaskStatus(state=messages.TASK_FINISHED)
    assert status.state == messages.TASK_FINISHED
    assert Resources.from_protos(task.resources) == Resources.parse("cpus:1")


def test_scalar_builds_a_resource() -> None:
    resource = messages.scalar("cpus", 0.5)
    assert resource.name == "cpus"
    assert resource.type == messages.Value.SCALAR
    assert resource.scalar.value == 0.5
    assert Resources.from_protos([resource]) == Resources.parse("cpus:0.5")


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("cpus", -1.0, ValueError),
        ("cpus", math.nan, ValueError),
        ("cpus", math.inf, ValueError),
        ("", 1.0, ValueError),
        ("two words", 1.0, ValueError),
        ("cpus", "1", TypeError),
        ("cpus", True, TypeError),
    ],
)
def test_scalar_rejects_bad_input(name: str, value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"scalar|resource name"):
        messages.scalar(name, value)  # type: ignore[arg-type]


def test_ranges_and_set_items() -> None:
    ports = messages.ranges("ports", [(31000, 31009), (31020, 31020)])
    assert [(r.begin, r.end) for r in ports.ranges.range] == [(31000, 31009), (31020, 31020)]
    disks = messages.set_items("disks", ["sdb", "sda", "sda"])
    assert list(disks.set.item) == ["sda", "sdb"]
    with pytest.raises(ValueError, match="span #0"):
        messages.ranges("ports", [(5, 1)])
    with pytest.raises(ValueError, match="items must be non-empty"):
        messages.set_items("disks", [""])


def test_parse_resources_with_allocation_role() -> None:
    protos = messages.parse_resources("cpus:0.1;mem:32", allocation_role="web")
    assert [(r.name, r.scalar.value, r.allocation_info.role) for r in protos] == [
        ("cpus", 0.1, "web"),
        ("mem", 32.0, "web"),
    ]
    assert (
        messages.parse_resources(Resources.parse("mem:1")) == Resources.parse("mem:1").to_protos()
    )
    with pytest.raises(ValueError, match="invalid resource"):
        messages.parse_resources("cpus:-1")
    with pytest.raises(TypeError, match="resources must be text"):
        messages.parse_resources(3)  # type: ignore[arg-type]


def make_offer(role: str | None = "web") -> mesos_pb2.Offer:
    offer = mesos_pb2.Offer()
    offer.id.value = "o1"
    offer.agent_id.value = "agent-7"
    if role is not None:
        offer.allocation_info.role = role
    offer.resources.extend(Resources.parse("cpus:2;mem:256").to_protos(allocation_role=role))
    return offer


def test_offer_resources_supports_arithmetic() -> None:
    available = messages.offer_resources(make_offer())
    need = Resources.parse("cpus:0.5;mem:100")
    assert available.contains(need)
    left = available - need - need - need
    assert left == Resources.parse("cpus:0.5;mem:0")
    assert left.contains(Resources.parse("cpus:0.5"))
    assert not left.contains(need)
    assert not left - need  # Subtraction saturates at nothing.


def test_task_info_takes_agent_and_role_from_offer() -> None:
    task = messages.task_info("t1", make_offer(), "cpus:0.1;mem:32", command="echo hi")
    assert task.task_id.value == "t1"
    assert task.name == "t1"
    assert task.agent_id.value == "agent-7"
    assert task.command.value == "echo hi"
    assert task.command.shell
    assert {r.allocation_info.role for r in task.resources} == {"web"}
    assert not task.HasField("executor")


def test_task_info_without_offer_role_and_with_protos() -> None:
    offer = make_offer(role=None)
    task = messages.task_info(
        messages.TaskID(value="t2"),
        offer,
        [messages.scalar("cpus", 1)],
        executor=messages.ExecutorInfo(executor_id=messages.ExecutorID(value="e")),
        name="second",
        data=b"payload",
    )
    assert task.name == "second"
    assert task.executor.executor_id.value == "e"
    assert task.data == b"payload"
    assert not task.resources[0].HasField("allocation_info")


def test_task_info_rejects_bad_input() -> None:
    offer = make_offer()
    with pytest.raises(ValueError, match="exactly one of command and executor"):
        messages.task_info("t", offer, "cpus:1")
    with pytest.raises(ValueError, match="exactly one of command and executor"):
        messages.task_info("t", offer, "cpus:1", command="x", executor=messages.ExecutorInfo())
    with pytest.raises(ValueError, match="task_id"):
        messages.task_info("", offer, "cpus:1", command="x")
    with pytest.raises(TypeError, match="offer must be an Offer"):
        messages.task_info("t", "o1", "cpus:1", command="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"resources\[0\] is not a Resource"):
        messages.task_info("t", offer, ["cpus"], command="x")  # type: ignore[list-item]


def test_framework_info_builder() -> None:
    info = messages.framework_info(
        "fw",
        roles=["a", "b"],
        failover_timeout=60,
        checkpoint=True,
        capabilities=["PARTITION_AWARE"],
        principal="p",
        hostname="h",
        webui_url="http://ui",
        framework_id="fw-1",
    )
    assert info.name == "fw"
    assert info.user == ""
    assert list(info.roles) == ["a", "b"]
    assert info.failover_timeout == 60
    assert info.checkpoint
    caps = {c.type for c in info.capabilities}
    cap = messages.FrameworkInfo.Capability
    assert caps == {cap.PARTITION_AWARE, cap.MULTI_ROLE}
    assert (info.principal, info.hostname, info.webui_url, info.id.value) == (
        "p",
        "h",
        "http://ui",
        "fw-1",
    )
    plain = messages.framework_info("plain")
    assert plain.role == "*"
    assert not plain.roles
    assert not plain.HasField("id")


def test_framework_info_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown framework capability 'FLYING'"):
        messages.framework_info("fw", capabilities=["FLYING"])
    with pytest.raises(ValueError, match="failover_timeout"):
        messages.framework_info("fw", failover_timeout=-1)
    with pytest.raises(ValueError, match="framework name"):
        messages.framework_info("")


def test_filters() -> None:
    assert messages.filters(120).refuse_seconds == 120.0
    assert messages.Filters().refuse_seconds == 5.0  # Mesos's default
    with pytest.raises(ValueError, match="refuse_seconds"):
        messages.filters(-1)
    with pytest.raises(TypeError, match="refuse_seconds"):
        messages.filters("5")  # type: ignore[arg-type]


def test_terminal_states_and_names() -> None:
    assert messages.is_terminal(messages.TASK_FINISHED)
    assert messages.is_terminal(messages.TASK_LOST)
    assert messages.is_terminal(messages.TASK_GONE_BY_OPERATOR)
    assert not messages.is_terminal(messages.TASK_RUNNING)
    assert not messages.is_terminal(messages.TASK_UNREACHABLE)
    assert not messages.is_terminal(messages.TASK_KILLING)
    assert messages.state_name(messages.TASK_FAILED) == "TASK_FAILED"
    assert messages.state_name(99) == "TaskState(99)"
    assert messages.reason_name(messages.REASON_RECONCILIATION) == "REASON_RECONCILIATION"
    assert messages.reason_name(999) == "Reason(999)"
