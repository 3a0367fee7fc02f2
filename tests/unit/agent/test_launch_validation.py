"""Launches the agent must refuse: each gets a precise update, and nothing else changes."""

from __future__ import annotations

from agent.core import AgentState, handle
from agent.core.effects import LaunchContainer
from protos.v1 import mesos_pb2
from tests.unit.agent.conftest import MakeAgent
from tests.unit.agent.helpers import (
    FW,
    executor_info,
    forwarded_statuses,
    from_master,
    master_ack,
    master_kill,
    master_reconcile,
    of_type,
    run_task,
    task_info,
    to_master,
)

Reason = mesos_pb2.TaskStatus


def refused(state: AgentState, task: mesos_pb2.TaskInfo, **kwargs: object) -> mesos_pb2.TaskStatus:
    before = state.allocated()
    effects = handle(state, from_master(run_task=run_task(task, **kwargs)), 0.0)  # type: ignore[arg-type]
    assert of_type(effects, LaunchContainer) == []
    [status] = forwarded_statuses(effects)
    assert state.allocated() == before
    assert state.frameworks.get(FW) is None or task.task_id.value not in {
        t for e in state.frameworks[FW].executors.values() for t in e.tasks
    }
    return status


def test_a_task_without_command_or_executor_is_an_error(make_agent: MakeAgent) -> None:
    status = refused(make_agent(), task_info("t1", command=None))
    assert status.state == mesos_pb2.TASK_ERROR
    assert status.reason == Reason.REASON_TASK_INVALID
    assert status.message == "task: one of 'executor' and 'command' must be set"
    assert status.source == Reason.SOURCE_AGENT


def test_an_empty_command_is_an_error(make_agent: MakeAgent) -> None:
    status = refused(make_agent(), task_info("t1", command=""))
    assert status.message == "task.command.value is empty: it must hold the shell command"


def test_resources_the_agent_lacks_are_an_error(make_agent: MakeAgent) -> None:
    status = refused(make_agent("cpus:2;mem:1024"), task_info("t1", "cpus:3;mem:128"))
    assert status.state == mesos_pb2.TASK_ERROR
    assert status.message == (
        "task needs cpus:3;mem:128 but the agent has only cpus:2;mem:1024 unallocated"
    )


def test_resources_in_use_count_against_new_tasks(make_agent: MakeAgent) -> None:
    state = make_agent("cpus:2;mem:1024")
    handle(state, from_master(run_task=run_task(task_info("t1", "cpus:1.5;mem:128"))), 0.0)
    status = refused(state, task_info("t2", "cpus:1;mem:128"))
    assert "cpus:0.5;mem:896" in status.message


def test_bad_resources_are_named(make_agent: MakeAgent) -> None:
    task = task_info("t1")
    task.resources.add(name="cpus", type=mesos_pb2.Value.SCALAR).scalar.value = -1
    status = refused(make_agent(), task)
    assert status.message.startswith("task.resources: invalid resource #2 'cpus'")


def test_an_unknown_executor_without_a_command_is_an_error(make_agent: MakeAgent) -> None:
    executor = executor_info("ghost")
    executor.ClearField("command")
    status = refused(make_agent(), task_info("t1", command=None), executor=executor)
    assert status.state == mesos_pb2.TASK_ERROR
    assert "unknown executor 'ghost'" in status.message


def test_a_master_expecting_a_running_executor_that_is_not_gets_lost(
    make_agent: MakeAgent,
) -> None:
    state = make_agent()
    run = run_task(task_info("t1", command=None), executor=executor_info())
    run.launch_executor = False
    [status] = forwarded_statuses(handle(state, from_master(run_task=run), 0.0))
    assert status.state == mesos_pb2.TASK_LOST
    assert status.reason == Reason.REASON_EXECUTOR_TERMINATED


def test_partition_aware_frameworks_get_dropped_instead_of_lost(make_agent: MakeAgent) -> None:
    state = make_agent()
    run = run_task(
        task_info("t1", command=None),
        executor=executor_info(),
        capabilities=[mesos_pb2.FrameworkInfo.Capability.PARTITION_AWARE],
    )
    run.launch_executor = False
    [status] = forwarded_statuses(handle(state, from_master(run_task=run), 0.0))
    assert status.state == mesos_pb2.TASK_DROPPED


def test_a_different_executor_info_under_a_running_id_is_an_error(make_agent: MakeAgent) -> None:
    state = make_agent()
    handle(
        state,
        from_master(run_task=run_task(task_info("t1", command=None), executor=executor_info())),
        0.0,
    )
    other = executor_info()
    other.command.value = "something-else"
    status = refused(state, task_info("t2", command=None), executor=other)
    assert status.message == "executor 'ex' is running on this agent with a different ExecutorInfo"


def test_a_repeated_launch_is_ignored(make_agent: MakeAgent) -> None:
    state = make_agent()
    handle(state, from_master(run_task=run_task(task_info("t1"))), 0.0)
    assert handle(state, from_master(run_task=run_task(task_info("t1"))), 0.1) == []


def test_a_reused_task_id_is_refused_without_touching_the_running_task(
    make_agent: MakeAgent,
) -> None:
    state = make_agent()
    handle(state, from_master(run_task=run_task(task_info("t1"))), 0.0)
    effects = handle(state, from_master(run_task=run_task(task_info("t1", command="sleep 9"))), 0.1)
    # Not a status update: the id's stream belongs to the running task, and the master must not
    # apply the refusal to that task either.
    [message] = to_master(effects)
    refusal = message.launch_refused
    assert (refusal.framework_id.value, refusal.task_id.value) == (FW, "t1")
    assert refusal.reason == Reason.REASON_TASK_INVALID
    assert "task_id 't1' is in use" in refusal.message
    assert forwarded_statuses(effects) == []
    assert state.updates.get(FW, "t1") is None
    assert state.frameworks[FW].executors["t1"].tasks["t1"].info.command.value == "true"


def test_docker_containers_are_refused(make_agent: MakeAgent) -> None:
    task = task_info("t1")
    task.container.type = mesos_pb2.ContainerInfo.DOCKER
    status = refused(make_agent(), task)
    assert status.message == "task.container.type DOCKER is not supported by this agent"


def test_secret_environment_variables_are_refused(make_agent: MakeAgent) -> None:
    task = task_info("t1")
    task.command.environment.variables.add(name="X", type=mesos_pb2.Environment.Variable.SECRET)
    status = refused(make_agent(), task)
    assert status.message == (
        "task.command.environment.variables[0]: SECRET variables are not supported by this agent"
    )


def test_a_health_check_must_match_its_type(make_agent: MakeAgent) -> None:
    task = task_info("t1")
    task.health_check.type = mesos_pb2.HealthCheck.HTTP
    status = refused(make_agent(), task)
    assert status.message == "task.health_check.http must be set for a HTTP check"


def test_a_refused_task_stream_closes_on_ack(make_agent: MakeAgent) -> None:
    state = make_agent()
    status = refused(state, task_info("t1", command=None))
    handle(state, master_ack(FW, "t1", status.uuid), 1.0)
    assert state.updates.get(FW, "t1") is None


def test_killing_an_unknown_task_reports_it_lost(make_agent: MakeAgent) -> None:
    state = make_agent()
    [status] = forwarded_statuses(handle(state, master_kill(FW, "nope", None), 0.0))
    assert status.state == mesos_pb2.TASK_LOST
    assert status.reason == Reason.REASON_TASK_UNKNOWN


def test_reconciliation_answers_for_unknown_tasks_only(make_agent: MakeAgent) -> None:
    state = make_agent()
    handle(state, from_master(run_task=run_task(task_info("t1"))), 0.0)
    statuses = [mesos_pb2.TaskStatus(), mesos_pb2.TaskStatus()]
    statuses[0].task_id.value = "t1"
    statuses[1].task_id.value = "t2"
    [status] = forwarded_statuses(handle(state, master_reconcile(FW, statuses), 1.0))
    assert (status.task_id.value, status.state) == ("t2", mesos_pb2.TASK_LOST)
    assert status.reason == Reason.REASON_RECONCILIATION
