"""Bad input at ACCEPT: each gets a precise refusal, and nothing changes but what the call may.

Issue 10's defects: ids the agent cannot make a directory of, resources the master crashed on
(OverflowError, TypeError), tasks without resources or of another role, launches larger than an
agent can receive, task ids used twice, and thousands of tasks in one call.
"""

from __future__ import annotations

import pytest

from master.config import ConfigError, MasterConfig, config_from_args
from master.core import CallError, ErrorCode
from protos.limits import MAX_MESSAGE_BYTES, fits
from protos.resources import Resources
from protos.v1 import mesos_pb2
from tests.unit.master.harness import (
    Call,
    FakeAgent,
    Harness,
    accept_call,
    command_task,
    uuid_bytes,
)

Op = mesos_pb2.Offer.Operation
Reason = mesos_pb2.TaskStatus
Value = mesos_pb2.Value
MEMORY = ["--registry", "memory"]


def _offer(harness: Harness, framework_id: str) -> mesos_pb2.Offer:
    harness.allocate()
    offers = harness.offers(framework_id)
    assert offers, "no offer"
    return offers[-1]


def _allocated(harness: Harness, agent_id: str) -> Resources:
    total = Resources.EMPTY
    for resources in harness.master.state.allocator.agent_allocation(agent_id).values():
        total = total + resources
    return total


def _refused_alone(
    harness: Harness, agent: FakeAgent, bad: mesos_pb2.TaskInfo
) -> mesos_pb2.TaskStatus:
    """ACCEPT ``bad`` next to a good task; the bad one's TASK_ERROR (the good one runs)."""
    framework_id, stream_id = harness.subscribe()
    offer = _offer(harness, framework_id)
    good = command_task("good", agent.agent_id, "cpus:1;mem:100")
    harness.call(framework_id, stream_id, accept_call([offer.id.value], [bad, good], 0))
    (status,) = harness.updates(framework_id)
    assert status.state == mesos_pb2.TASK_ERROR
    assert status.source == Reason.SOURCE_MASTER
    assert not status.HasField("uuid")
    (run,) = harness.to_agent(agent.agent_id, "run_task")
    assert run.run_task.task.task_id.value == "good"
    assert _allocated(harness, agent.agent_id) == Resources.parse("cpus:1;mem:100")
    fw = harness.master.framework(framework_id)
    assert fw is not None
    assert set(fw.tasks) == {"good"}
    return status


# -- ids ------------------------------------------------------------------------------------------


BAD_IDS = [
    ("x" * 256, "is 256 bytes long; an id is at most 255 bytes"),
    ("\u20ac" * 86, "is 258 bytes long"),  # 86 characters, 3 bytes each in UTF-8.
    (".", "'.' is not a valid id"),
    ("..", "'..' is not a valid id"),
    ("a/b", "must not contain '/'"),
    ("a\\b", "must not contain '\\\\'"),
    ("a\x00b", "must not contain '\\x00'"),
    ("a\nb", "must not contain '\\n'"),
    ("tab\there", "must not contain '\\t'"),
    ("del\x7f", "must not contain '\\x7f'"),
    ("", "must not be empty"),
]


@pytest.mark.parametrize(("task_id", "message"), BAD_IDS, ids=range(len(BAD_IDS)))
def test_a_task_id_the_agent_cannot_use_as_a_directory_is_task_error(
    harness: Harness, agent: FakeAgent, task_id: str, message: str
) -> None:
    status = _refused_alone(harness, agent, command_task(task_id, agent.agent_id))
    assert status.task_id.value == task_id
    assert status.reason == Reason.REASON_TASK_INVALID
    assert status.message.startswith("task_id ")
    assert message in status.message
    assert len(status.message) < 400  # A long id is quoted by a bounded prefix.


def test_an_id_of_255_bytes_is_accepted(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = harness.subscribe()
    offer = _offer(harness, framework_id)
    task_id = "\u00e9" * 127 + "x"  # 255 bytes in UTF-8.
    harness.call(
        framework_id,
        stream_id,
        accept_call([offer.id.value], [command_task(task_id, agent.agent_id)]),
    )
    assert harness.updates(framework_id) == []
    (run,) = harness.to_agent(agent.agent_id, "run_task")
    assert run.run_task.task.task_id.value == task_id


@pytest.mark.parametrize(("executor_id", "message"), BAD_IDS[:6], ids=range(6))
def test_an_executor_id_the_agent_cannot_use_is_task_error(
    harness: Harness, agent: FakeAgent, executor_id: str, message: str
) -> None:
    task = command_task("t", agent.agent_id)
    task.ClearField("command")
    task.executor.executor_id.value = executor_id
    task.executor.command.value = "run-executor"
    status = _refused_alone(harness, agent, task)
    assert status.reason == Reason.REASON_TASK_INVALID
    assert status.message.startswith("executor.executor_id ")
    assert message in status.message


def test_a_bad_id_in_a_task_group_fails_the_group(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = harness.subscribe()
    offer = _offer(harness, framework_id)
    call = accept_call([offer.id.value])
    group = call.accept.operations.add(type=Op.LAUNCH_GROUP).launch_group
    group.executor.executor_id.value = "default"
    group.executor.type = mesos_pb2.ExecutorInfo.DEFAULT
    for task_id in ("ok", "x" * 300):
        group.task_group.tasks.add().CopyFrom(command_task(task_id, agent.agent_id))
    harness.call(framework_id, stream_id, call)
    statuses = harness.updates(framework_id)
    assert [s.reason for s in statuses] == [Reason.REASON_TASK_GROUP_INVALID] * 2
    assert "is 300 bytes long" in statuses[0].message
    assert harness.to_agent(agent.agent_id, "run_task_group") == []
    assert _allocated(harness, agent.agent_id) == Resources.EMPTY


# -- resources ------------------------------------------------------------------------------------


def _scalar(name: str, value: float) -> mesos_pb2.Resource:
    return mesos_pb2.Resource(name=name, type=Value.SCALAR, scalar=Value.Scalar(value=value))


def _ranges(name: str) -> mesos_pb2.Resource:
    resource = mesos_pb2.Resource(name=name, type=Value.RANGES)
    resource.ranges.range.add(begin=31000, end=31001)
    return resource


def _set(name: str) -> mesos_pb2.Resource:
    resource = mesos_pb2.Resource(name=name, type=Value.SET)
    resource.set.item.append("a")
    return resource


BAD_RESOURCES = [
    ([_scalar("cpus", 1), _scalar("mem", 1e308)], "'mem'", "value is too large"),
    ([_scalar("cpus", 1), _scalar("mem", 1e13)], "'mem'", "value is too large"),
    ([_scalar("cpus", float("inf"))], "'cpus'", "must be a finite number"),
    ([_scalar("cpus", float("nan"))], "'cpus'", "must be a finite number"),
    ([_scalar("cpus", -1)], "'cpus'", "must be non-negative"),
    ([_ranges("cpus"), _scalar("mem", 10)], "resources[0] 'cpus'", "must be a SCALAR resource"),
    ([_scalar("cpus", 1), _set("disk")], "resources[1] 'disk'", "not SET"),
    ([_scalar("cpus", 1), _scalar("ports", 2)], "'ports'", "must be a RANGES resource"),
    ([_scalar("cpus", 1), _scalar("gpus", 1.5)], "'gpus'", "must be a whole number"),
]


@pytest.mark.parametrize(
    ("resources", "name", "message"), BAD_RESOURCES, ids=range(len(BAD_RESOURCES))
)
def test_a_bad_resource_is_task_error_naming_it(
    harness: Harness,
    agent: FakeAgent,
    resources: list[mesos_pb2.Resource],
    name: str,
    message: str,
) -> None:
    task = command_task("bad", agent.agent_id)
    del task.resources[:]
    task.resources.extend(resources)
    status = _refused_alone(harness, agent, task)
    assert status.reason == Reason.REASON_TASK_INVALID
    assert name in status.message
    assert message in status.message


def test_a_resource_typed_unlike_the_offers_is_task_error(harness: Harness) -> None:
    agent = harness.register_agent("cpus:4;mem:4096;bugs:{a,b}")
    task = command_task("bad", agent.agent_id)
    task.resources.append(_scalar("bugs", 1))
    status = _refused_alone(harness, agent, task)
    assert status.message == "resource 'bugs' is SCALAR in the task but SET in the offers"


def test_a_task_and_its_executor_typed_apart_is_task_error(
    harness: Harness, agent: FakeAgent
) -> None:
    task = command_task("bad", agent.agent_id)
    task.resources.append(_set("things"))
    task.ClearField("command")
    task.executor.executor_id.value = "e"
    task.executor.command.value = "run-executor"
    task.executor.resources.append(_scalar("things", 1))
    status = _refused_alone(harness, agent, task)
    assert status.message == "resource 'things' is given as both SET and SCALAR"


@pytest.mark.parametrize("resources", ["", "cpus:0;mem:0", "cpus:0.0001"])
def test_a_task_without_resources_is_task_error(
    harness: Harness, agent: FakeAgent, resources: str
) -> None:
    task = command_task("empty", agent.agent_id)
    del task.resources[:]
    for name, value in (p.split(":") for p in resources.split(";") if p):
        task.resources.append(_scalar(name, float(value)))
    status = _refused_alone(harness, agent, task)
    assert status.reason == Reason.REASON_TASK_INVALID
    assert status.message.startswith("Task uses no resources")


def test_resources_of_another_role_are_task_error(harness: Harness, agent: FakeAgent) -> None:
    task = command_task("other-role", agent.agent_id)
    task.resources[1].allocation_info.role = "eng"
    status = _refused_alone(harness, agent, task)
    assert status.message == (
        "resources[1] 'mem': allocation_info.role 'eng' is not the offers' role '*'"
    )


def test_executor_resources_of_another_role_are_task_error(
    harness: Harness, agent: FakeAgent
) -> None:
    task = command_task("t", agent.agent_id)
    task.ClearField("command")
    task.executor.executor_id.value = "e"
    task.executor.command.value = "run-executor"
    task.executor.resources.extend(Resources.parse("cpus:0.1").to_protos(allocation_role="ops"))
    status = _refused_alone(harness, agent, task)
    assert status.message.startswith("executor.resources[0] 'cpus': allocation_info.role 'ops'")


def test_a_reservation_of_a_mistyped_resource_is_refused(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, stream_id = harness.subscribe(roles=("eng",))
    offer = _offer(harness, framework_id)
    call = accept_call([offer.id.value])
    op = call.accept.operations.add(type=Op.RESERVE)
    resource = op.reserve.resources.add()
    resource.CopyFrom(_ranges("cpus"))
    resource.reservations.add(type=mesos_pb2.Resource.ReservationInfo.DYNAMIC, role="eng")
    with pytest.raises(CallError) as raised:
        harness.call(framework_id, stream_id, call)
    assert raised.value.code is ErrorCode.INVALID_ARGUMENT
    assert "reserve.resources[0] 'cpus' must be a SCALAR resource, not RANGES" in str(raised.value)
    assert offer.id.value in harness.master.state.offers  # Still outstanding: nothing changed.


# -- message size ---------------------------------------------------------------------------------


def test_a_task_larger_than_an_agent_takes_is_task_error(
    harness: Harness, agent: FakeAgent
) -> None:
    task = command_task("huge", agent.agent_id)
    task.data = b"x" * (MAX_MESSAGE_BYTES - 200)  # The call fits; with FrameworkInfo it does not.
    status = _refused_alone(harness, agent, task)
    assert status.reason == Reason.REASON_TASK_INVALID
    assert f"more than the {MAX_MESSAGE_BYTES}-byte limit" in status.message
    assert "takes up to" in status.message


def test_a_task_group_larger_than_an_agent_takes_fails_the_group(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, stream_id = harness.subscribe()
    offer = _offer(harness, framework_id)
    call = accept_call([offer.id.value])
    group = call.accept.operations.add(type=Op.LAUNCH_GROUP).launch_group
    group.executor.executor_id.value = "default"
    group.executor.type = mesos_pb2.ExecutorInfo.DEFAULT
    for n in range(2):  # Each fits alone, not both in one RunTaskGroup.
        task = command_task(f"half{n}", agent.agent_id, "cpus:0.5;mem:10")
        task.data = b"x" * (MAX_MESSAGE_BYTES // 2)
        group.task_group.tasks.add().CopyFrom(task)
    harness.call(framework_id, stream_id, call)
    statuses = harness.updates(framework_id)
    assert [s.reason for s in statuses] == [Reason.REASON_TASK_GROUP_INVALID] * 2
    assert "Task group is too large for the agent" in statuses[0].message
    assert harness.to_agent(agent.agent_id, "run_task_group") == []


def test_a_5_mb_task_is_launched_in_a_message_that_fits(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = harness.subscribe()
    offer = _offer(harness, framework_id)
    task = command_task("big", agent.agent_id)
    task.data = b"x" * (5 * 1024 * 1024)
    harness.call(framework_id, stream_id, accept_call([offer.id.value], [task]))
    assert harness.updates(framework_id) == []
    (run,) = harness.to_agent(agent.agent_id, "run_task")
    assert fits(run)


# -- reused task ids ------------------------------------------------------------------------------


def test_an_id_twice_in_one_accept_refuses_the_call_and_changes_nothing(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, stream_id = harness.subscribe()
    offer = _offer(harness, framework_id)
    call = accept_call(
        [offer.id.value], [command_task("a", agent.agent_id), command_task("t", agent.agent_id)]
    )
    group = call.accept.operations.add(type=Op.LAUNCH_GROUP).launch_group
    group.executor.executor_id.value = "default"
    group.executor.type = mesos_pb2.ExecutorInfo.DEFAULT
    group.task_group.tasks.add().CopyFrom(command_task("t", agent.agent_id))
    with pytest.raises(CallError) as raised:
        harness.call(framework_id, stream_id, call)
    assert raised.value.code is ErrorCode.INVALID_ARGUMENT
    assert raised.value.message == (
        "accept.operations[1].launch_group.task_group.tasks[0].task_id 't' is used by"
        " accept.operations[0].launch.task_infos[1] too; task ids must be unique"
    )
    assert harness.updates(framework_id) == []
    assert harness.to_agent(agent.agent_id, "run_task") == []
    assert offer.id.value in harness.master.state.offers
    assert _allocated(harness, agent.agent_id) == Resources.from_protos(offer.resources)


def test_an_accept_reusing_a_running_tasks_id_leaves_it_alone(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, stream_id = harness.subscribe()
    offer = _offer(harness, framework_id)
    harness.call(
        framework_id,
        stream_id,
        accept_call([offer.id.value], [command_task("t", agent.agent_id)], 0),
    )
    harness.status_update(agent, framework_id, "t", mesos_pb2.TASK_RUNNING, uuid_bytes(1))
    before = harness.updates(framework_id)
    offer = _offer(harness, framework_id)
    again = accept_call([offer.id.value], [command_task("t", agent.agent_id, "cpus:2;mem:10")])
    with pytest.raises(CallError) as raised:
        harness.call(framework_id, stream_id, again)
    assert raised.value.code is ErrorCode.INVALID_ARGUMENT
    assert "accept.operations[0].launch.task_infos[0].task_id 't' is the id of a task" in (
        raised.value.message
    )
    assert "TASK_RUNNING on agent" in raised.value.message
    assert harness.updates(framework_id) == before
    fw = harness.master.framework(framework_id)
    assert fw is not None
    assert fw.tasks["t"].state == mesos_pb2.TASK_RUNNING
    assert fw.tasks["t"].resources == Resources.parse("cpus:1;mem:128")
    assert len(harness.to_agent(agent.agent_id, "run_task")) == 1
    # Once its terminal update is acknowledged, the id may be used again.
    harness.status_update(agent, framework_id, "t", mesos_pb2.TASK_FINISHED, uuid_bytes(2))
    ack = Call(type=Call.ACKNOWLEDGE)
    ack.acknowledge.agent_id.value = agent.agent_id
    ack.acknowledge.task_id.value = "t"
    ack.acknowledge.uuid = uuid_bytes(2)
    harness.call(framework_id, stream_id, ack)
    harness.call(framework_id, stream_id, again)
    assert len(harness.to_agent(agent.agent_id, "run_task")) == 2


# -- how many tasks one ACCEPT may launch ---------------------------------------------------------


def test_the_default_cap_refuses_5000_tiny_tasks(harness: Harness, agent: FakeAgent) -> None:
    assert harness.config.max_tasks_per_accept == 1000
    framework_id, stream_id = harness.subscribe()
    offer = _offer(harness, framework_id)
    tasks = [command_task(f"t{n}", agent.agent_id, "cpus:0.001;mem:0.001") for n in range(5000)]
    with pytest.raises(CallError) as raised:
        harness.call(framework_id, stream_id, accept_call([offer.id.value], tasks))
    assert raised.value.code is ErrorCode.INVALID_ARGUMENT
    assert raised.value.message == (
        "accept: 5000 tasks in one ACCEPT are more than the master takes at once (1000, its"
        " --max-tasks-per-accept); launch them over several ACCEPTs"
    )
    assert harness.to_agent(agent.agent_id, "run_task") == []
    assert offer.id.value in harness.master.state.offers


def test_the_cap_is_a_flag() -> None:
    harness = Harness(config=MasterConfig(registry="memory", max_tasks_per_accept=3))
    agent = harness.register_agent()
    framework_id, stream_id = harness.subscribe()
    offer = _offer(harness, framework_id)
    tasks = [command_task(f"t{n}", agent.agent_id, "cpus:0.1;mem:1") for n in range(4)]
    with pytest.raises(CallError, match=r"4 tasks in one ACCEPT are more than .* \(3, its"):
        harness.call(framework_id, stream_id, accept_call([offer.id.value], tasks))
    harness.call(framework_id, stream_id, accept_call([offer.id.value], tasks[:3]))
    assert len(harness.to_agent(agent.agent_id, "run_task")) == 3
    assert config_from_args([*MEMORY, "--max-tasks-per-accept", "7"], {}).max_tasks_per_accept == 7
    environ = {"EMPORION_MAX_TASKS_PER_ACCEPT": "9"}
    assert config_from_args(MEMORY, environ).max_tasks_per_accept == 9
    with pytest.raises(ConfigError, match="--max-tasks-per-accept: must be at least 1, got 0"):
        config_from_args([*MEMORY, "--max-tasks-per-accept", "0"], {})
