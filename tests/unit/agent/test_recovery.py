"""Recovery of the agent core from a checkpoint directory written in tmp_path."""

from __future__ import annotations

from pathlib import Path

from agent.checkpoint import CheckpointStore
from agent.checkpoint.files import encode_record
from agent.core import ContainerExit, events, handle
from agent.core.effects import DestroyContainer, SetTimer, StartHealthCheck, UpdateRecord
from agent.core.model import command_executor_info
from agent.core.registration import reregister_message
from protos.v1 import mesos_pb2
from tests.unit.agent.conftest import MakeAgent, uuid_n
from tests.unit.agent.helpers import (
    FW,
    ack_all,
    executor_info,
    forwarded,
    forwarded_statuses,
    framework_info,
    master_registered,
    recover,
    subscribe_call,
    task_info,
    to_executor,
)

Reason = mesos_pb2.TaskStatus


def update(task_id: str, state: mesos_pb2.TaskState.ValueType, n: int) -> UpdateRecord:
    status = mesos_pb2.TaskStatus(state=state, uuid=uuid_n(100 + n))
    status.task_id.value = task_id
    return UpdateRecord("update", status)


def checkpoint(tmp_path: Path) -> CheckpointStore:
    """Command task 'cmd' (RUNNING unacked, with a health check), custom executor 'ex' with
    task 'a' (RUNNING acked) and 'done' (FINISHED acked)."""
    store = CheckpointStore(tmp_path)
    store.write_boot_id("boot")
    info = mesos_pb2.AgentInfo(hostname="h")
    info.id.value = "agent-1"
    store.write_agent(info)
    store.write_framework(FW, framework_info(checkpoint=True))
    cmd = task_info("cmd")
    cmd.health_check.type = mesos_pb2.HealthCheck.TCP
    cmd.health_check.tcp.port = 9
    store.write_executor(FW, "cmd", "c-cmd", command_executor_info(FW, cmd))
    store.write_task(FW, "cmd", "c-cmd", cmd)
    store.write_container_state(FW, "cmd", "c-cmd", {"pid": 1})
    store.append_update(FW, "cmd", "c-cmd", "cmd", update("cmd", mesos_pb2.TASK_RUNNING, 1))
    store.write_executor(FW, "ex", "c-ex", executor_info())
    store.write_container_state(FW, "ex", "c-ex", {"pid": 2})
    for task_id, records in {
        "a": [update("a", mesos_pb2.TASK_RUNNING, 2), UpdateRecord("ack", uuid_n(102))],
        "done": [update("done", mesos_pb2.TASK_FINISHED, 3), UpdateRecord("ack", uuid_n(103))],
    }.items():
        store.write_task(FW, "ex", "c-ex", task_info(task_id, command=None))
        for record in records:
            store.append_update(FW, "ex", "c-ex", task_id, record)
    return store


def test_recovery_rebuilds_tasks_and_resends_unacknowledged_updates(
    tmp_path: Path, make_agent: MakeAgent
) -> None:
    checkpoint(tmp_path)
    read = CheckpointStore(tmp_path).read()
    assert read.agent is not None
    state = make_agent(registered=False)
    wanted = recover(state, read.agent)
    assert wanted == [("c-cmd", {"pid": 1}), ("c-ex", {"pid": 2})]
    assert state.agent_id == "agent-1"
    assert sorted(state.executor(FW, "ex").tasks) == ["a"]  # type: ignore[union-attr]
    assert state.executor(FW, "cmd").tasks["cmd"].state == mesos_pb2.TASK_RUNNING  # type: ignore[union-attr]

    effects = handle(state, events.ContainerRecovered("c-cmd"), 1.0)
    assert forwarded(effects) == []  # It is RUNNING already.
    assert [type(e) for e in effects] == [StartHealthCheck]
    assert handle(state, events.ContainerRecovered("c-ex"), 1.0) == [
        SetTimer(("executor-reregistration", FW, "ex"), 3.0)
    ]
    assert handle(state, events.RecoveryDone(), 1.0) == []

    message = reregister_message(state, "boot", "0.1")
    reregister = message.reregister_agent
    assert reregister.agent_info.id.value == "agent-1"
    assert sorted(t.task_id.value for t in reregister.tasks) == ["a", "cmd"]
    [cmd] = [t for t in reregister.tasks if t.task_id.value == "cmd"]
    assert cmd.status_update_uuid == uuid_n(101)
    assert not cmd.HasField("executor_id")  # The agent's own command executor.
    assert [e.executor_id.value for e in reregister.executor_infos] == ["ex"]
    assert [f.id.value for f in reregister.frameworks] == [FW]

    assert forwarded(handle(state, master_registered("agent-1"), 2.0)) == [
        ("cmd", mesos_pb2.TASK_RUNNING)
    ]


def test_a_recovered_executor_that_does_not_resubscribe_fails_its_tasks(
    tmp_path: Path, make_agent: MakeAgent
) -> None:
    checkpoint(tmp_path)
    read = CheckpointStore(tmp_path).read()
    state = make_agent(registered=False)
    assert read.agent is not None
    recover(state, read.agent)
    handle(state, master_registered("agent-1"), 0.5)
    handle(state, events.ContainerExited("c-cmd", ContainerExit(status=0)), 1.0)
    handle(state, events.ContainerRecovered("c-ex"), 1.0)
    assert handle(state, events.TimerFired(("executor-reregistration", FW, "ex")), 3.0) == [
        DestroyContainer("c-ex")
    ]
    [failed] = forwarded_statuses(
        handle(state, events.ContainerExited("c-ex", ContainerExit(signal=9)), 3.1)
    )
    assert failed.reason == Reason.REASON_EXECUTOR_REREGISTRATION_TIMEOUT
    ack_all(state, "a")
    ack_all(state, "cmd")
    assert state.frameworks == {}


def test_a_recovered_executor_resubscribes_and_keeps_its_tasks(
    tmp_path: Path, make_agent: MakeAgent
) -> None:
    checkpoint(tmp_path)
    read = CheckpointStore(tmp_path).read()
    state = make_agent(registered=False)
    assert read.agent is not None
    recover(state, read.agent)
    handle(state, master_registered("agent-1"), 0.5)
    handle(state, events.ContainerRecovered("c-ex"), 1.0)
    sent = to_executor(
        handle(state, events.ExecutorSubscribed(FW, "ex", subscribe_call([], [])), 1.5)
    )
    assert [e.type for e in sent] == [1]  # SUBSCRIBED only: 'a' is running, nothing to send.
    assert handle(state, events.TimerFired(("executor-reregistration", FW, "ex")), 3.0) == []


def test_a_command_task_that_ended_while_the_agent_was_down(
    tmp_path: Path, make_agent: MakeAgent
) -> None:
    checkpoint(tmp_path)
    read = CheckpointStore(tmp_path).read()
    state = make_agent(registered=False)
    assert read.agent is not None
    recover(state, read.agent)
    handle(state, master_registered("agent-1"), 0.5)
    handle(state, events.ContainerExited("c-cmd", ContainerExit(status=0)), 1.0)
    statuses = forwarded_statuses(ack_all(state, "cmd"))
    assert [s.state for s in statuses] == [mesos_pb2.TASK_FINISHED]


def test_a_lost_container_of_unknown_status_fails_the_task(
    tmp_path: Path, make_agent: MakeAgent
) -> None:
    checkpoint(tmp_path)
    read = CheckpointStore(tmp_path).read()
    state = make_agent(registered=False)
    assert read.agent is not None
    recover(state, read.agent)
    handle(state, master_registered("agent-1"), 0.5)
    exit = ContainerExit(message="container not found after the agent restarted")
    handle(state, events.ContainerExited("c-cmd", exit), 1.0)
    [failed] = forwarded_statuses(ack_all(state, "cmd"))
    assert failed.state == mesos_pb2.TASK_FAILED
    assert failed.reason == Reason.REASON_EXECUTOR_TERMINATED
    assert "not found after the agent restarted" in failed.message


def test_a_torn_last_record_is_ignored_by_recovery(tmp_path: Path, make_agent: MakeAgent) -> None:
    checkpoint(tmp_path)
    log = next(
        tmp_path.glob("meta/agents/agent-1/frameworks/*/executors/cmd/runs/*/tasks/cmd/*.updates")
    )
    torn = encode_record(update("cmd", mesos_pb2.TASK_FINISHED, 9))
    with log.open("ab") as f:
        f.write(torn[: len(torn) - 3])  # The agent died in the middle of this append.
    read = CheckpointStore(tmp_path).read()
    assert read.agent is not None
    state = make_agent(registered=False)
    recover(state, read.agent)
    stream = state.updates.get(FW, "cmd")
    assert stream is not None
    assert [s.state for s in stream.pending] == [mesos_pb2.TASK_RUNNING]
    assert state.executor(FW, "cmd").tasks["cmd"].state == mesos_pb2.TASK_RUNNING  # type: ignore[union-attr]
    handle(state, master_registered("agent-1"), 1.0)
