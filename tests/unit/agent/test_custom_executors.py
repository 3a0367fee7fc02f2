"""Custom executors in the agent core: subscription, launches, updates, timeouts, exits."""

from __future__ import annotations

import pytest

from agent.core import AgentState, ContainerExit, InvalidCall, UnknownTarget, events, handle
from agent.core.effects import (
    CloseExecutorStream,
    DestroyContainer,
    LaunchContainer,
    SetTimer,
    UpdateContainer,
)
from protos.v1 import agent_internal_pb2, executor_pb2, mesos_pb2
from tests.unit.agent.conftest import MakeAgent, uuid_n
from tests.unit.agent.helpers import (
    FW,
    ack_all,
    executor_info,
    forwarded,
    forwarded_statuses,
    from_master,
    master_kill,
    master_relay,
    master_shutdown_executor,
    master_shutdown_framework,
    of_type,
    run_task,
    subscribe_call,
    task_info,
    to_executor,
    to_master,
)

Event = executor_pb2.Event
Reason = mesos_pb2.TaskStatus


def start_executor(state: AgentState, task_id: str = "t1") -> str:
    """Run a task on executor 'ex' and launch its container; return the container id."""
    effects = handle(
        state,
        from_master(run_task=run_task(task_info(task_id, command=None), executor=executor_info())),
        0.0,
    )
    [spec] = of_type(effects, LaunchContainer)
    assert isinstance(spec, LaunchContainer)
    assert spec.task_id is None
    assert str(spec.resources) == "cpus:1.1;mem:160"  # Executor plus task.
    effects = handle(state, events.ContainerLaunched(spec.container_id), 0.1)
    assert effects == [
        UpdateContainer(spec.container_id, spec.resources),
        SetTimer(("executor-registration", FW, "ex"), 60.1),
    ]
    return spec.container_id


def executor_status(task_id: str, state: int, n: int) -> mesos_pb2.TaskStatus:
    status = mesos_pb2.TaskStatus(state=state, uuid=uuid_n(1000 + n))  # type: ignore[arg-type]
    status.task_id.value = task_id
    return status


def test_tasks_queue_until_the_executor_subscribes(make_agent: MakeAgent) -> None:
    state = make_agent()
    container = start_executor(state)
    sent = to_executor(
        handle(state, events.ExecutorSubscribed(FW, "ex", subscribe_call([], [])), 1.0)
    )
    assert [e.type for e in sent] == [Event.SUBSCRIBED, Event.LAUNCH]
    assert sent[0].subscribed.container_id.value == container
    assert sent[0].subscribed.agent_info.id.value == "agent-1"
    assert sent[1].launch.task.task_id.value == "t1"


def test_updates_are_forwarded_and_acknowledged_to_the_executor(make_agent: MakeAgent) -> None:
    state = make_agent()
    start_executor(state)
    handle(state, events.ExecutorSubscribed(FW, "ex", subscribe_call([], [])), 1.0)
    effects = handle(
        state,
        events.ExecutorUpdate(FW, "ex", executor_status("t1", mesos_pb2.TASK_RUNNING, 1)),
        2.0,
    )
    assert forwarded(effects) == [("t1", mesos_pb2.TASK_RUNNING)]
    [status] = forwarded_statuses(effects)
    assert status.source == Reason.SOURCE_EXECUTOR
    assert status.executor_id.value == "ex"
    [ack] = to_executor(effects)
    assert (ack.type, ack.acknowledged.uuid) == (Event.ACKNOWLEDGED, uuid_n(1001))
    # The same update again is a duplicate: acknowledged again, not forwarded.
    effects = handle(
        state,
        events.ExecutorUpdate(FW, "ex", executor_status("t1", mesos_pb2.TASK_RUNNING, 1)),
        3.0,
    )
    assert forwarded(effects) == []
    assert [e.type for e in to_executor(effects)] == [Event.ACKNOWLEDGED]


def test_a_second_task_goes_straight_to_the_running_executor(make_agent: MakeAgent) -> None:
    state = make_agent()
    container = start_executor(state)
    handle(state, events.ExecutorSubscribed(FW, "ex", subscribe_call([], [])), 1.0)
    effects = handle(
        state,
        from_master(run_task=run_task(task_info("t2", command=None), executor=executor_info())),
        2.0,
    )
    assert of_type(effects, LaunchContainer) == []
    [update] = of_type(effects, UpdateContainer)
    assert update == UpdateContainer(container, state.executor(FW, "ex").container_resources())  # type: ignore[union-attr]
    assert [e.launch.task.task_id.value for e in to_executor(effects)] == ["t2"]


def test_bad_executor_calls_are_refused_precisely(make_agent: MakeAgent) -> None:
    state = make_agent()
    start_executor(state)
    with pytest.raises(InvalidCall, match="not subscribed: SUBSCRIBE first"):
        handle(
            state,
            events.ExecutorUpdate(FW, "ex", executor_status("t1", mesos_pb2.TASK_RUNNING, 1)),
            1.0,
        )
    with pytest.raises(UnknownTarget, match="executor 'nope' of framework 'fw-1'"):
        handle(state, events.ExecutorSubscribed(FW, "nope", subscribe_call([], [])), 1.0)
    handle(state, events.ExecutorSubscribed(FW, "ex", subscribe_call([], [])), 1.0)
    with pytest.raises(UnknownTarget, match="'t9' is not a task of executor 'ex'"):
        handle(
            state,
            events.ExecutorUpdate(FW, "ex", executor_status("t9", mesos_pb2.TASK_RUNNING, 1)),
            1.0,
        )
    short = executor_status("t1", mesos_pb2.TASK_RUNNING, 1)
    short.uuid = b"x"
    with pytest.raises(InvalidCall, match="uuid must be 16 bytes, not 1"):
        handle(state, events.ExecutorUpdate(FW, "ex", short), 1.0)
    with pytest.raises(InvalidCall, match="TASK_STAGING cannot be sent"):
        handle(
            state,
            events.ExecutorUpdate(FW, "ex", executor_status("t1", mesos_pb2.TASK_STAGING, 2)),
            1.0,
        )
    handle(
        state,
        events.ExecutorUpdate(FW, "ex", executor_status("t1", mesos_pb2.TASK_FINISHED, 3)),
        1.0,
    )
    with pytest.raises(InvalidCall, match="already terminal"):
        handle(
            state,
            events.ExecutorUpdate(FW, "ex", executor_status("t1", mesos_pb2.TASK_RUNNING, 4)),
            1.0,
        )


def test_command_executors_cannot_subscribe(make_agent: MakeAgent) -> None:
    state = make_agent()
    handle(state, from_master(run_task=run_task(task_info("t1"))), 0.0)
    with pytest.raises(InvalidCall, match="command executor the agent runs itself"):
        handle(state, events.ExecutorSubscribed(FW, "t1", subscribe_call([], [])), 1.0)


def test_the_registration_timeout_fails_the_tasks(make_agent: MakeAgent) -> None:
    state = make_agent()
    container = start_executor(state)
    assert handle(state, events.TimerFired(("executor-registration", FW, "ex")), 60.1) == [
        DestroyContainer(container)
    ]
    effects = handle(state, events.ContainerExited(container, ContainerExit(signal=9)), 60.2)
    [status] = forwarded_statuses(effects)
    assert status.state == mesos_pb2.TASK_FAILED
    assert status.reason == Reason.REASON_EXECUTOR_REGISTRATION_TIMEOUT
    assert status.message == "Executor did not register within 60 seconds"
    [exited] = to_master(effects)
    assert exited.exited_executor.executor_id.value == "ex"
    assert exited.exited_executor.status == 9
    ack_all(state, "t1")
    assert state.frameworks == {}


def test_an_executor_exit_fails_its_live_tasks_with_the_status(make_agent: MakeAgent) -> None:
    state = make_agent()
    container = start_executor(state)
    handle(state, events.ExecutorSubscribed(FW, "ex", subscribe_call([], [])), 1.0)
    effects = handle(state, events.ContainerExited(container, ContainerExit(status=2)), 5.0)
    [status] = forwarded_statuses(effects)
    assert status.state == mesos_pb2.TASK_FAILED
    assert status.reason == Reason.REASON_EXECUTOR_TERMINATED
    assert status.message == "Executor terminated: exited with status 2"
    assert to_master(effects)[0].exited_executor.status == 2 << 8
    assert CloseExecutorStream(FW, "ex") in effects


def test_shutdown_sends_shutdown_then_destroys_after_the_grace_period(
    make_agent: MakeAgent,
) -> None:
    state = make_agent()
    container = start_executor(state)
    handle(state, events.ExecutorSubscribed(FW, "ex", subscribe_call([], [])), 1.0)
    effects = handle(state, master_shutdown_executor(FW, "ex"), 2.0)
    assert [e.type for e in to_executor(effects)] == [Event.SHUTDOWN]
    assert SetTimer(("executor-shutdown", FW, "ex"), 7.0) in effects
    assert handle(state, events.TimerFired(("executor-shutdown", FW, "ex")), 7.0) == [
        DestroyContainer(container)
    ]


def test_a_shut_down_framework_gets_no_more_updates(make_agent: MakeAgent) -> None:
    state = make_agent()
    container = start_executor(state)
    handle(state, events.ExecutorSubscribed(FW, "ex", subscribe_call([], [])), 1.0)
    handle(
        state,
        events.ExecutorUpdate(FW, "ex", executor_status("t1", mesos_pb2.TASK_RUNNING, 1)),
        2.0,
    )
    handle(state, master_shutdown_framework(FW), 3.0)
    assert state.updates.get(FW, "t1") is None
    effects = handle(state, events.ContainerExited(container, ContainerExit(status=0)), 4.0)
    assert forwarded(effects) == []
    assert state.frameworks == {}


def test_killing_a_queued_task_kills_it_and_drops_the_idle_executor(make_agent: MakeAgent) -> None:
    state = make_agent()
    container = start_executor(state)
    effects = handle(state, master_kill(FW, "t1", None), 1.0)
    [status] = forwarded_statuses(effects)
    assert status.state == mesos_pb2.TASK_KILLED
    assert status.reason == Reason.REASON_TASK_KILLED_DURING_LAUNCH
    assert DestroyContainer(container) in effects


def test_a_kill_of_a_launched_task_goes_to_the_executor(make_agent: MakeAgent) -> None:
    state = make_agent()
    start_executor(state)
    handle(state, events.ExecutorSubscribed(FW, "ex", subscribe_call([], [])), 1.0)
    policy = mesos_pb2.KillPolicy()
    policy.grace_period.nanoseconds = 1
    [event] = to_executor(handle(state, master_kill(FW, "t1", policy), 2.0))
    assert (event.type, event.kill.task_id.value) == (Event.KILL, "t1")
    assert event.kill.kill_policy == policy


def test_resubscription_reconciles_tasks_and_updates(make_agent: MakeAgent) -> None:
    state = make_agent()
    start_executor(state)
    handle(
        state, events.ExecutorSubscribed(FW, "ex", subscribe_call([], [])), 1.0
    )  # LAUNCH t1 sent ...
    handle(
        state,
        from_master(run_task=run_task(task_info("t2", command=None), executor=executor_info())),
        1.5,
    )
    handle(state, events.ExecutorDisconnected(FW, "ex"), 0.0)  # ... but the stream broke.
    handle(
        state,
        from_master(run_task=run_task(task_info("t3", command=None), executor=executor_info())),
        1.6,
    )
    # The executor got t2 only and has an update for it the agent never saw.
    effects = handle(
        state,
        events.ExecutorSubscribed(
            FW,
            "ex",
            subscribe_call(
                [task_info("t2", command=None)], [executor_status("t2", mesos_pb2.TASK_RUNNING, 7)]
            ),
        ),
        2.0,
    )
    sent = to_executor(effects)
    assert [e.type for e in sent] == [
        Event.SUBSCRIBED,
        Event.ACKNOWLEDGED,
        Event.LAUNCH,
        Event.LAUNCH,
    ]
    assert [e.launch.task.task_id.value for e in sent[2:]] == ["t1", "t3"]
    assert forwarded(effects) == [("t2", mesos_pb2.TASK_RUNNING)]


def test_task_groups_launch_together(make_agent: MakeAgent) -> None:
    state = make_agent()
    run = agent_internal_pb2.RunTaskGroup()
    run.framework_info.id.value = FW
    run.executor.CopyFrom(executor_info())
    run.task_group.tasks.extend([task_info("a", command=None), task_info("b", command=None)])
    [spec] = of_type(handle(state, from_master(run_task_group=run), 0.0), LaunchContainer)
    assert isinstance(spec, LaunchContainer)
    handle(state, events.ContainerLaunched(spec.container_id), 0.1)
    sent = to_executor(
        handle(state, events.ExecutorSubscribed(FW, "ex", subscribe_call([], [])), 1.0)
    )
    assert [e.type for e in sent] == [Event.SUBSCRIBED, Event.LAUNCH_GROUP]
    assert [t.task_id.value for t in sent[1].launch_group.task_group.tasks] == ["a", "b"]


def test_a_task_group_with_duplicate_ids_is_refused(make_agent: MakeAgent) -> None:
    state = make_agent()
    run = agent_internal_pb2.RunTaskGroup()
    run.framework_info.id.value = FW
    run.executor.CopyFrom(executor_info())
    run.task_group.tasks.extend([task_info("a", command=None), task_info("a", command=None)])
    statuses = forwarded_statuses(handle(state, from_master(run_task_group=run), 0.0))
    assert {s.reason for s in statuses} == {Reason.REASON_TASK_GROUP_INVALID}


def test_framework_messages_flow_both_ways(make_agent: MakeAgent) -> None:
    state = make_agent()
    start_executor(state)
    assert handle(state, master_relay(FW, "ex", b"early"), 0.0) == []  # Not subscribed: dropped.
    handle(state, events.ExecutorSubscribed(FW, "ex", subscribe_call([], [])), 1.0)
    [event] = to_executor(handle(state, master_relay(FW, "ex", b"hi"), 0.0))
    assert (event.type, event.message.data) == (Event.MESSAGE, b"hi")
    [message] = to_master(handle(state, events.ExecutorMessage(FW, "ex", b"yo"), 0.0))
    assert message.executor_to_framework.data == b"yo"
