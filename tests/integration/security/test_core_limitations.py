"""The core's outcome for a command task killed for its disk use (sans-I/O, no processes)."""

from __future__ import annotations

from agent.core import ContainerExit
from agent.core.model import TaskRecord, command_task_outcome
from protos.resources import Resources
from protos.v1 import mesos_pb2


def record() -> TaskRecord:
    info = mesos_pb2.TaskInfo(name="t")
    info.task_id.value = "t"
    return TaskRecord("fw", "t", "t", info, Resources.parse("cpus:1;disk:32"))


def test_a_disk_kill_fails_the_task_with_the_disk_reason_even_when_killed_by_request() -> None:
    exit = ContainerExit(signal=9, message="the sandbox uses 200 MiB", disk_exceeded=True)
    task = record()
    task.kill_requested = True  # A kill racing with the limit does not hide the limitation.
    assert command_task_outcome(exit, task) == (
        mesos_pb2.TASK_FAILED,
        mesos_pb2.TaskStatus.REASON_CONTAINER_LIMITATION_DISK,
        "Disk limit exceeded: the sandbox uses 200 MiB",
    )


def test_an_oom_kill_wins_over_the_disk_limit_and_plain_exits_are_unchanged() -> None:
    both = ContainerExit(signal=9, oom_killed=True, message="memory", disk_exceeded=True)
    assert command_task_outcome(both, record())[1] == (
        mesos_pb2.TaskStatus.REASON_CONTAINER_LIMITATION_MEMORY
    )
    assert command_task_outcome(ContainerExit(status=0), record()) == (
        mesos_pb2.TASK_FINISHED,
        None,
        "Command exited with status 0",
    )
