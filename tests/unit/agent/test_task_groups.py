"""The agent core playing the default executor: task groups, one nested container per task."""

from __future__ import annotations

import signal
from collections.abc import Sequence

import pytest

from agent.core import AgentState, ContainerExit, InvalidCall, events, handle
from agent.core.effects import (
    CheckpointExecutor,
    CheckpointTask,
    DestroyContainer,
    Effect,
    LaunchContainer,
    SetTimer,
    SignalContainer,
    StartHealthCheck,
)
from agent.core.model import ExecutorKind, ExecutorPhase
from agent.core.registration import reregister_message
from protos.resources import Resources
from protos.v1 import mesos_pb2
from tests.unit.agent.conftest import MakeAgent
from tests.unit.agent.helpers import (
    FW,
    ack_all,
    default_executor_info,
    executor_info,
    forwarded,
    forwarded_statuses,
    from_master,
    master_kill,
    master_shutdown_executor,
    master_shutdown_framework,
    of_type,
    run_group,
    run_task,
    subscribe_call,
    task_info,
    to_master,
)

Reason = mesos_pb2.TaskStatus
KILLING = mesos_pb2.FrameworkInfo.Capability.TASK_KILLING_STATE


def launch_group(
    state: AgentState,
    task_ids: Sequence[str] = ("a", "b", "c"),
    resources: str = "cpus:1;mem:128",
    **kwargs: object,
) -> dict[str, LaunchContainer]:
    """Run a group of command tasks on executor 'dex'; return each task's LaunchContainer."""
    tasks = [task_info(t, resources, command=f"run {t}") for t in task_ids]
    effects = handle(state, from_master(run_task_group=run_group(tasks, **kwargs)), 0.0)  # type: ignore[arg-type]
    launches = [e for e in of_type(effects, LaunchContainer) if isinstance(e, LaunchContainer)]
    return {spec.task_id or "": spec for spec in launches}


def start_group(state: AgentState, task_ids: Sequence[str] = ("a", "b", "c")) -> dict[str, str]:
    """Launch a group and all its containers; return each task's container id."""
    specs = launch_group(state, task_ids)
    for spec in specs.values():
        handle(state, events.ContainerLaunched(spec.container_id), 0.1)
    return {task_id: spec.container_id for task_id, spec in specs.items()}


def states(effects: Sequence[Effect]) -> dict[str, int]:
    return dict(forwarded(effects))


def latest(state: AgentState, task_id: str) -> mesos_pb2.TaskStatus:
    """The newest update of a task (queued behind its unacknowledged head, perhaps)."""
    stream = state.updates.get(FW, task_id)
    assert stream is not None
    return stream.pending[-1]


def test_a_group_runs_one_container_per_task_and_starts_together(make_agent: MakeAgent) -> None:
    state = make_agent()
    specs = launch_group(state)
    executor = state.executor(FW, "dex")
    assert executor is not None
    assert (executor.kind, executor.phase) == (ExecutorKind.DEFAULT, ExecutorPhase.RUNNING)
    assert sorted(specs) == ["a", "b", "c"]
    for task_id, spec in specs.items():
        assert (spec.executor_id, spec.command.value) == ("dex", f"run {task_id}")
        assert spec.parent_container_id == executor.container_id  # Sandbox: its run's tasks/.
        assert str(spec.resources) == "cpus:1;mem:128"  # The task's own, not the executor's.
    assert len({spec.container_id for spec in specs.values()} | {executor.container_id}) == 4
    # The executor's own resources count for the group.
    assert state.allocated() == Resources.parse("cpus:3.1;mem:416")

    assert handle(state, events.ContainerLaunched(specs["a"].container_id), 0.1) == []
    assert handle(state, events.ContainerLaunched(specs["b"].container_id), 0.1) == []
    effects = handle(state, events.ContainerLaunched(specs["c"].container_id), 0.2)
    assert forwarded(effects) == [(t, mesos_pb2.TASK_RUNNING) for t in ("a", "b", "c")]
    for status in forwarded_statuses(effects):
        assert status.source == Reason.SOURCE_EXECUTOR
        assert status.executor_id.value == "dex"
        task_id = status.task_id.value
        assert status.container_status.container_id.value == specs[task_id].container_id


def test_tasks_finish_on_their_own_and_the_executor_ends_with_the_last(
    make_agent: MakeAgent,
) -> None:
    state = make_agent()
    containers = start_group(state, ("a", "b"))
    for task_id in ("a", "b"):
        ack_all(state, task_id)
    effects = handle(state, events.ContainerExited(containers["a"], ContainerExit(status=0)), 1.0)
    assert states(effects) == {"a": mesos_pb2.TASK_FINISHED}
    assert of_type(effects, SignalContainer) + of_type(effects, DestroyContainer) == []
    assert to_master(effects) == []  # 'b' still runs: so does the executor.
    effects = handle(state, events.ContainerExited(containers["b"], ContainerExit(status=0)), 2.0)
    [finished] = forwarded_statuses(effects)
    assert finished.message == "Command exited with status 0"
    [exited] = to_master(effects)
    assert (exited.exited_executor.executor_id.value, exited.exited_executor.status) == ("dex", 0)
    assert state.allocated() == Resources.EMPTY
    ack_all(state, "a")
    ack_all(state, "b")
    assert state.frameworks == {}


def test_a_container_that_fails_to_launch_fails_the_whole_group(make_agent: MakeAgent) -> None:
    state = make_agent()
    specs = launch_group(state)
    a, b, c = (specs[t].container_id for t in "abc")
    handle(state, events.ContainerLaunched(a), 0.1)
    effects = handle(state, events.ContainerLaunchFailed(b, "no such user 'x'"), 0.2)
    assert DestroyContainer(a) in effects  # 'c' is still launching: destroyed once launched.
    [failed] = forwarded_statuses(effects)
    assert (failed.task_id.value, failed.state) == ("b", mesos_pb2.TASK_FAILED)
    assert failed.reason == Reason.REASON_CONTAINER_LAUNCH_FAILED
    assert failed.message == "Failed to launch container: no such user 'x'"

    [other] = forwarded_statuses(
        handle(state, events.ContainerExited(a, ContainerExit(signal=9)), 0.3)
    )
    assert (other.task_id.value, other.state) == ("a", mesos_pb2.TASK_FAILED)
    assert other.reason == Reason.REASON_CONTAINER_LAUNCH_FAILED
    assert other.message == (
        "Task group not launched: the container of task 'b' failed to launch: no such user 'x'"
    )
    assert handle(state, events.ContainerLaunched(c), 0.4) == [DestroyContainer(c)]
    effects = handle(state, events.ContainerExited(c, ContainerExit(signal=9)), 0.5)
    assert states(effects) == {"c": mesos_pb2.TASK_FAILED}
    assert to_master(effects)[0].exited_executor.executor_id.value == "dex"
    assert all(
        s.state != mesos_pb2.TASK_RUNNING
        for t in "abc"
        for s in state.updates.get(FW, t).pending  # type: ignore[union-attr]
    )
    assert state.allocated() == Resources.EMPTY


def test_a_task_that_ends_before_its_group_starts_is_reported_after_its_running(
    make_agent: MakeAgent,
) -> None:
    state = make_agent()
    specs = launch_group(state, ("a", "b"))
    handle(state, events.ContainerLaunched(specs["a"].container_id), 0.1)
    assert (
        handle(state, events.ContainerExited(specs["a"].container_id, ContainerExit(status=0)), 0.2)
        == []
    )
    effects = handle(state, events.ContainerLaunched(specs["b"].container_id), 0.3)
    assert forwarded(effects) == [("a", mesos_pb2.TASK_RUNNING), ("b", mesos_pb2.TASK_RUNNING)]
    assert latest(state, "a").state == mesos_pb2.TASK_FINISHED  # Queued behind its RUNNING.
    assert of_type(effects, SignalContainer) == []


def test_one_task_failing_kills_the_rest_of_its_group(make_agent: MakeAgent) -> None:
    state = make_agent()
    containers = start_group(state)
    effects = handle(state, events.ContainerExited(containers["b"], ContainerExit(status=3)), 1.0)
    assert latest(state, "b").state == mesos_pb2.TASK_FAILED
    assert latest(state, "b").message == "Command exited with status 3"
    assert of_type(effects, SignalContainer) == [
        SignalContainer(containers["a"], signal.SIGTERM),
        SignalContainer(containers["c"], signal.SIGTERM),
    ]
    assert SetTimer(("kill", FW, "a"), 4.0) in effects  # Each task's own grace period: 3 s.

    handle(state, events.ContainerExited(containers["a"], ContainerExit(signal=15)), 2.0)
    killed = latest(state, "a")
    assert (killed.state, killed.reason) == (mesos_pb2.TASK_KILLED, 0)
    assert not killed.HasField("reason")
    assert killed.message == (
        "Killed with its task group because task 'b' failed: Command terminated by signal 15 (TERM)"
    )
    # 'c' ignores SIGTERM: its grace period ends, then its container is destroyed.
    assert handle(state, events.TimerFired(("kill", FW, "c")), 4.0) == [
        DestroyContainer(containers["c"])
    ]
    effects = handle(state, events.ContainerExited(containers["c"], ContainerExit(signal=9)), 4.1)
    assert latest(state, "c").state == mesos_pb2.TASK_KILLED
    assert to_master(effects)[0].HasField("exited_executor")


def test_killing_one_task_kills_the_whole_group(make_agent: MakeAgent) -> None:
    state = make_agent()
    tasks = [task_info(t, command="sleep 9") for t in "abc"]
    tasks[1].kill_policy.grace_period.nanoseconds = 0  # 'b' is killed at once.
    effects = handle(
        state, from_master(run_task_group=run_group(tasks, capabilities=[KILLING])), 0.0
    )
    containers = {
        e.task_id: e.container_id
        for e in of_type(effects, LaunchContainer)
        if isinstance(e, LaunchContainer)
    }
    for container_id in containers.values():
        handle(state, events.ContainerLaunched(container_id), 0.1)
    for task_id in "abc":
        ack_all(state, task_id)
    policy = mesos_pb2.KillPolicy()
    policy.grace_period.nanoseconds = 1_000_000_000
    effects = handle(state, master_kill(FW, "a", policy), 1.0)
    assert states(effects) == dict.fromkeys("abc", mesos_pb2.TASK_KILLING)
    assert SignalContainer(containers["a"], signal.SIGTERM) in effects
    assert SetTimer(("kill", FW, "a"), 2.0) in effects  # The KILL's policy for 'a'...
    assert DestroyContainer(containers["b"]) in effects  # ...each task's own for the others.
    assert SetTimer(("kill", FW, "c"), 4.0) in effects
    assert handle(state, master_kill(FW, "c", None), 1.5) == []  # Being killed already.

    for task_id in "abc":
        ack_all(state, task_id)
    handle(state, events.ContainerExited(containers["a"], ContainerExit(signal=15)), 1.2)
    assert latest(state, "a").message == "Command terminated by signal 15 (TERM)"
    handle(state, events.ContainerExited(containers["b"], ContainerExit(signal=9)), 1.3)
    assert latest(state, "b").message == (
        "Killed with its task group because task 'a' was killed: Command terminated by signal 9"
        " (KILL)"
    )
    effects = handle(state, events.ContainerExited(containers["c"], ContainerExit(status=0)), 1.4)
    assert latest(state, "c").state == mesos_pb2.TASK_KILLED
    assert to_master(effects)[0].HasField("exited_executor")


def test_killing_a_task_while_its_group_launches(make_agent: MakeAgent) -> None:
    state = make_agent()
    specs = launch_group(state, ("a", "b"))
    a, b = specs["a"].container_id, specs["b"].container_id
    handle(state, events.ContainerLaunched(a), 0.1)
    effects = handle(state, master_kill(FW, "b", None), 0.2)
    # 'b' is asked at once too: a queued launch is cancelled, one in progress destroyed later.
    assert sorted(effects, key=str) == sorted([DestroyContainer(a), DestroyContainer(b)], key=str)
    assert handle(state, events.ContainerLaunched(b), 0.3) == [DestroyContainer(b)]
    handle(state, events.ContainerExited(a, ContainerExit(signal=9)), 0.4)
    handle(state, events.ContainerExited(b, ContainerExit(signal=9)), 0.5)
    for task_id in ("a", "b"):
        [status] = state.updates.get(FW, task_id).pending  # type: ignore[union-attr]
        assert status.state == mesos_pb2.TASK_KILLED
        assert status.reason == Reason.REASON_TASK_KILLED_DURING_LAUNCH


def test_health_checks_run_per_task_and_a_failing_one_kills_the_group(
    make_agent: MakeAgent,
) -> None:
    state = make_agent()
    tasks = [task_info("a", command="sleep 9"), task_info("b", command="sleep 9")]
    tasks[1].health_check.type = mesos_pb2.HealthCheck.TCP
    tasks[1].health_check.tcp.port = 9
    effects = handle(state, from_master(run_task_group=run_group(tasks)), 0.0)
    specs = {
        e.task_id: e for e in of_type(effects, LaunchContainer) if isinstance(e, LaunchContainer)
    }
    handle(state, events.ContainerLaunched(specs["a"].container_id), 0.1)
    effects = handle(state, events.ContainerLaunched(specs["b"].container_id), 0.1)
    [check] = of_type(effects, StartHealthCheck)
    run = state.executor(FW, "dex").container_id  # type: ignore[union-attr]
    assert check == StartHealthCheck(
        FW, "b", specs["b"].container_id, tasks[1].health_check, "dex", run
    )
    for task_id in ("a", "b"):
        ack_all(state, task_id)
    [unhealthy] = forwarded_statuses(handle(state, events.HealthChanged(FW, "b", False), 1.0))
    assert (unhealthy.state, unhealthy.healthy) == (mesos_pb2.TASK_RUNNING, False)
    assert unhealthy.container_status.container_id.value == specs["b"].container_id
    ack_all(state, "b")
    effects = handle(state, events.HealthFailed(FW, "b"), 2.0)
    assert len(of_type(effects, SignalContainer)) == 2
    handle(state, events.ContainerExited(specs["b"].container_id, ContainerExit(signal=15)), 2.1)
    handle(state, events.ContainerExited(specs["a"].container_id, ContainerExit(signal=15)), 2.2)
    assert latest(state, "b").reason == Reason.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED
    assert latest(state, "a").message.startswith(
        "Killed with its task group because task 'b' failed its health checks"
    )


def test_max_completion_time_fails_the_task_and_kills_its_group(make_agent: MakeAgent) -> None:
    state = make_agent()
    tasks = [task_info("a", command="sleep 9"), task_info("b", command="sleep 9")]
    tasks[0].max_completion_time.nanoseconds = 5_000_000_000
    effects = handle(state, from_master(run_task_group=run_group(tasks)), 0.0)
    specs = {
        e.task_id: e for e in of_type(effects, LaunchContainer) if isinstance(e, LaunchContainer)
    }
    handle(state, events.ContainerLaunched(specs["a"].container_id), 1.0)
    effects = handle(state, events.ContainerLaunched(specs["b"].container_id), 1.0)
    assert SetTimer(("max-completion", FW, "a"), 6.0) in effects
    assert (
        len(
            of_type(
                handle(state, events.TimerFired(("max-completion", FW, "a")), 6.0), SignalContainer
            )
        )
        == 2
    )
    handle(state, events.ContainerExited(specs["a"].container_id, ContainerExit(signal=15)), 6.1)
    assert latest(state, "a").state == mesos_pb2.TASK_FAILED
    assert latest(state, "a").reason == Reason.REASON_MAX_COMPLETION_TIME_REACHED


def test_a_second_group_runs_in_the_same_executor_and_ends_on_its_own(
    make_agent: MakeAgent,
) -> None:
    state = make_agent()
    first = start_group(state, ("a", "b"))
    second = launch_group(state, ("x", "y"), "cpus:0.5;mem:64")
    assert sorted(second) == ["x", "y"]
    for spec in second.values():
        handle(state, events.ContainerLaunched(spec.container_id), 0.2)
    effects = handle(state, events.ContainerExited(first["a"], ContainerExit(status=1)), 1.0)
    assert of_type(effects, SignalContainer) == [SignalContainer(first["b"], signal.SIGTERM)]
    handle(state, events.ContainerExited(first["b"], ContainerExit(signal=15)), 1.1)
    executor = state.executor(FW, "dex")
    assert executor is not None
    assert executor.phase is ExecutorPhase.RUNNING  # 'x' and 'y' run on.
    assert executor.tasks["x"].state == mesos_pb2.TASK_RUNNING
    assert not executor.tasks["x"].kill_requested


def test_shutting_the_executor_down_kills_every_task(make_agent: MakeAgent) -> None:
    state = make_agent()
    containers = start_group(state, ("a", "b"))
    effects = handle(state, master_shutdown_executor(FW, "dex"), 1.0)
    assert len(of_type(effects, SignalContainer)) == 2
    refused = forwarded_statuses(
        handle(state, from_master(run_task_group=run_group([task_info("late")])), 1.1)
    )
    assert [(s.task_id.value, s.state) for s in refused] == [("late", mesos_pb2.TASK_LOST)]
    handle(state, events.ContainerExited(containers["a"], ContainerExit(signal=15)), 1.2)
    effects = handle(state, events.ContainerExited(containers["b"], ContainerExit(signal=15)), 1.3)
    assert latest(state, "b").message == "Command terminated by signal 15 (TERM)"
    assert to_master(effects)[0].HasField("exited_executor")


def test_a_framework_shutdown_forgets_the_group_without_updates(make_agent: MakeAgent) -> None:
    state = make_agent()
    specs = launch_group(state, ("a", "b"))
    handle(state, events.ContainerLaunched(specs["a"].container_id), 0.1)
    effects = handle(state, master_shutdown_framework(FW), 1.0)
    assert sorted(of_type(effects, DestroyContainer), key=str) == sorted(
        (DestroyContainer(specs[t].container_id) for t in ("a", "b")), key=str
    )
    assert handle(state, events.ContainerLaunched(specs["b"].container_id), 1.1) == [
        DestroyContainer(specs["b"].container_id)
    ]
    handle(state, events.ContainerExited(specs["a"].container_id, ContainerExit(signal=9)), 1.2)
    effects = handle(
        state, events.ContainerExited(specs["b"].container_id, ContainerExit(signal=9)), 1.3
    )
    assert forwarded(effects) == []
    assert to_master(effects) == []
    assert state.frameworks == {}
    assert list(state.updates) == []


def test_stopping_the_agent_ends_groups_that_cannot_be_recovered(make_agent: MakeAgent) -> None:
    state = make_agent()
    containers = start_group(state, ("a", "b"))
    effects = handle(state, events.AgentStopping(kill_all=False), 2.0)
    assert sorted(of_type(effects, DestroyContainer), key=str) == sorted(
        (DestroyContainer(c) for c in containers.values()), key=str
    )
    handle(state, events.ContainerExited(containers["a"], ContainerExit(signal=9)), 2.1)
    lost = latest(state, "a")
    assert (lost.state, lost.reason) == (mesos_pb2.TASK_LOST, Reason.REASON_AGENT_RESTARTED)
    assert (
        of_type(
            handle(state, events.ContainerExited(containers["b"], ContainerExit(signal=9)), 2.2),
            SignalContainer,
        )
        == []
    )


def test_the_default_executor_is_reported_on_reregistration(make_agent: MakeAgent) -> None:
    state = make_agent()
    start_group(state, ("a", "b"))
    reregister = reregister_message(state, "boot", "0.1").reregister_agent
    [info] = reregister.executor_infos
    assert (info.executor_id.value, info.type) == ("dex", mesos_pb2.ExecutorInfo.DEFAULT)
    assert {t.executor_id.value for t in reregister.tasks} == {"dex"}


def test_the_agent_plays_it_so_no_executor_may_subscribe_as_it(make_agent: MakeAgent) -> None:
    state = make_agent()
    start_group(state, ("a",))
    with pytest.raises(InvalidCall, match="'dex' is the default executor the agent runs itself"):
        handle(state, events.ExecutorSubscribed(FW, "dex", subscribe_call([], [])), 1.0)


def test_a_checkpointing_group_records_each_task_container_and_its_group(
    make_agent: MakeAgent,
) -> None:
    state = make_agent()
    tasks = [task_info("a"), task_info("b")]
    effects = handle(state, from_master(run_task_group=run_group(tasks, checkpoint=True)), 0.0)
    [executor] = of_type(effects, CheckpointExecutor)
    checkpointed = [e for e in of_type(effects, CheckpointTask) if isinstance(e, CheckpointTask)]
    launches = {
        e.task_id: e for e in of_type(effects, LaunchContainer) if isinstance(e, LaunchContainer)
    }
    assert [(c.info.task_id.value, c.group) for c in checkpointed] == [
        ("a", ("a", "b")),
        ("b", ("a", "b")),
    ]
    for record in checkpointed:
        assert record.container_id == executor.container_id  # type: ignore[union-attr]
        assert record.nested_container_id == launches[record.info.task_id.value].container_id
    # The checkpoint comes before the launches that depend on it.
    assert effects.index(checkpointed[-1]) < min(effects.index(e) for e in launches.values())


@pytest.mark.parametrize(
    ("executor", "message"),
    [
        (
            "command",
            "executor.command must not be set for a DEFAULT executor: the agent runs the default"
            " executor itself (use type CUSTOM to run your own executor)",
        ),
        (
            "no-task-command",
            "task_group.tasks[1].command must be set: the default executor runs each task's"
            " command in a container of its own",
        ),
    ],
)
def test_malformed_default_executor_groups_are_refused(
    make_agent: MakeAgent, executor: str, message: str
) -> None:
    state = make_agent()
    info = default_executor_info()
    tasks = [task_info("a"), task_info("b")]
    if executor == "command":
        info.command.value = "my-executor"
    else:
        tasks[1].ClearField("command")
    effects = handle(state, from_master(run_task_group=run_group(tasks, executor=info)), 0.0)
    statuses = forwarded_statuses(effects)
    assert [(s.task_id.value, s.state) for s in statuses] == [
        ("a", mesos_pb2.TASK_ERROR),
        ("b", mesos_pb2.TASK_ERROR),
    ]
    assert {s.reason for s in statuses} == {Reason.REASON_TASK_GROUP_INVALID}
    assert {s.message for s in statuses} == {message}
    assert of_type(effects, LaunchContainer) == []
    assert state.allocated() == Resources.EMPTY


def test_a_single_task_cannot_use_the_default_executor(make_agent: MakeAgent) -> None:
    state = make_agent()
    run = run_task(task_info("a", command=None), executor=default_executor_info())
    [status] = forwarded_statuses(handle(state, from_master(run_task=run), 0.0))
    assert status.message == (
        "a task with a DEFAULT executor must be launched in a task group (LAUNCH_GROUP)"
    )


def test_a_custom_executor_still_gets_its_task_groups(make_agent: MakeAgent) -> None:
    state = make_agent()
    tasks = [task_info("a", command=None), task_info("b", command=None)]
    effects = handle(
        state, from_master(run_task_group=run_group(tasks, executor=executor_info())), 0.0
    )
    [spec] = of_type(effects, LaunchContainer)
    assert isinstance(spec, LaunchContainer)
    assert (spec.task_id, spec.parent_container_id) == (None, None)
    assert state.executor(FW, "ex").kind is ExecutorKind.CUSTOM  # type: ignore[union-attr]
