"""The agent core playing the command executor: launch, exit, kill, health, checkpoint effects."""

from __future__ import annotations

import signal

from agent.core import AgentState, ContainerExit, events, handle
from agent.core.effects import (
    AppendUpdateRecord,
    CheckpointExecutor,
    CheckpointFramework,
    CheckpointTask,
    DestroyContainer,
    ForwardUpdate,
    LaunchContainer,
    RemoveExecutorCheckpoint,
    RemoveFrameworkCheckpoint,
    ScheduleSandboxGC,
    SetTimer,
    SignalContainer,
    StartHealthCheck,
    StopHealthCheck,
)
from protos.v1 import mesos_pb2
from tests.unit.agent.conftest import MakeAgent
from tests.unit.agent.helpers import (
    FW,
    ack_all,
    ack_head,
    forwarded,
    forwarded_statuses,
    from_master,
    master_kill,
    master_reregistered,
    of_type,
    run_task,
    task_info,
)

Reason = mesos_pb2.TaskStatus


def launch(state: AgentState, task_id: str = "t1", **kwargs: object) -> LaunchContainer:
    effects = handle(state, from_master(run_task=run_task(task_info(task_id), **kwargs)), 0.0)  # type: ignore[arg-type]
    [launch] = of_type(effects, LaunchContainer)
    assert isinstance(launch, LaunchContainer)
    return launch


def test_a_command_task_runs_finishes_and_is_retired(make_agent: MakeAgent) -> None:
    state = make_agent()
    spec = launch(state)
    assert (spec.executor_id, spec.task_id, spec.command.value) == ("t1", "t1", "true")
    assert str(spec.resources) == "cpus:1;mem:128"
    assert state.allocated() == spec.resources

    effects = handle(state, events.ContainerLaunched(spec.container_id), 0.1)
    assert forwarded(effects) == [("t1", mesos_pb2.TASK_RUNNING)]
    [running] = forwarded_statuses(effects)
    assert running.source == Reason.SOURCE_EXECUTOR
    assert running.agent_id.value == "agent-1"
    assert running.container_status.container_id.value == spec.container_id

    effects = handle(state, events.ContainerExited(spec.container_id, ContainerExit(status=0)), 1.0)
    assert forwarded(effects) == []  # RUNNING is still in flight.
    effects = ack_head(state, "t1")
    [finished] = forwarded_statuses(effects)
    assert (finished.state, finished.message) == (
        mesos_pb2.TASK_FINISHED,
        "Command exited with status 0",
    )
    effects = ack_head(state, "t1")
    assert ScheduleSandboxGC(FW, "t1", spec.container_id) in effects
    assert state.frameworks == {}
    assert state.allocated() == state.total - state.total


def test_a_failing_command_fails_with_its_exit_status(make_agent: MakeAgent) -> None:
    state = make_agent()
    spec = launch(state)
    handle(state, events.ContainerLaunched(spec.container_id), 0.1)
    ack_all(state, "t1")
    effects = handle(state, events.ContainerExited(spec.container_id, ContainerExit(status=3)), 1.0)
    [failed] = forwarded_statuses(effects)
    assert failed.state == mesos_pb2.TASK_FAILED
    assert failed.message == "Command exited with status 3"
    assert not failed.HasField("reason")


def test_a_command_killed_by_a_signal_fails_naming_it(make_agent: MakeAgent) -> None:
    state = make_agent()
    spec = launch(state)
    handle(state, events.ContainerLaunched(spec.container_id), 0.1)
    ack_all(state, "t1")
    effects = handle(
        state, events.ContainerExited(spec.container_id, ContainerExit(signal=11)), 1.0
    )
    [failed] = forwarded_statuses(effects)
    assert failed.message == "Command terminated by signal 11 (SEGV)"


def test_an_oom_kill_fails_with_the_memory_reason(make_agent: MakeAgent) -> None:
    state = make_agent()
    spec = launch(state)
    handle(state, events.ContainerLaunched(spec.container_id), 0.1)
    ack_all(state, "t1")
    exit = ContainerExit(signal=9, oom_killed=True, message="memory limit 128 MB")
    [failed] = forwarded_statuses(
        handle(state, events.ContainerExited(spec.container_id, exit), 1.0)
    )
    assert failed.state == mesos_pb2.TASK_FAILED
    assert failed.reason == Reason.REASON_CONTAINER_LIMITATION_MEMORY
    assert "memory limit 128 MB" in failed.message


def test_kill_terms_then_kills_after_the_grace_period(make_agent: MakeAgent) -> None:
    state = make_agent()
    spec = launch(state)
    handle(state, events.ContainerLaunched(spec.container_id), 0.1)
    ack_all(state, "t1")
    effects = handle(state, master_kill(FW, "t1", None), 5.0)
    assert effects == [
        SignalContainer(spec.container_id, signal.SIGTERM),
        SetTimer(("kill", FW, "t1"), 8.0),  # The default grace period is 3 s.
    ]
    assert handle(state, master_kill(FW, "t1", None), 6.0) == []  # A second kill changes nothing.
    assert handle(state, events.TimerFired(("kill", FW, "t1")), 8.0) == [
        DestroyContainer(spec.container_id)
    ]
    effects = handle(state, events.ContainerExited(spec.container_id, ContainerExit(signal=9)), 8.1)
    [killed] = forwarded_statuses(effects)
    assert killed.state == mesos_pb2.TASK_KILLED
    assert StopHealthCheck(FW, "t1") in effects


def test_the_kill_policy_of_the_kill_beats_the_tasks(make_agent: MakeAgent) -> None:
    state = make_agent()
    task = task_info("t1")
    task.kill_policy.grace_period.nanoseconds = 10_000_000_000
    [spec] = of_type(handle(state, from_master(run_task=run_task(task)), 0.0), LaunchContainer)
    assert isinstance(spec, LaunchContainer)
    handle(state, events.ContainerLaunched(spec.container_id), 0.1)
    policy = mesos_pb2.KillPolicy()
    policy.grace_period.nanoseconds = 500_000_000
    effects = handle(state, master_kill(FW, "t1", policy), 1.0)
    assert SetTimer(("kill", FW, "t1"), 1.5) in effects


def test_the_task_kill_policy_beats_the_default(make_agent: MakeAgent) -> None:
    state = make_agent()
    task = task_info("t1")
    task.kill_policy.grace_period.nanoseconds = 0
    [spec] = of_type(handle(state, from_master(run_task=run_task(task)), 0.0), LaunchContainer)
    assert isinstance(spec, LaunchContainer)
    handle(state, events.ContainerLaunched(spec.container_id), 0.1)
    assert handle(state, master_kill(FW, "t1", None), 1.0) == [DestroyContainer(spec.container_id)]


def test_task_killing_is_sent_to_frameworks_that_asked_for_it(make_agent: MakeAgent) -> None:
    state = make_agent()
    capability = mesos_pb2.FrameworkInfo.Capability.TASK_KILLING_STATE
    spec = launch(state, capabilities=[capability])
    handle(state, events.ContainerLaunched(spec.container_id), 0.1)
    ack_all(state, "t1")
    assert forwarded(handle(state, master_kill(FW, "t1", None), 1.0)) == [
        ("t1", mesos_pb2.TASK_KILLING)
    ]


def test_a_kill_during_launch_destroys_it_once_launched(make_agent: MakeAgent) -> None:
    state = make_agent()
    spec = launch(state)
    # Asked at once: a launch still queued is cancelled by it (see the next test).
    assert handle(state, master_kill(FW, "t1", None), 0.1) == [DestroyContainer(spec.container_id)]
    assert handle(state, events.ContainerLaunched(spec.container_id), 0.2) == [
        DestroyContainer(spec.container_id)
    ]
    [killed] = forwarded_statuses(
        handle(state, events.ContainerExited(spec.container_id, ContainerExit(signal=9)), 0.3)
    )
    assert killed.state == mesos_pb2.TASK_KILLED
    assert killed.reason == Reason.REASON_TASK_KILLED_DURING_LAUNCH


def test_a_kill_that_cancels_a_queued_launch_reports_the_task_killed(
    make_agent: MakeAgent,
) -> None:
    state = make_agent()
    spec = launch(state)
    handle(state, master_kill(FW, "t1", None), 0.1)
    # The runtime's launch queue cancelled it: reported as a failed launch.
    effects = handle(
        state, events.ContainerLaunchFailed(spec.container_id, "cancelled before creation"), 0.2
    )
    [killed] = forwarded_statuses(effects)
    assert killed.state == mesos_pb2.TASK_KILLED
    assert killed.reason == Reason.REASON_TASK_KILLED_DURING_LAUNCH


def test_a_launch_failure_fails_the_task(make_agent: MakeAgent) -> None:
    state = make_agent()
    spec = launch(state)
    effects = handle(
        state, events.ContainerLaunchFailed(spec.container_id, "fetch of http://x/y failed"), 0.2
    )
    [failed] = forwarded_statuses(effects)
    assert failed.state == mesos_pb2.TASK_FAILED
    assert failed.reason == Reason.REASON_CONTAINER_LAUNCH_FAILED
    assert "fetch of http://x/y failed" in failed.message
    ack_all(state, "t1")
    assert state.frameworks == {}


def test_uris_make_the_task_starting_before_the_fetch(make_agent: MakeAgent) -> None:
    state = make_agent()
    task = task_info("t1")
    task.command.uris.add(value="http://example.com/a.tgz")
    assert forwarded(handle(state, from_master(run_task=run_task(task)), 0.0)) == [
        ("t1", mesos_pb2.TASK_STARTING)
    ]


def test_checkpointing_frameworks_write_before_they_launch(make_agent: MakeAgent) -> None:
    state = make_agent()
    effects = handle(state, from_master(run_task=run_task(task_info("t1"), checkpoint=True)), 0.0)
    kinds = [type(e) for e in effects]
    assert kinds == [CheckpointFramework, CheckpointExecutor, CheckpointTask, LaunchContainer]
    [spec] = of_type(effects, LaunchContainer)
    assert isinstance(spec, LaunchContainer)
    assert spec.checkpoint
    effects = handle(state, events.ContainerLaunched(spec.container_id), 0.1)
    assert [type(e) for e in effects[:2]] == [AppendUpdateRecord, ForwardUpdate]
    handle(state, events.ContainerExited(spec.container_id, ContainerExit(status=0)), 1.0)
    effects = ack_all(state, "t1")
    assert RemoveExecutorCheckpoint(FW, "t1") in effects
    assert RemoveFrameworkCheckpoint(FW) in effects


def test_health_changes_and_failures(make_agent: MakeAgent) -> None:
    state = make_agent()
    task = task_info("t1")
    task.health_check.type = mesos_pb2.HealthCheck.TCP
    task.health_check.tcp.port = 8080
    [spec] = of_type(handle(state, from_master(run_task=run_task(task)), 0.0), LaunchContainer)
    assert isinstance(spec, LaunchContainer)
    effects = handle(state, events.ContainerLaunched(spec.container_id), 0.1)
    assert StartHealthCheck(FW, "t1", spec.container_id, task.health_check) in effects
    ack_all(state, "t1")
    [healthy] = forwarded_statuses(handle(state, events.HealthChanged(FW, "t1", True), 1.0))
    assert (healthy.state, healthy.healthy) == (mesos_pb2.TASK_RUNNING, True)
    assert healthy.reason == Reason.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED
    ack_all(state, "t1")
    effects = handle(state, events.HealthFailed(FW, "t1"), 2.0)
    assert SignalContainer(spec.container_id, signal.SIGTERM) in effects
    [killed] = forwarded_statuses(
        handle(state, events.ContainerExited(spec.container_id, ContainerExit(signal=15)), 3.0)
    )
    assert killed.state == mesos_pb2.TASK_KILLED
    assert killed.reason == Reason.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED


def test_max_completion_time_kills_and_fails(make_agent: MakeAgent) -> None:
    state = make_agent()
    task = task_info("t1")
    task.max_completion_time.nanoseconds = 2_000_000_000
    [spec] = of_type(handle(state, from_master(run_task=run_task(task)), 0.0), LaunchContainer)
    assert isinstance(spec, LaunchContainer)
    effects = handle(state, events.ContainerLaunched(spec.container_id), 1.0)
    assert SetTimer(("max-completion", FW, "t1"), 3.0) in effects
    ack_all(state, "t1")
    assert SignalContainer(spec.container_id, signal.SIGTERM) in handle(
        state, events.TimerFired(("max-completion", FW, "t1")), 3.0
    )
    [failed] = forwarded_statuses(
        handle(state, events.ContainerExited(spec.container_id, ContainerExit(signal=15)), 3.5)
    )
    assert failed.reason == Reason.REASON_MAX_COMPLETION_TIME_REACHED


def test_updates_wait_for_the_master_and_go_out_on_reregistration(make_agent: MakeAgent) -> None:
    state = make_agent()
    spec = launch(state)
    handle(state, events.Disconnected(), 0.0)
    assert forwarded(handle(state, events.ContainerLaunched(spec.container_id), 0.1)) == []
    assert forwarded(handle(state, master_reregistered(), 5.0)) == [("t1", mesos_pb2.TASK_RUNNING)]


def test_stopping_the_agent_ends_only_what_cannot_be_recovered(make_agent: MakeAgent) -> None:
    state = make_agent()
    kept = launch(state, "kept", checkpoint=True)
    other = run_task(task_info("lost"))
    other.framework_id.value = other.framework_info.id.value = "fw-2"
    [lost] = of_type(handle(state, from_master(run_task=other), 0.0), LaunchContainer)
    assert isinstance(lost, LaunchContainer)
    handle(state, events.ContainerLaunched(kept.container_id), 0.1)
    handle(state, events.ContainerLaunched(lost.container_id), 0.1)
    assert handle(state, events.AgentStopping(kill_all=False), 5.0) == [
        DestroyContainer(lost.container_id)
    ]
    effects = handle(state, events.ContainerExited(lost.container_id, ContainerExit(signal=9)), 1.0)
    stream = state.updates.get("fw-2", "lost")
    assert stream is not None
    status = stream.pending[-1]
    assert status.state == mesos_pb2.TASK_LOST
    assert status.reason == Reason.REASON_AGENT_RESTARTED
    assert forwarded(effects) == []  # Its RUNNING is still unacknowledged.
