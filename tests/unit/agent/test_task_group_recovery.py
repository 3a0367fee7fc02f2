"""Recovery of the default executor's task groups from a checkpoint written in tmp_path."""

from __future__ import annotations

import signal
from pathlib import Path

from agent.checkpoint import CheckpointStore
from agent.core import AgentState, ContainerExit, events, handle
from agent.core.effects import DestroyContainer, SignalContainer, UpdateRecord
from agent.core.model import ExecutorPhase
from agent.core.registration import reregister_message
from protos.v1 import mesos_pb2
from tests.unit.agent.conftest import MakeAgent, uuid_n
from tests.unit.agent.helpers import (
    FW,
    ack_all,
    default_executor_info,
    forwarded_statuses,
    framework_info,
    master_registered,
    master_reregistered,
    task_info,
    to_master,
)
from tests.unit.agent.helpers import (
    recover as look_for,
)

Reason = mesos_pb2.TaskStatus
RUN = "c-run"


def update(task_id: str, state: mesos_pb2.TaskState.ValueType, n: int) -> UpdateRecord:
    status = mesos_pb2.TaskStatus(state=state, uuid=uuid_n(100 + n))
    status.task_id.value = task_id
    return UpdateRecord("update", status)


def checkpoint(
    tmp_path: Path,
    tasks: dict[str, mesos_pb2.TaskState.ValueType | None],
    recorded: tuple[str, ...] = (),
) -> CheckpointStore:
    """Default executor 'dex' (run 'c-run') with one group of ``tasks``, each in container
    ``n-<task>`` and in the given state (None: no update yet); the containers of ``recorded``
    have a container.state."""
    store = CheckpointStore(tmp_path)
    store.write_boot_id("boot")
    info = mesos_pb2.AgentInfo(hostname="h")
    info.id.value = "agent-1"
    store.write_agent(info)
    store.write_framework(FW, framework_info(checkpoint=True))
    executor = default_executor_info()
    executor.framework_id.value = FW
    store.write_executor(FW, "dex", RUN, executor)
    group = tuple(tasks)
    for n, (task_id, state) in enumerate(tasks.items()):
        store.write_task(
            FW, "dex", RUN, task_info(task_id), nested_container_id=f"n-{task_id}", group=group
        )
        if state is not None:
            store.append_update(FW, "dex", RUN, task_id, update(task_id, state, n))
        if task_id in recorded:
            store.write_task_container_state(FW, "dex", RUN, task_id, {"pid": 100 + n})
    return store


def recover(
    tmp_path: Path, make_agent: MakeAgent, warnings: int = 0
) -> tuple[AgentState, list[tuple[str, dict[str, object] | None]]]:
    read = CheckpointStore(tmp_path).read()
    assert read.agent is not None
    assert len(read.warnings) == warnings, read.warnings
    state = make_agent(registered=False)
    return state, look_for(state, read.agent)


def latest(state: AgentState, task_id: str) -> mesos_pb2.TaskStatus:
    stream = state.updates.get(FW, task_id)
    assert stream is not None
    return stream.pending[-1]


def test_a_running_group_is_found_again_and_keeps_its_rules(
    tmp_path: Path, make_agent: MakeAgent
) -> None:
    running = mesos_pb2.TASK_RUNNING
    checkpoint(tmp_path, {"a": running, "b": running}, recorded=("a", "b"))
    state, wanted = recover(tmp_path, make_agent)
    assert wanted == [("n-a", {"pid": 100}), ("n-b", {"pid": 101})]  # Not the run: no process.
    executor = state.executor(FW, "dex")
    assert executor is not None
    assert executor.phase is ExecutorPhase.RUNNING
    assert executor.tasks["a"].group == ("a", "b")
    assert handle(state, events.ContainerRecovered("n-a"), 1.0) == []
    assert handle(state, events.ContainerRecovered("n-b"), 1.0) == []
    assert handle(state, events.RecoveryDone(), 1.0) == []
    reregister = reregister_message(state, "boot", "0.1").reregister_agent
    assert [e.executor_id.value for e in reregister.executor_infos] == ["dex"]
    handle(state, master_reregistered(), 1.5)
    effects = handle(state, events.ContainerExited("n-b", ContainerExit(status=1)), 2.0)
    assert latest(state, "b").state == mesos_pb2.TASK_FAILED
    assert SignalContainer("n-a", signal.SIGTERM) in effects


def test_a_group_whose_launch_the_restart_interrupted_fails_to_launch(
    tmp_path: Path, make_agent: MakeAgent
) -> None:
    # 'a' was launched (its container recorded); the agent died before recording 'b's.
    checkpoint(tmp_path, {"a": None, "b": None}, recorded=("a",))
    state, wanted = recover(tmp_path, make_agent)
    assert wanted == [("n-a", {"pid": 100}), ("n-b", None)]
    assert handle(state, events.ContainerRecovered("n-a"), 1.0) == []  # Its group is not complete.
    exit = ContainerExit(message="the agent died before recording the container")
    effects = handle(state, events.ContainerExited("n-b", exit), 1.0)
    assert DestroyContainer("n-a") in effects
    failed = latest(state, "b")
    assert (failed.state, failed.reason) == (
        mesos_pb2.TASK_FAILED,
        Reason.REASON_CONTAINER_LAUNCH_FAILED,
    )
    assert "the agent died before recording the container" in failed.message
    handle(state, events.RecoveryDone(), 1.0)
    handle(state, master_registered("agent-1"), 1.5)
    effects = handle(state, events.ContainerExited("n-a", ContainerExit(signal=9)), 2.0)
    assert latest(state, "a").reason == Reason.REASON_CONTAINER_LAUNCH_FAILED
    assert to_master(effects)[0].HasField("exited_executor")
    assert all(s.state != mesos_pb2.TASK_RUNNING for s in forwarded_statuses(ack_all(state, "a")))


def test_a_group_whose_launch_completed_after_the_restart_starts_running(
    tmp_path: Path, make_agent: MakeAgent
) -> None:
    checkpoint(tmp_path, {"a": None, "b": None}, recorded=("a", "b"))
    state, _ = recover(tmp_path, make_agent)
    handle(state, master_registered("agent-1"), 0.5)
    assert handle(state, events.ContainerRecovered("n-a"), 1.0) == []
    effects = handle(state, events.ContainerRecovered("n-b"), 1.0)
    assert [(s.task_id.value, s.state) for s in forwarded_statuses(effects)] == [
        ("a", mesos_pb2.TASK_RUNNING),
        ("b", mesos_pb2.TASK_RUNNING),
    ]


def test_a_failure_before_the_restart_kills_what_is_left_of_its_group(
    tmp_path: Path, make_agent: MakeAgent
) -> None:
    # 'b' failed and was reported; the agent died before killing 'a'.
    checkpoint(tmp_path, {"a": mesos_pb2.TASK_RUNNING, "b": mesos_pb2.TASK_FAILED}, ("a", "b"))
    state, wanted = recover(tmp_path, make_agent)
    assert wanted == [("n-a", {"pid": 100})]  # 'b' ended: nothing to look for.
    handle(state, events.ContainerRecovered("n-a"), 1.0)
    effects = handle(state, events.RecoveryDone(), 1.0)
    assert effects[0] == SignalContainer("n-a", signal.SIGTERM)
    handle(state, master_registered("agent-1"), 1.5)
    handle(state, events.ContainerExited("n-a", ContainerExit(signal=15)), 2.0)
    assert latest(state, "a").message == (
        "Killed with its task group because task 'b' failed: Command terminated by signal 15 (TERM)"
    )


def test_a_group_that_ended_while_the_agent_was_down_ends_its_executor(
    tmp_path: Path, make_agent: MakeAgent
) -> None:
    finished = mesos_pb2.TASK_FINISHED
    checkpoint(tmp_path, {"a": finished, "b": finished}, recorded=("a", "b"))
    state, wanted = recover(tmp_path, make_agent)
    assert wanted == []
    # No session is open yet: the exit is held, and sent once the master has taken the agent
    # back (its reply would otherwise count the executor from an earlier report for ever).
    assert to_master(handle(state, events.RecoveryDone(), 1.0)) == []
    [exited] = to_master(handle(state, master_reregistered(), 1.5))
    assert exited.exited_executor.executor_id.value == "dex"
    ack_all(state, "a")
    ack_all(state, "b")
    assert state.frameworks == {}


def test_a_task_whose_container_record_is_damaged_is_lost_with_its_group(
    tmp_path: Path, make_agent: MakeAgent
) -> None:
    running = mesos_pb2.TASK_RUNNING
    checkpoint(tmp_path, {"a": running, "b": running}, recorded=("a", "b"))
    [record] = tmp_path.glob(
        f"meta/agents/agent-1/frameworks/*/executors/dex/runs/{RUN}/tasks/b/task.container"
    )
    record.write_text("{not json")
    state, wanted = recover(tmp_path, make_agent, warnings=1)
    [(fresh, state_b)] = [w for w in wanted if w != ("n-a", {"pid": 100})]
    assert state_b is None  # Looked for in vain: the runtime reports it gone.
    handle(state, events.ContainerRecovered("n-a"), 1.0)
    exit = ContainerExit(message="the agent died before recording the container")
    effects = handle(state, events.ContainerExited(fresh, exit), 1.0)
    assert latest(state, "b").state == mesos_pb2.TASK_FAILED
    assert SignalContainer("n-a", signal.SIGTERM) in effects
