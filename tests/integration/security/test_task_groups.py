"""Task groups under the default executor: nested tasks run as their users, their files are
served, and a nested task over its disk limit fails with the disk reason."""

from __future__ import annotations

from pathlib import Path

from protos.v1 import mesos_pb2
from tests.integration.agent.fake_master import FakeMaster
from tests.integration.agent.support import run_task_group
from tests.integration.security.support import (
    UNPRIVILEGED,
    StartAgent,
    files_get,
    needs_nobody,
    needs_root,
    task_as,
)

Reason = mesos_pb2.TaskStatus
pytestmark = [needs_root, needs_nobody]


def test_nested_tasks_run_as_their_users_and_are_limited_on_disk(
    master: FakeMaster, start_agent: StartAgent, work_dir: Path
) -> None:
    master.auto_ack = True
    agent = start_agent(["--container-disk-watch-interval", "200ms"], work_dir=work_dir)
    writer = task_as("writer", "id -un > who && cat who", UNPRIVILEGED, "cpus:0.1;mem:64;disk:32")
    master.send(run_task_group([writer], "dex-1"))
    finished = master.wait_update("writer", mesos_pb2.TASK_FINISHED)
    assert finished.status.message == "Command exited with status 0"
    read = files_get(agent, "read", "/frameworks/fw-1/executors/dex-1/runs/latest/tasks/writer/who")
    assert read.status_code == 200, read.text
    assert read.json()["data"] == f"{UNPRIVILEGED}\n"

    hog = "dd if=/dev/zero of=big bs=1M count=200 2>/dev/null; exec sleep 1000"
    master.send(
        run_task_group([task_as("hog", hog, UNPRIVILEGED, "cpus:0.1;mem:64;disk:32")], "dex-2")
    )
    failed = master.wait_update("hog", mesos_pb2.TASK_FAILED)
    assert failed.status.reason == Reason.REASON_CONTAINER_LIMITATION_DISK
    assert "over the container's disk limit of 32 MiB" in failed.status.message
