"""ACCEPT and DECLINE: launches, task groups, reservations, and every way they can be wrong."""

from __future__ import annotations

import pytest

from master.core import CallError, ErrorCode
from protos.resources import Resources
from protos.v1 import mesos_pb2
from tests.unit.master.harness import (
    Call,
    Event,
    FakeAgent,
    Harness,
    accept_call,
    command_task,
)

Op = mesos_pb2.Offer.Operation
Reason = mesos_pb2.TaskStatus


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


def test_launch_sends_run_task_and_declines_the_rest(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = harness.subscribe()
    offer = _offer(harness, framework_id)
    task = command_task("t1", agent.agent_id, "cpus:1;mem:128")
    harness.call(framework_id, stream_id, accept_call([offer.id.value], [task]))
    (message,) = harness.to_agent(agent.agent_id, "run_task")
    run = message.run_task
    assert run.framework_id.value == framework_id
    assert run.framework_info.name == "fw"
    assert run.task.task_id.value == "t1"
    assert {r.allocation_info.role for r in run.task.resources} == {"*"}
    assert not run.HasField("executor")
    assert run.launch_seq == 1
    assert _allocated(harness, agent.agent_id) == Resources.parse("cpus:1;mem:128")
    fw = harness.master.framework(framework_id)
    assert fw is not None
    assert fw.tasks["t1"].state == mesos_pb2.TASK_STAGING
    # The rest was declined with the default 5 s filter: not offered again at once.
    harness.clear()
    harness.allocate()
    assert harness.offers(framework_id) == []
    harness.advance(6)
    harness.allocate()
    assert len(harness.offers(framework_id)) == 1


def test_refuse_seconds_zero_makes_no_filter(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = harness.subscribe()
    offer = _offer(harness, framework_id)
    harness.call(framework_id, stream_id, accept_call([offer.id.value], refuse_seconds=0))
    harness.clear()
    harness.allocate()
    assert len(harness.offers(framework_id)) == 1


def test_accept_of_two_offers_of_one_agent(harness: Harness) -> None:
    # A MULTI_ROLE framework gets one offer per role; two offers of one agent and role come
    # from two cycles.
    agent = harness.register_agent("cpus:4;mem:4096")
    framework_id, stream_id = harness.subscribe()
    first = _offer(harness, framework_id)
    task = command_task("t0", agent.agent_id, "cpus:2;mem:2048")
    harness.call(framework_id, stream_id, accept_call([first.id.value], [task], refuse_seconds=0))
    # The remainder is offered again; launch a task using all of it.
    second = _offer(harness, framework_id)
    assert Resources.from_protos(second.resources) == Resources.parse("cpus:2;mem:2048")
    task = command_task("t1", agent.agent_id, "cpus:2;mem:2048")
    harness.call(framework_id, stream_id, accept_call([second.id.value], [task]))
    assert len(harness.to_agent(agent.agent_id, "run_task")) == 2
    assert _allocated(harness, agent.agent_id) == Resources.parse("cpus:4;mem:4096")


# -- offer problems --------------------------------------------------------------------------


def test_unknown_offer_makes_tasks_task_error_and_recovers_the_valid_offers(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, stream_id = harness.subscribe()
    offer = _offer(harness, framework_id)
    call = accept_call(
        [offer.id.value, "M-O99"], [command_task("t1", agent.agent_id)], refuse_seconds=0
    )
    harness.call(framework_id, stream_id, call)
    (status,) = harness.updates(framework_id)
    assert status.state == mesos_pb2.TASK_ERROR
    assert status.reason == Reason.REASON_INVALID_OFFERS
    assert "offer_ids[1]" in status.message
    assert "M-O99" in status.message
    assert not status.HasField("uuid")
    assert status.source == Reason.SOURCE_MASTER
    assert harness.to_agent(agent.agent_id, "run_task") == []
    assert harness.master.state.offers == {}
    assert _allocated(harness, agent.agent_id) == Resources.EMPTY
    fw = harness.master.framework(framework_id)
    assert fw is not None
    assert fw.tasks == {}


def test_used_offer_cannot_be_used_again(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = harness.subscribe()
    offer = _offer(harness, framework_id)
    harness.call(framework_id, stream_id, accept_call([offer.id.value], refuse_seconds=0))
    harness.call(
        framework_id, stream_id, accept_call([offer.id.value], [command_task("t", agent.agent_id)])
    )
    (status,) = harness.updates(framework_id)
    assert status.reason == Reason.REASON_INVALID_OFFERS
    assert "already used" in status.message


def test_accept_without_tasks_naming_a_bad_offer_is_refused(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, stream_id = harness.subscribe()
    offer = _offer(harness, framework_id)
    with pytest.raises(CallError) as raised:
        harness.call(framework_id, stream_id, accept_call([offer.id.value, "M-O77"]))
    assert raised.value.code is ErrorCode.INVALID_ARGUMENT
    assert offer.id.value in harness.master.state.offers  # Nothing changed.


def test_offers_of_two_agents_cannot_be_combined(harness: Harness) -> None:
    one = harness.register_agent(hostname="a")
    harness.register_agent(hostname="b")
    framework_id, stream_id = harness.subscribe()
    harness.allocate()
    offers = harness.offers(framework_id)
    assert len(offers) == 2
    call = accept_call([o.id.value for o in offers], [command_task("t1", one.agent_id)])
    harness.call(framework_id, stream_id, call)
    (status,) = harness.updates(framework_id)
    assert status.reason == Reason.REASON_INVALID_OFFERS
    assert "is for agent" in status.message
    assert harness.master.state.offers == {}


def test_another_frameworks_offer_is_unknown(harness: Harness, agent: FakeAgent) -> None:
    owner, _ = harness.subscribe(name="owner")
    offer = _offer(harness, owner)
    thief, thief_stream = harness.subscribe(name="thief")
    harness.call(
        thief, thief_stream, accept_call([offer.id.value], [command_task("t", agent.agent_id)])
    )
    assert harness.updates(thief)[0].reason == Reason.REASON_INVALID_OFFERS
    assert offer.id.value in harness.master.state.offers  # Still the owner's.


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (Call(type=Call.ACCEPT), "accept is required"),
        (accept_call([]), "at least one offer id"),
        (accept_call(["M-O0", "M-O0"]), "offer_ids[1]: offer 'M-O0' is listed twice"),
        (accept_call(["M-O0"], refuse_seconds=float("nan")), "refuse_seconds must be a finite"),
        (accept_call(["M-O0"], refuse_seconds=float("inf")), "refuse_seconds must be a finite"),
    ],
)
def test_malformed_accept_is_refused(
    harness: Harness, agent: FakeAgent, call: Call, message: str
) -> None:
    framework_id, stream_id = harness.subscribe()
    _offer(harness, framework_id)
    with pytest.raises(CallError) as raised:
        harness.call(framework_id, stream_id, call)
    assert raised.value.code is ErrorCode.INVALID_ARGUMENT
    assert message in raised.value.message
    assert len(harness.master.state.offers) == 1


@pytest.mark.parametrize(
    ("op", "message"),
    [
        (Op(type=Op.CREATE), "type CREATE is not supported"),
        (Op(type=Op.LAUNCH), "launch is required for a LAUNCH operation"),
        (Op(type=Op.LAUNCH_GROUP, launch_group=Op.LaunchGroup()), "must not be empty"),
        (
            Op(type=Op.LAUNCH, launch=Op.Launch(), id=mesos_pb2.OperationID(value="x")),
            "operation feedback is not supported",
        ),
    ],
)
def test_bad_operation_is_refused(
    harness: Harness, agent: FakeAgent, op: mesos_pb2.Offer.Operation, message: str
) -> None:
    framework_id, stream_id = harness.subscribe()
    offer = _offer(harness, framework_id)
    call = accept_call([offer.id.value])
    call.accept.operations.append(op)
    with pytest.raises(CallError, match=message):
        harness.call(framework_id, stream_id, call)
    assert offer.id.value in harness.master.state.offers


# -- task problems ---------------------------------------------------------------------------


def _bad_tasks(agent_id: str) -> list[tuple[mesos_pb2.TaskInfo, str]]:
    too_big = command_task("big", agent_id, "cpus:5;mem:128")
    no_command = command_task("nocmd", agent_id)
    no_command.ClearField("command")
    both = command_task("both", agent_id)
    both.executor.executor_id.value = "e"
    both.executor.command.value = "x"
    bad_id = command_task("a/b", agent_id)
    empty_id = command_task("", agent_id)
    wrong_agent = command_task("wrong", "M-S99")
    negative = command_task("neg", agent_id)
    negative.resources[0].scalar.value = -1
    nan = command_task("nan", agent_id)
    nan.resources[0].scalar.value = float("nan")
    infinite = command_task("inf", agent_id)
    infinite.resources[0].scalar.value = float("inf")
    custom_without_command = command_task("cwc", agent_id)
    custom_without_command.ClearField("command")
    custom_without_command.executor.executor_id.value = "e1"
    custom_without_command.executor.type = mesos_pb2.ExecutorInfo.CUSTOM
    other_framework_executor = command_task("ofe", agent_id)
    other_framework_executor.ClearField("command")
    other_framework_executor.executor.executor_id.value = "e2"
    other_framework_executor.executor.command.value = "x"
    other_framework_executor.executor.framework_id.value = "someone-else"
    return [
        (too_big, "Task uses more resources cpus:5;mem:128 than available"),
        (no_command, "at least one (but not both)"),
        (both, "at least one (but not both)"),
        (bad_id, "must not contain '/'"),
        (empty_id, "task_id must not be empty"),
        (wrong_agent, "not the offers' agent"),
        (negative, "value must be non-negative"),
        (nan, "value must be a finite number"),
        (infinite, "value must be a finite number"),
        (custom_without_command, "executor.command is required"),
        (other_framework_executor, "not the framework's id"),
    ]


@pytest.mark.parametrize("index", range(11))
def test_bad_task_gets_task_error_and_takes_nothing(
    harness: Harness, agent: FakeAgent, index: int
) -> None:
    task, message = _bad_tasks(agent.agent_id)[index]
    framework_id, stream_id = harness.subscribe()
    offer = _offer(harness, framework_id)
    good = command_task("good", agent.agent_id, "cpus:1;mem:100")
    harness.call(framework_id, stream_id, accept_call([offer.id.value], [task, good], 0))
    (status,) = [s for s in harness.updates(framework_id) if s.task_id.value != "good"]
    assert status.state == mesos_pb2.TASK_ERROR
    assert status.reason == Reason.REASON_TASK_INVALID
    assert message in status.message
    assert not status.HasField("uuid")
    (run,) = harness.to_agent(agent.agent_id, "run_task")
    assert run.run_task.task.task_id.value == "good"
    assert _allocated(harness, agent.agent_id) == Resources.parse("cpus:1;mem:100")


def test_duplicate_task_ids(harness: Harness, agent: FakeAgent) -> None:
    # The whole call is refused (no TASK_ERROR for an id another task uses): see
    # tests/unit/master/test_bad_input_launch.py for the details.
    framework_id, stream_id = harness.subscribe()
    offer = _offer(harness, framework_id)
    tasks = [command_task("t", agent.agent_id), command_task("t", agent.agent_id)]
    with pytest.raises(CallError, match=r"task_infos\[1\].task_id 't' is used by"):
        harness.call(framework_id, stream_id, accept_call([offer.id.value], tasks, 0))
    harness.call(framework_id, stream_id, accept_call([offer.id.value], tasks[:1], 0))
    # Reusing the id of a live task is refused as well.
    offer = _offer(harness, framework_id)
    with pytest.raises(CallError, match="'t' is the id of a task of this framework"):
        harness.call(
            framework_id,
            stream_id,
            accept_call([offer.id.value], [command_task("t", agent.agent_id)]),
        )
    assert harness.updates(framework_id) == []
    assert len(harness.to_agent(agent.agent_id, "run_task")) == 1


def test_resources_are_consumed_in_order(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = harness.subscribe()
    offer = _offer(harness, framework_id)
    tasks = [command_task(f"t{i}", agent.agent_id, "cpus:1.5;mem:100") for i in range(3)]
    harness.call(framework_id, stream_id, accept_call([offer.id.value], tasks, 0))
    assert [s.task_id.value for s in harness.updates(framework_id)] == ["t2"]
    assert _allocated(harness, agent.agent_id) == Resources.parse("cpus:3;mem:200")


def test_task_without_agent_id_gets_the_offers_agent(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = harness.subscribe()
    offer = _offer(harness, framework_id)
    task = command_task("t", agent.agent_id)
    task.ClearField("agent_id")
    harness.call(framework_id, stream_id, accept_call([offer.id.value], [task]))
    (run,) = harness.to_agent(agent.agent_id, "run_task")
    assert run.run_task.task.agent_id.value == agent.agent_id


# -- executors -------------------------------------------------------------------------------


def _executor_task(task_id: str, agent_id: str, executor_id: str = "exec") -> mesos_pb2.TaskInfo:
    task = command_task(task_id, agent_id, "cpus:1;mem:100")
    task.ClearField("command")
    executor = task.executor
    executor.executor_id.value = executor_id
    executor.type = mesos_pb2.ExecutorInfo.CUSTOM
    executor.command.value = "./my-executor"
    executor.resources.extend(Resources.parse("cpus:0.5;mem:32").to_protos())
    return task


def test_executor_is_launched_once_and_its_resources_taken_once(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, stream_id = harness.subscribe()
    offer = _offer(harness, framework_id)
    tasks = [_executor_task("t1", agent.agent_id), _executor_task("t2", agent.agent_id)]
    harness.call(framework_id, stream_id, accept_call([offer.id.value], tasks, 0))
    runs = [m.run_task for m in harness.to_agent(agent.agent_id, "run_task")]
    assert [r.launch_executor for r in runs] == [True, False]
    assert runs[0].executor.executor_id.value == "exec"
    assert _allocated(harness, agent.agent_id) == Resources.parse("cpus:2.5;mem:232")
    # Later offers name the running executor.
    offer = _offer(harness, framework_id)
    assert [e.value for e in offer.executor_ids] == ["exec"]
    # A different ExecutorInfo under the same id is refused.
    changed = _executor_task("t3", agent.agent_id)
    changed.executor.command.value = "./other"
    harness.call(framework_id, stream_id, accept_call([offer.id.value], [changed], 0))
    assert "differs from the one of the executor" in harness.updates(framework_id)[-1].message


def test_exited_executor_releases_its_resources_and_tells_the_framework(
    harness: Harness, agent: FakeAgent
) -> None:
    from protos.v1 import agent_internal_pb2

    framework_id, stream_id = harness.subscribe()
    offer = _offer(harness, framework_id)
    harness.call(
        framework_id,
        stream_id,
        accept_call([offer.id.value], [_executor_task("t1", agent.agent_id)], 0),
    )
    harness.status_update(agent, framework_id, "t1", mesos_pb2.TASK_FINISHED, None)
    message = agent_internal_pb2.AgentMessage()
    message.exited_executor.framework_id.value = framework_id
    message.exited_executor.executor_id.value = "exec"
    message.exited_executor.status = 9
    harness.agent_send(agent, message)
    (failure,) = harness.events(framework_id, Event.FAILURE)
    assert failure.failure.executor_id.value == "exec"
    assert failure.failure.status == 9
    assert _allocated(harness, agent.agent_id) == Resources.EMPTY


def _group_op(
    agent_id: str, *task_ids: str, executor_type: int = mesos_pb2.ExecutorInfo.DEFAULT
) -> mesos_pb2.Offer.Operation:
    op = Op(type=Op.LAUNCH_GROUP)
    op.launch_group.executor.executor_id.value = "group-exec"
    op.launch_group.executor.type = executor_type  # type: ignore[assignment]
    op.launch_group.executor.resources.extend(Resources.parse("cpus:0.1;mem:32").to_protos())
    for task_id in task_ids:
        op.launch_group.task_group.tasks.append(command_task(task_id, agent_id, "cpus:1;mem:64"))
    return op


def test_launch_group_runs_all_tasks_in_one_executor(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = harness.subscribe()
    offer = _offer(harness, framework_id)
    call = accept_call([offer.id.value], refuse_seconds=0)
    call.accept.operations.append(_group_op(agent.agent_id, "a", "b"))
    harness.call(framework_id, stream_id, call)
    (message,) = harness.to_agent(agent.agent_id, "run_task_group")
    run = message.run_task_group
    assert [t.task_id.value for t in run.task_group.tasks] == ["a", "b"]
    assert run.launch_executor
    assert run.executor.executor_id.value == "group-exec"
    assert _allocated(harness, agent.agent_id) == Resources.parse("cpus:2.1;mem:160")
    fw = harness.master.framework(framework_id)
    assert fw is not None
    assert fw.tasks["a"].executor_id == "group-exec"


def test_bad_task_group_fails_all_its_tasks(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = harness.subscribe()
    offer = _offer(harness, framework_id)
    call = accept_call([offer.id.value], refuse_seconds=0)
    op = _group_op(agent.agent_id, "a", "b")
    op.launch_group.task_group.tasks[1].resources[0].scalar.value = 100  # cpus:100
    call.accept.operations.append(op)
    call.accept.operations.append(
        _group_op(agent.agent_id, "c", executor_type=mesos_pb2.ExecutorInfo.CUSTOM)
    )
    harness.call(framework_id, stream_id, call)
    statuses = harness.updates(framework_id)
    assert [(s.task_id.value, s.reason) for s in statuses] == [
        ("a", Reason.REASON_TASK_GROUP_INVALID),
        ("b", Reason.REASON_TASK_GROUP_INVALID),
        ("c", Reason.REASON_TASK_GROUP_INVALID),
    ]
    assert "more resources" in statuses[0].message
    assert "type must be DEFAULT" in statuses[2].message
    assert _allocated(harness, agent.agent_id) == Resources.EMPTY


# -- reservations ----------------------------------------------------------------------------


def _reserve_op(resources: str, role: str = "eng") -> mesos_pb2.Offer.Operation:
    op = Op(type=Op.RESERVE)
    reserved = Resources.parse(resources).push_reservation(
        __import__("protos.resources", fromlist=["Reservation"]).Reservation(role, "dynamic")
    )
    op.reserve.resources.extend(reserved.to_protos())
    return op


def test_reserve_then_launch_on_the_reservation(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = harness.subscribe(roles=("eng",))
    offer = _offer(harness, framework_id)
    call = accept_call([offer.id.value], refuse_seconds=0)
    call.accept.operations.append(_reserve_op("cpus:2;mem:1024"))
    launch = call.accept.operations.add(type=Op.LAUNCH)
    task = command_task("t", agent.agent_id, "cpus(eng[dynamic]):1;mem(eng[dynamic]):512")
    launch.launch.task_infos.append(task)
    harness.call(framework_id, stream_id, call)
    assert harness.updates(framework_id) == []
    (checkpoint,) = harness.to_agent(agent.agent_id, "checkpoint_resources")
    assert Resources.from_protos(checkpoint.checkpoint_resources.resources) == Resources.parse(
        "cpus(eng[dynamic]):2;mem(eng[dynamic]):1024"
    )
    state = harness.registry.load()
    assert Resources.from_protos(state.reservations[agent.agent_id]) == Resources.parse(
        "cpus(eng[dynamic]):2;mem(eng[dynamic]):1024"
    )
    agent_record = harness.master.agent(agent.agent_id)
    assert agent_record is not None
    assert agent_record.total == Resources.parse(
        "cpus:2;mem:3072;disk:10000;ports:[31000-32000];cpus(eng[dynamic]):2;mem(eng[dynamic]):1024"
    )
    # The rest of the reservation comes back in offers to the role.
    harness.allocate()
    again = Resources.from_protos(harness.offers(framework_id)[-1].resources)
    assert again.reserved("eng") == Resources.parse("cpus(eng[dynamic]):1;mem(eng[dynamic]):512")


def test_unreserve(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = harness.subscribe(roles=("eng",))
    offer = _offer(harness, framework_id)
    call = accept_call([offer.id.value], refuse_seconds=0)
    call.accept.operations.append(_reserve_op("cpus:2"))
    harness.call(framework_id, stream_id, call)
    offer = _offer(harness, framework_id)
    call = accept_call([offer.id.value], refuse_seconds=0)
    op = call.accept.operations.add(type=Op.UNRESERVE)
    op.unreserve.resources.extend(Resources.parse("cpus(eng[dynamic]):2").to_protos())
    harness.call(framework_id, stream_id, call)
    assert harness.registry.load().reservations == {}
    agent_record = harness.master.agent(agent.agent_id)
    assert agent_record is not None
    assert agent_record.reservations == Resources.EMPTY


@pytest.mark.parametrize(
    ("op", "message"),
    [
        (_reserve_op("cpus:2", role="ops"), "dynamically reserved to the offers' role 'eng'"),
        (_reserve_op("cpus:100"), "is not left in the offers"),
        (Op(type=Op.RESERVE, reserve=Op.Reserve()), "must not be empty"),
        (
            Op(
                type=Op.UNRESERVE,
                unreserve=Op.Unreserve(resources=Resources.parse("cpus:1").to_protos()),
            ),
            "must all be dynamically reserved",
        ),
        (
            Op(
                type=Op.UNRESERVE,
                unreserve=Op.Unreserve(
                    resources=Resources.parse("cpus(eng[dynamic]):1").to_protos()
                ),
            ),
            "is not left in the offers",
        ),
    ],
)
def test_bad_reservation_is_refused_and_changes_nothing(
    harness: Harness, agent: FakeAgent, op: mesos_pb2.Offer.Operation, message: str
) -> None:
    framework_id, stream_id = harness.subscribe(roles=("eng",))
    offer = _offer(harness, framework_id)
    call = accept_call([offer.id.value], [command_task("t", agent.agent_id)])
    call.accept.operations.append(op)
    with pytest.raises(CallError) as raised:
        harness.call(framework_id, stream_id, call)
    assert raised.value.code is ErrorCode.INVALID_ARGUMENT
    assert message in raised.value.message
    assert offer.id.value in harness.master.state.offers
    assert harness.to_agent(agent.agent_id, "run_task") == []


# -- decline ---------------------------------------------------------------------------------


def test_decline_with_filter_then_revive(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = harness.subscribe()
    offer = _offer(harness, framework_id)
    decline = Call(type=Call.DECLINE)
    decline.decline.offer_ids.add(value=offer.id.value)
    decline.decline.offer_ids.add(value="M-O1234")  # Unknown (rescinded meanwhile): skipped.
    decline.decline.filters.refuse_seconds = 3600
    harness.call(framework_id, stream_id, decline)
    harness.clear()
    harness.advance(60)
    harness.allocate()
    assert harness.offers(framework_id) == []
    harness.call(framework_id, stream_id, Call(type=Call.REVIVE, revive=Call.Revive()))
    harness.allocate()
    assert len(harness.offers(framework_id)) == 1


def test_decline_needs_its_payload_and_finite_filters(harness: Harness) -> None:
    framework_id, stream_id = harness.subscribe()
    with pytest.raises(CallError, match="decline is required"):
        harness.call(framework_id, stream_id, Call(type=Call.DECLINE))
    decline = Call(type=Call.DECLINE)
    decline.decline.filters.refuse_seconds = float("nan")
    with pytest.raises(CallError, match=r"decline\.filters\.refuse_seconds"):
        harness.call(framework_id, stream_id, decline)
