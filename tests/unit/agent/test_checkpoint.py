"""Checkpoint paths, atomic writes, the task.updates log, and reading a checkpoint back."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.checkpoint import CheckpointStore, paths
from agent.checkpoint.files import (
    append_update_record,
    atomic_write,
    encode_record,
    read_update_log,
)
from agent.core import RecoveryPlan, plan_recovery
from agent.core.effects import UpdateRecord
from protos.v1 import mesos_pb2
from tests.unit.agent.conftest import uuid_n
from tests.unit.agent.helpers import executor_info, framework_info, task_info


def running(n: int, state: mesos_pb2.TaskState.ValueType = mesos_pb2.TASK_RUNNING) -> UpdateRecord:
    status = mesos_pb2.TaskStatus(state=state, uuid=uuid_n(n))
    status.task_id.value = "t1"
    return UpdateRecord("update", status)


def test_the_layout_matches_the_documented_tree(tmp_path: Path) -> None:
    path = paths.task_updates_path(tmp_path, "A", "F", "E", "C", task_id="T")
    assert path == tmp_path / "meta/agents/A/frameworks/F/executors/E/runs/C/tasks/T/task.updates"
    sandbox = paths.sandbox_dir(tmp_path, "A", "F", "E", "C")
    assert sandbox == tmp_path / "agents/A/frameworks/F/executors/E/runs/C"
    assert paths.boot_id_path(tmp_path) == tmp_path / "meta/boot_id"


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "x\0"])
def test_ids_that_could_escape_their_directory_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="cannot be used as a directory name"):
        paths.framework_meta_dir(tmp_path, "A", bad)


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "dir" / "file"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["file"]


def test_the_update_log_round_trips(tmp_path: Path) -> None:
    log = tmp_path / "task.updates"
    records = [running(1), UpdateRecord("ack", uuid_n(1)), running(2, mesos_pb2.TASK_FINISHED)]
    for record in records:
        append_update_record(log, record)
    assert read_update_log(log) == (records, log.stat().st_size, False)


@pytest.mark.parametrize("cut", [1, 5, 9, -1])
def test_a_torn_tail_record_is_dropped(tmp_path: Path, cut: int) -> None:
    log = tmp_path / "task.updates"
    append_update_record(log, running(1))
    good = log.stat().st_size
    tail = encode_record(running(2, mesos_pb2.TASK_FINISHED))
    with log.open("ab") as f:
        f.write(tail[:cut])
    assert read_update_log(log) == ([running(1)], good, True)


def test_a_corrupted_record_ends_the_log(tmp_path: Path) -> None:
    log = tmp_path / "task.updates"
    append_update_record(log, running(1))
    data = bytearray(log.read_bytes())
    data[-1] ^= 0xFF
    log.write_bytes(bytes(data))
    assert read_update_log(log) == ([], 0, True)


def write_checkpoint(tmp_path: Path) -> CheckpointStore:
    """A checkpoint of one agent running command task t1 of a checkpointing framework."""
    store = CheckpointStore(tmp_path)
    store.write_boot_id("boot-1")
    info = mesos_pb2.AgentInfo(hostname="h")
    info.id.value = "agent-1"
    store.write_agent(info)
    store.write_framework("fw-1", framework_info(checkpoint=True))
    store.write_executor("fw-1", "ex", "c1", executor_info())
    store.write_task("fw-1", "ex", "c1", task_info("t1", command=None))
    store.write_container_state("fw-1", "ex", "c1", {"pid": 42})
    store.append_update("fw-1", "ex", "c1", "t1", running(1))
    return store


def test_a_checkpoint_reads_back(tmp_path: Path) -> None:
    write_checkpoint(tmp_path)
    checkpoint = CheckpointStore(tmp_path).read()
    assert checkpoint.boot_id == "boot-1"
    assert checkpoint.warnings == []
    agent = checkpoint.agent
    assert agent is not None
    assert agent.agent_info.id.value == "agent-1"
    [framework] = agent.frameworks
    assert framework.framework_id == "fw-1"
    assert framework.info.checkpoint
    [executor] = framework.executors
    assert (executor.executor_id, executor.container_id) == ("ex", "c1")
    assert executor.container_state == {"pid": 42}
    [task] = executor.tasks
    assert task.info.task_id.value == "t1"
    assert task.records == [running(1)]


def test_reading_cuts_a_torn_update_log(tmp_path: Path) -> None:
    store = write_checkpoint(tmp_path)
    log = paths.task_updates_path(tmp_path, "agent-1", "fw-1", "ex", "c1", task_id="t1")
    good = log.stat().st_size
    with log.open("ab") as f:
        f.write(encode_record(running(2))[:7])
    checkpoint = CheckpointStore(tmp_path).read()
    assert len(checkpoint.warnings) == 1
    assert "torn record" in checkpoint.warnings[0]
    assert log.stat().st_size == good
    store.append_update("fw-1", "ex", "c1", "t1", running(3))  # Appends after the cut.
    [task] = CheckpointStore(tmp_path).read().agent.frameworks[0].executors[0].tasks  # type: ignore[union-attr]
    assert task.records == [running(1), running(3)]


def test_missing_files_drop_what_depends_on_them(tmp_path: Path) -> None:
    write_checkpoint(tmp_path)
    paths.framework_info_path(tmp_path, "agent-1", "fw-1").unlink()
    checkpoint = CheckpointStore(tmp_path).read()
    assert checkpoint.agent is not None
    assert checkpoint.agent.frameworks == []
    assert any("framework.info is missing" in w for w in checkpoint.warnings)


def test_an_empty_work_dir_has_nothing_to_recover(tmp_path: Path) -> None:
    checkpoint = CheckpointStore(tmp_path).read()
    assert (checkpoint.boot_id, checkpoint.agent) == (None, None)


def test_removing_executors_and_frameworks(tmp_path: Path) -> None:
    store = write_checkpoint(tmp_path)
    store.remove_executor("fw-1", "ex")
    assert not paths.executor_meta_dir(tmp_path, "agent-1", "fw-1", "ex").exists()
    store.remove_framework("fw-1")
    assert not paths.framework_meta_dir(tmp_path, "agent-1", "fw-1").exists()
    store.clear_agents()
    assert CheckpointStore(tmp_path).read().agent is None


def test_sandboxes_get_a_latest_link(tmp_path: Path) -> None:
    store = write_checkpoint(tmp_path)
    sandbox = store.make_sandbox("fw-1", "ex", "c1")
    assert sandbox.is_dir()
    assert (sandbox.parent / "latest").resolve() == sandbox.resolve()
    store.make_sandbox("fw-1", "ex", "c2")
    assert (sandbox.parent / "latest").resolve().name == "c2"


@pytest.mark.parametrize(
    ("checkpointed", "current", "has_agent", "recover", "plan"),
    [
        ("b1", "b1", True, "reconnect", RecoveryPlan.RECOVER),
        ("b1", "b2", True, "reconnect", RecoveryPlan.CLEANUP_REBOOT),
        (None, "b2", True, "reconnect", RecoveryPlan.CLEANUP_REBOOT),
        ("b1", "b1", True, "cleanup", RecoveryPlan.CLEANUP_ASKED),
        ("b1", "b1", False, "reconnect", RecoveryPlan.FRESH),
    ],
)
def test_the_recovery_plan(
    checkpointed: str | None, current: str, has_agent: bool, recover: str, plan: RecoveryPlan
) -> None:
    assert plan_recovery(checkpointed, current, has_agent, recover) is plan
