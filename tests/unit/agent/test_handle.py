"""The core's one entry point: typed events in through ``handle``, effects out.

Master messages go in whole and are decoded by the core; a checkpointing agent crashes and is
rebuilt from the in-memory twin of its checkpoint store; a fault inside one handler is
contained: the launch it broke ends TASK_FAILED and the agent keeps serving the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import get_args

import pytest

from agent.checkpoint import CheckpointStore, MemoryCheckpointStore, apply_checkpoint_effect
from agent.checkpoint.apply import CheckpointWriter
from agent.core import (
    AgentState,
    ContainerExit,
    InvalidCall,
    NotAllowedNow,
    RecoveredAgent,
    UnknownTarget,
    events,
    executor_events,
    handle,
    hello_message,
    launches,
)
from agent.core.effects import (
    CheckpointAgent,
    CheckpointContainerState,
    DestroyContainer,
    Effect,
    LaunchContainer,
    LookForContainer,
    RemoveExecutorCheckpoint,
    RemoveFrameworkCheckpoint,
    ScheduleSandboxGC,
    StopAgent,
)
from agent.core.model import ExecutorRecord, FrameworkRecord
from protos.resources import Resources
from protos.v1 import agent_internal_pb2, executor_pb2, mesos_pb2
from tests.unit.agent.conftest import MakeAgent
from tests.unit.agent.helpers import (
    FW,
    ack_head,
    executor_info,
    forwarded,
    forwarded_statuses,
    framework_info,
    of_type,
    run_group,
    run_task,
    task_info,
    to_master,
)

Reason = mesos_pb2.TaskStatus


def master(**payload: object) -> events.MasterMessageReceived:
    """A MasterMessageReceived with one payload field set, e.g. ``master(run_task=run)``."""
    message = agent_internal_pb2.MasterMessage()
    [(name, value)] = payload.items()
    getattr(message, name).CopyFrom(value)
    return events.MasterMessageReceived(message)


def registered(agent_id: str = "agent-1") -> events.MasterMessageReceived:
    reply = agent_internal_pb2.AgentRegistered()
    reply.agent_id.value = agent_id
    return master(agent_registered=reply)


def ack(status: mesos_pb2.TaskStatus) -> events.MasterMessageReceived:
    message = agent_internal_pb2.StatusUpdateAcknowledgement(uuid=status.uuid)
    message.framework_id.value = FW
    message.task_id.value = status.task_id.value
    return master(status_update_acknowledgement=message)


def feed(
    state: AgentState, event: events.Event, now: float, store: CheckpointWriter | None = None
) -> list[Effect]:
    """``handle`` the event, carry its checkpoint effects out on ``store``, validate."""
    effects = handle(state, event, now)
    if store is not None:
        for effect in effects:
            apply_checkpoint_effect(store, effect)
    state.validate()
    return effects


def test_registration_is_decoded_by_the_core_and_checkpointed(make_agent: MakeAgent) -> None:
    state = make_agent(registered=False)
    assert hello_message(state, "boot", "0.1").HasField("register_agent")
    effects = feed(state, registered(), 1.0)
    assert effects[0] == CheckpointAgent(state.agent_info)
    assert effects[0].info.id.value == "agent-1"
    assert state.connected
    assert hello_message(state, "boot", "0.1").HasField("reregister_agent")
    assert feed(state, events.Disconnected(), 2.0) == []
    assert not state.connected


def test_shutdown_agent_and_unknown_messages(make_agent: MakeAgent) -> None:
    state = make_agent()
    shutdown = agent_internal_pb2.ShutdownAgent(message="drained")
    assert feed(state, master(shutdown_agent=shutdown), 1.0) == [StopAgent("drained")]
    assert feed(state, events.MasterMessageReceived(agent_internal_pb2.MasterMessage()), 1.0) == []


def test_a_checkpointed_agent_crashes_and_recovers_from_the_memory_store(
    make_agent: MakeAgent,
) -> None:
    store = MemoryCheckpointStore()
    store.write_boot_id("boot")
    state = make_agent(registered=False)
    feed(state, registered(), 0.0, store)
    effects = feed(state, master(run_task=run_task(task_info("t1"), checkpoint=True)), 0.1, store)
    [launch] = of_type(effects, LaunchContainer)
    assert isinstance(launch, LaunchContainer)
    effects = feed(state, events.ContainerLaunched(launch.container_id, {"pid": 7}), 0.2, store)
    assert effects[0] == CheckpointContainerState(FW, "t1", launch.container_id, None, {"pid": 7})
    [running] = forwarded_statuses(effects)
    feed(state, ack(running), 0.3, store)

    # The agent dies; a new core is rebuilt from what was "written".
    checkpoint = store.read()
    assert checkpoint.boot_id == "boot"
    assert checkpoint.agent is not None
    restarted = make_agent(registered=False)
    later_uuids = iter(range(1000, 2000))  # A restarted agent must never reuse a uuid.
    restarted.new_uuid = lambda: next(later_uuids).to_bytes(16, "big")
    effects = feed(restarted, events.RecoverFromCheckpoint(checkpoint.agent), 1.0)
    assert effects == [LookForContainer(launch.container_id, {"pid": 7})]
    assert feed(restarted, events.ContainerRecovered(launch.container_id), 1.1) == []
    assert feed(restarted, events.RecoveryDone(), 1.1) == []
    reregister = hello_message(restarted, "boot", "0.1").reregister_agent
    assert [t.task_id.value for t in reregister.tasks] == ["t1"]
    assert reregister.tasks[0].state == mesos_pb2.TASK_RUNNING

    # The task ends after the restart; its update is acknowledged; everything is forgotten.
    reply = agent_internal_pb2.AgentReregistered()
    reply.agent_id.value = "agent-1"
    feed(restarted, master(agent_reregistered=reply), 1.2, store)
    effects = feed(restarted, events.ContainerExited(launch.container_id, ContainerExit(0)), 2.0)
    for effect in effects:
        apply_checkpoint_effect(store, effect)
    [finished] = forwarded_statuses(effects)
    assert finished.state == mesos_pb2.TASK_FINISHED
    feed(restarted, ack(finished), 2.1, store)
    assert restarted.frameworks == {}
    agent = store.read().agent
    assert agent is not None
    assert agent.frameworks == []


def checkpoint_effects(store: CheckpointWriter) -> None:
    """Drive a core through launches of every kind, writing its checkpoint to ``store``."""
    counter = iter(range(1, 1000))
    state = AgentState(
        Resources.parse("cpus:8;mem:8192"),
        mesos_pb2.AgentInfo(hostname="h"),
        new_uuid=lambda: next(counter).to_bytes(16, "big"),
        new_container_id=lambda: f"c{next(counter)}",
    )
    feed(state, registered(), 0.0, store)
    launches: Sequence[events.Event] = [
        master(run_task=run_task(task_info("cmd"), checkpoint=True)),
        master(run_task=run_task(task_info("a", command=None), True, executor_info())),
        master(run_task_group=run_group([task_info("g1"), task_info("g2")], checkpoint=True)),
    ]
    for event in launches:
        for launch in of_type(feed(state, event, 0.1, store), LaunchContainer):
            assert isinstance(launch, LaunchContainer)
            feed(state, events.ContainerLaunched(launch.container_id, {"id": 1}), 0.2, store)


def test_the_memory_store_reads_back_what_the_file_store_does(tmp_path: Path) -> None:
    files, memory = CheckpointStore(tmp_path), MemoryCheckpointStore()
    for store in (files, memory):
        store.write_boot_id("boot")
        checkpoint_effects(store)
    from_files, from_memory = files.read(), memory.read()
    assert from_files.agent is not None
    assert [len(f.executors) for f in from_files.agent.frameworks] == [3]
    assert from_memory == from_files
    assert from_memory.agent is not None
    # Removals and a new run of an executor read back the same way too.
    framework = from_memory.agent.frameworks[0]
    executors = [e.executor_id for e in framework.executors]
    info = framework.executors[-1].info
    for store in (files, memory):
        store.remove_executor(framework.framework_id, executors[0])
        store.write_executor(framework.framework_id, executors[-1], "run-2", info)
    assert memory.read() == files.read()
    for store in (files, memory):
        store.remove_framework(framework.framework_id)
    assert memory.read() == files.read()
    for store in (files, memory):
        store.clear_agents()
    assert memory.read() == files.read()
    assert memory.read().agent is None


def test_the_memory_store_refuses_names_a_file_system_could_not_hold() -> None:
    store = MemoryCheckpointStore()
    info = mesos_pb2.AgentInfo(hostname="h")
    info.id.value = "agent-1"
    store.write_agent(info)
    with pytest.raises(OSError, match="task id is 300 bytes"):
        store.write_task(FW, "ex", "c1", task_info("x" * 300))
    with pytest.raises(ValueError, match="cannot be used as a directory name"):
        store.write_framework("..", framework_info())


def test_a_fault_in_a_launch_handler_ends_that_launch_and_spares_the_rest(
    make_agent: MakeAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = make_agent()
    good = feed(state, master(run_task=run_task(task_info("good"))), 0.0)
    [good_launch] = of_type(good, LaunchContainer)
    assert isinstance(good_launch, LaunchContainer)

    original = launches._launch

    def faulty(
        state: AgentState, framework: FrameworkRecord, executor: ExecutorRecord, now: float
    ) -> list[Effect]:
        if executor.executor_id == "bad":
            raise RuntimeError("injected fault")
        return original(state, framework, executor, now)

    monkeypatch.setattr(launches, "_launch", faulty)
    effects = feed(state, master(run_task=run_task(task_info("bad"))), 1.0)
    [failed] = forwarded_statuses(effects)
    assert failed.state == mesos_pb2.TASK_FAILED
    assert failed.reason == Reason.REASON_CONTAINER_LAUNCH_FAILED
    assert "RuntimeError: injected fault" in failed.message
    assert state.faults == 1
    assert state.last_fault is not None
    assert state.last_fault.startswith("RuntimeError: injected fault (handling Master")
    assert of_type(effects, LaunchContainer) == []
    assert state.executor(FW, "bad") is None  # Nothing of it is left, nothing counted.
    assert str(state.allocated()) == "cpus:1;mem:128"
    feed(state, ack(failed), 1.1)
    assert state.updates.get(FW, "bad") is None

    # The agent goes on serving: the running task, and new launches.
    effects = feed(state, events.ContainerLaunched(good_launch.container_id), 2.0)
    assert forwarded(effects) == [("good", mesos_pb2.TASK_RUNNING)]
    later = feed(state, master(run_task=run_task(task_info("later"))), 3.0)
    assert len(of_type(later, LaunchContainer)) == 1
    state.faults = 0  # The injected one, seen.


def test_a_fault_outside_a_launch_is_logged_and_changes_nothing_else(
    make_agent: MakeAgent, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    state = make_agent()

    def faulty(*args: object) -> list[Effect]:
        raise KeyError("injected")

    monkeypatch.setattr(executor_events, "executor_disconnected", faulty)
    assert handle(state, events.ExecutorDisconnected(FW, "x" * 5000), 1.0) == []
    [record] = [r for r in caplog.records if "failed to handle" in r.getMessage()]
    assert "ExecutorDisconnected" in record.getMessage()
    assert len(record.getMessage()) < 1000  # The event is named, not dumped.
    assert state.faults == 1
    state.faults = 0  # The injected one, seen.


def test_a_task_id_longer_than_a_file_name_is_refused(make_agent: MakeAgent) -> None:
    state = make_agent()
    effects = feed(state, master(run_task=run_task(task_info("x" * 256))), 1.0)
    [error] = forwarded_statuses(effects)
    assert error.state == mesos_pb2.TASK_ERROR
    assert error.reason == Reason.REASON_TASK_INVALID
    assert "256 bytes" in error.message
    assert "255" in error.message
    assert of_type(effects, LaunchContainer) == []
    assert state.frameworks == {}


def shutdown(framework_id: str = FW) -> events.MasterMessageReceived:
    message = agent_internal_pb2.ShutdownFramework()
    message.framework_id.value = framework_id
    return master(shutdown_framework=message)


def test_a_torn_down_framework_is_forgotten_with_its_ended_executors(
    make_agent: MakeAgent,
) -> None:
    """Issue 10: terminated executors of torn-down frameworks stayed in the agent for ever."""
    state = make_agent()
    run = run_task(task_info("done"), checkpoint=True)
    [done] = of_type(feed(state, master(run_task=run), 0.0), LaunchContainer)
    assert isinstance(done, LaunchContainer)
    feed(state, events.ContainerLaunched(done.container_id), 0.1)
    feed(state, events.ContainerExited(done.container_id, ContainerExit(status=0)), 0.2)
    # Its updates are never acknowledged (the framework is being torn down): the executor
    # has ended, and holds only a terminal task.
    custom = run_task(task_info("a", command=None), True, executor_info())
    [ex] = of_type(feed(state, master(run_task=custom), 0.3), LaunchContainer)
    assert isinstance(ex, LaunchContainer)
    feed(state, events.ContainerLaunched(ex.container_id), 0.4)

    effects = feed(state, shutdown(), 1.0)
    assert state.executor(FW, "done") is None  # Forgotten at once: nothing of it runs.
    assert RemoveExecutorCheckpoint(FW, "done") in effects
    assert ScheduleSandboxGC(FW, "done", done.container_id) in effects
    assert forwarded(effects) == []  # Nobody would acknowledge.
    assert of_type(effects, DestroyContainer) == [DestroyContainer(ex.container_id)]

    effects = feed(state, events.ContainerExited(ex.container_id, ContainerExit(signal=9)), 2.0)
    assert forwarded(effects) == []
    assert state.frameworks == {}
    assert RemoveFrameworkCheckpoint(FW) in effects
    assert list(state.updates) == []
    assert str(state.allocated()) == ""


def test_a_torn_down_framework_drops_the_ended_tasks_of_a_live_executor(
    make_agent: MakeAgent,
) -> None:
    state = make_agent()
    custom = run_task(task_info("a", command=None), False, executor_info())
    [ex] = of_type(feed(state, master(run_task=custom), 0.0), LaunchContainer)
    assert isinstance(ex, LaunchContainer)
    second = run_task(task_info("b", command=None), False, executor_info())
    feed(state, master(run_task=second), 0.0)
    feed(state, events.ContainerLaunched(ex.container_id), 0.1)
    feed(state, events.ExecutorSubscribed(FW, "ex", executor_pb2.Call.Subscribe()), 0.2)
    finished = mesos_pb2.TaskStatus(state=mesos_pb2.TASK_FINISHED, uuid=bytes(range(16)))
    finished.task_id.value = "a"
    feed(state, events.ExecutorUpdate(FW, "ex", finished), 0.3)

    feed(state, shutdown(), 1.0)  # validate(): no terminal task is left without its stream
    executor = state.executor(FW, "ex")
    assert executor is not None
    assert sorted(executor.tasks) == ["b"]
    feed(state, events.ContainerExited(ex.container_id, ContainerExit(status=0)), 2.0)
    assert state.frameworks == {}


def test_every_event_kind_is_routed(make_agent: MakeAgent) -> None:
    """Each member of the Event union reaches a handler (an unrouted one would be a fault)."""
    state = make_agent()
    samples: list[events.Event] = [
        registered(),
        events.Disconnected(),
        events.ContainerLaunched("nobody's"),
        events.ContainerLaunchFailed("nobody's", "no such thing"),
        events.ContainerExited("nobody's", ContainerExit(status=0)),
        events.ContainerRecovered("nobody's"),
        events.ContainerNeverStarted("nobody's", "never ran"),
        events.ExecutorDisconnected(FW, "ex"),
        events.HealthChanged(FW, "t", healthy=False),
        events.HealthFailed(FW, "t"),
        events.TimerFired(("kill", FW, "t")),
        events.RecoveryDone(),
        events.AgentStopping(kill_all=False),
        events.AgentStopping(kill_all=True),
    ]
    refused: list[events.Event] = [
        events.ExecutorSubscribed(FW, "ex", executor_pb2.Call.Subscribe()),
        events.ExecutorUpdate(FW, "ex", mesos_pb2.TaskStatus()),
        events.ExecutorMessage(FW, "ex", b"hi"),
    ]
    kinds = {type(e) for e in [*samples, *refused]}
    fresh = make_agent(registered=False)
    recovered = events.RecoverFromCheckpoint(RecoveredAgent(mesos_pb2.AgentInfo(hostname="h")))
    kinds.add(type(recovered))
    assert kinds == set(get_args(events.Event))
    for event in samples:
        feed(state, event, 1.0)
    for event in refused:
        with pytest.raises((InvalidCall, UnknownTarget)):
            handle(state, event, 1.0)
    assert feed(fresh, recovered, 1.0) == []
    assert state.faults == 0


def test_the_core_exports_its_contract() -> None:
    import agent.core

    assert set(agent.core.__all__) >= {
        "AgentState",
        "CoreSettings",
        "InvalidCall",
        "NotAllowedNow",
        "UnknownTarget",
        "events",
        "handle",
        "hello_message",
    }
    assert {name for name in agent.core.__all__ if not hasattr(agent.core, name)} == set()


def test_a_fault_handling_a_container_exit_still_ends_its_task(
    make_agent: MakeAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = make_agent()
    [launch] = of_type(
        feed(state, master(run_task=run_task(task_info("t1"))), 0.0), LaunchContainer
    )
    assert isinstance(launch, LaunchContainer)
    feed(state, events.ContainerLaunched(launch.container_id), 0.1)
    ack_head(state, "t1")  # TASK_RUNNING

    def faulty(*args: object, **kwargs: object) -> list[Effect]:
        raise ValueError("injected")

    monkeypatch.setattr(executor_events, "_command_task_ended", faulty)
    effects = feed(state, events.ContainerExited(launch.container_id, ContainerExit(status=0)), 1.0)
    [failed] = forwarded_statuses(effects)
    assert failed.state == mesos_pb2.TASK_FAILED
    assert failed.reason == Reason.REASON_EXECUTOR_TERMINATED
    assert "ValueError: injected" in failed.message
    feed(state, ack(failed), 1.1)
    assert state.frameworks == {}  # Retired: nothing left counted.
    assert state.faults == 1
    state.faults = 0  # The injected one, seen.


def test_a_fault_handling_a_group_task_exit_ends_that_task(
    make_agent: MakeAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = make_agent()
    group = run_group([task_info("g1"), task_info("g2")])
    launches_ = of_type(feed(state, master(run_task_group=group), 0.0), LaunchContainer)
    for launch in launches_:
        assert isinstance(launch, LaunchContainer)
        feed(state, events.ContainerLaunched(launch.container_id), 0.1)
    first = launches_[0]
    assert isinstance(first, LaunchContainer)

    def faulty(*args: object, **kwargs: object) -> list[Effect]:
        raise ValueError("injected")

    monkeypatch.setattr(executor_events, "nested_exited", faulty)
    effects = feed(state, events.ContainerExited(first.container_id, ContainerExit(status=0)), 1.0)
    assert [(s.task_id.value, s.state) for s in forwarded_statuses(effects)] == []  # Queued
    stream = state.updates.get(FW, "g1")
    assert stream is not None
    assert stream.latest_state == mesos_pb2.TASK_FAILED
    assert first.container_id not in state.containers
    state.faults = 0  # The injected one, seen.


# -- found by the property test (test_agent_properties.py) --


def test_an_update_for_a_task_not_yet_given_to_the_executor_is_refused(
    make_agent: MakeAgent,
) -> None:
    state = make_agent()
    custom = run_task(task_info("queued", command=None), False, executor_info())
    [ex] = of_type(feed(state, master(run_task=custom), 0.0), LaunchContainer)
    assert isinstance(ex, LaunchContainer)
    feed(state, shutdown(), 0.5)  # The executor is being shut down: the task stays queued.
    feed(state, events.ExecutorSubscribed(FW, "ex", executor_pb2.Call.Subscribe()), 1.0)
    update = mesos_pb2.TaskStatus(state=mesos_pb2.TASK_FINISHED, uuid=bytes(range(16)))
    update.task_id.value = "queued"
    with pytest.raises(NotAllowedNow, match="has not been given to executor 'ex' yet"):
        handle(state, events.ExecutorUpdate(FW, "ex", update), 1.1)
    state.validate()


def test_a_group_repeating_an_id_in_use_is_refused_once_per_id(make_agent: MakeAgent) -> None:
    state = make_agent()
    feed(state, master(run_task=run_task(task_info("t1"))), 0.0)
    group = run_group([task_info("t0"), task_info("t0"), task_info("t1")])
    effects = feed(state, master(run_task_group=group), 1.0)
    assert [(s.task_id.value, s.state) for s in forwarded_statuses(effects)] == [
        ("t0", mesos_pb2.TASK_ERROR)
    ]
    refused, exited = to_master(effects)
    assert refused.launch_refused.task_id.value == "t1"
    # The master counted the group's executor from the moment it sent the launch.
    assert exited.exited_executor.executor_id.value == "dex"
    assert not exited.exited_executor.HasField("status")  # It never started.


def test_a_teardown_drops_the_answers_about_tasks_the_agent_never_held(
    make_agent: MakeAgent,
) -> None:
    state = make_agent()
    kill = agent_internal_pb2.KillTask()
    kill.framework_id.value = FW
    kill.task_id.value = "unknown"
    [lost] = forwarded_statuses(feed(state, master(kill_task=kill), 0.0))
    assert lost.state == mesos_pb2.TASK_LOST
    feed(state, shutdown(), 1.0)  # Nobody will acknowledge it: no more retries.
    assert list(state.updates) == []


def test_an_executor_exit_while_no_session_is_open_reaches_the_master_after_it(
    make_agent: MakeAgent,
) -> None:
    """Found by the simulator: an executor ended between the agent's ReregisterAgent (which
    still listed it) and the master's reply; its ExitedExecutor was dropped, and the master
    counted the executor's resources for ever."""
    state = make_agent()
    custom = run_task(task_info("a", command=None), False, executor_info())
    [ex] = of_type(feed(state, master(run_task=custom), 0.0), LaunchContainer)
    assert isinstance(ex, LaunchContainer)
    feed(state, events.ContainerLaunched(ex.container_id), 0.1)
    feed(state, events.Disconnected(), 1.0)
    hello = hello_message(state, "boot", "0.1").reregister_agent
    assert [e.executor_id.value for e in hello.executor_infos] == ["ex"]
    effects = feed(state, events.ContainerExited(ex.container_id, ContainerExit(status=0)), 2.0)
    assert to_master(effects) == []  # No session: held.
    reply = agent_internal_pb2.AgentReregistered()
    reply.agent_id.value = "agent-1"
    [exited, *_] = to_master(feed(state, master(agent_reregistered=reply), 3.0))
    assert exited.exited_executor.executor_id.value == "ex"
    assert state.held_for_master == []


def test_a_refused_launch_of_a_new_executor_tells_the_master_it_never_started(
    make_agent: MakeAgent,
) -> None:
    """Found by the simulator: the master counts a launch's new executor from the moment it
    sends the launch; refused here, it never started, and the master counted it for ever."""
    state = make_agent(resources="cpus:1;mem:256")
    too_big = run_task(task_info("a", "cpus:2;mem:64", command=None), False, executor_info())
    effects = feed(state, master(run_task=too_big), 0.0)
    [error] = forwarded_statuses(effects)
    assert error.state == mesos_pb2.TASK_ERROR
    [exited] = to_master(effects)
    assert exited.exited_executor.executor_id.value == "ex"
    assert not exited.exited_executor.HasField("status")

    # An executor that is here is not reported ended because one more task did not fit.
    fits = run_task(task_info("b", "cpus:0.5;mem:64", command=None), False, executor_info())
    feed(state, master(run_task=fits), 1.0)
    too_big = run_task(task_info("c", "cpus:2;mem:64", command=None), False, executor_info())
    effects = feed(state, master(run_task=too_big), 2.0)
    assert [s.state for s in forwarded_statuses(effects)] == [mesos_pb2.TASK_ERROR]
    assert to_master(effects) == []
