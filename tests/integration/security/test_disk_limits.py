"""Item 6 attack: a ``disk:32`` task wrote 200 MB. Now it is killed with the disk reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from protos.v1 import mesos_pb2
from tests.integration.agent.conftest import is_root_with_cgroups
from tests.integration.agent.fake_master import FakeMaster
from tests.integration.agent.support import executor_info_for, executor_task, run_task
from tests.integration.security.support import StartAgent, finish, task_as
from tests.integration.security.support import run as run_command

Reason = mesos_pb2.TaskStatus
WATCH = ["--container-disk-watch-interval", "200ms"]


ISOLATIONS = [
    "posix",
    pytest.param(
        "cgroups",
        marks=pytest.mark.skipif(not is_root_with_cgroups(), reason="needs root and cgroups"),
    ),
]


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_task_over_its_disk_limit_fails_with_the_disk_reason(
    master: FakeMaster, start_agent: StartAgent, work_dir: Path, isolation: str
) -> None:
    start_agent(WATCH, work_dir=work_dir, isolation=isolation)
    hog = "dd if=/dev/zero of=big bs=1M count=200 2>/dev/null; exec sleep 1000"
    run_command(master, task_as("hog", hog, None, "cpus:0.1;mem:64;disk:32"))
    failed = finish(master, "hog")
    assert failed.status.state == mesos_pb2.TASK_FAILED
    assert failed.status.reason == Reason.REASON_CONTAINER_LIMITATION_DISK
    assert failed.status.message.startswith("Disk limit exceeded: the sandbox uses ")
    assert failed.status.message.endswith("over the container's disk limit of 32 MiB")
    # The legitimate path: a task within its limit finishes.
    small = "dd if=/dev/zero of=small bs=1M count=4 2>/dev/null && sleep 1"
    run_command(master, task_as("small", small, None, "cpus:0.1;mem:64;disk:32"))
    assert finish(master, "small").status.state == mesos_pb2.TASK_FINISHED


def test_without_enforcement_the_disk_limit_is_not_applied(
    master: FakeMaster, start_agent: StartAgent, work_dir: Path
) -> None:
    start_agent([*WATCH, "--no-enforce-container-disk-quota"], work_dir=work_dir, isolation="posix")
    hog = "dd if=/dev/zero of=big bs=1M count=40 2>/dev/null && sleep 1"
    run_command(master, task_as("hog", hog, None, "cpus:0.1;mem:64;disk:32"))
    assert finish(master, "hog").status.state == mesos_pb2.TASK_FINISHED


def test_a_custom_executor_over_its_disk_limit_fails_its_tasks_with_the_disk_reason(
    master: FakeMaster, start_agent: StartAgent, work_dir: Path
) -> None:
    start_agent(WATCH, work_dir=work_dir, isolation="posix")
    executor = executor_info_for("ex", resources="cpus:0.1;mem:64;disk:32")
    master.send(run_task(executor_task("a", b"keep running"), executor=executor))
    master.wait_and_ack("a", mesos_pb2.TASK_RUNNING)
    [sandbox] = work_dir.glob("agents/*/frameworks/fw-1/executors/ex/runs/latest")
    with (sandbox / "big").open("wb") as big:  # What the executor's process could write.
        for _ in range(64):
            big.write(b"\1" * (1 << 20))
    failed = master.wait_and_ack("a", mesos_pb2.TASK_FAILED)
    assert failed.status.reason == Reason.REASON_CONTAINER_LIMITATION_DISK
    assert failed.status.message.startswith("Disk limit exceeded: the sandbox uses ")


def test_the_disk_limit_holds_for_a_task_recovered_after_an_agent_restart(
    master: FakeMaster, start_agent: StartAgent, work_dir: Path
) -> None:
    agent = start_agent(WATCH, work_dir=work_dir, isolation="posix")
    task = task_as("t1", "exec sleep 1000", None, "cpus:0.1;mem:64;disk:32")
    master.send(run_task(task, checkpoint=True))
    master.wait_and_ack("t1", mesos_pb2.TASK_RUNNING)
    agent.crash()
    master.auto_ack = True  # The RUNNING may come again if the crash beat its acknowledgement.
    start_agent(WATCH, work_dir=work_dir, isolation="posix")
    master.wait_for(lambda: len(master.sessions) >= 2, "the restarted agent")
    [sandbox] = work_dir.glob("agents/*/frameworks/fw-1/executors/t1/runs/latest")
    with (sandbox / "big").open("wb") as big:  # What the recovered task could write.
        for _ in range(64):
            big.write(b"\1" * (1 << 20))
    failed = master.wait_update("t1", mesos_pb2.TASK_FAILED)
    assert failed.status.reason == Reason.REASON_CONTAINER_LIMITATION_DISK
