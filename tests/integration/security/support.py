"""Helpers for the penetration suite: tasks with users, sandbox paths, the agent's file API."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import httpx
import pytest

from protos.v1 import agent_internal_pb2 as ai
from protos.v1 import mesos_pb2
from tests.integration.agent.conftest import StartAgent, is_root_with_cgroups
from tests.integration.agent.fake_master import FakeMaster
from tests.integration.agent.support import AgentProcess, command_task, run_task

UNPRIVILEGED = "nobody"

needs_root = pytest.mark.skipif(
    not is_root_with_cgroups(), reason="needs root and mounted cgroups to isolate containers"
)


def has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


needs_nobody = pytest.mark.skipif(
    not has_user(UNPRIVILEGED), reason=f"needs the user {UNPRIVILEGED!r} on this host"
)


def task_as(
    task_id: str, command: str, user: str | None, resources: str = "cpus:0.1;mem:64"
) -> mesos_pb2.TaskInfo:
    """A command task run as ``user`` (None: whatever the framework and agent decide)."""
    task = command_task(task_id, command, resources)
    if user is not None:
        task.command.user = user
    return task


def run(master: FakeMaster, task: mesos_pb2.TaskInfo) -> None:
    master.send(run_task(task))


def finish(master: FakeMaster, task_id: str) -> ai.StatusUpdate:
    """Wait for RUNNING, then the terminal update, acknowledging both; the terminal one."""
    master.wait_and_ack(task_id, mesos_pb2.TASK_RUNNING)
    return terminal(master, task_id)


def terminal(master: FakeMaster, task_id: str) -> ai.StatusUpdate:
    """The task's terminal update (acknowledged), whichever state it is."""
    terminal_states = {
        mesos_pb2.TASK_FINISHED,
        mesos_pb2.TASK_FAILED,
        mesos_pb2.TASK_KILLED,
        mesos_pb2.TASK_ERROR,
        mesos_pb2.TASK_LOST,
    }

    def ended() -> ai.StatusUpdate | None:
        for update in master.updates():
            if update.status.task_id.value == task_id and update.status.state in terminal_states:
                return update
        return None

    master.wait_for(ended, f"task {task_id} to end")
    update = ended()
    assert update is not None
    master.acknowledge(update)
    return update


def sandbox_of(work_dir: Path, task_id: str) -> Path:
    """The real sandbox directory of a command task's latest run."""
    [latest] = work_dir.glob(f"agents/*/frameworks/fw-1/executors/{task_id}/runs/latest")
    return latest.parent / os.readlink(latest)


def files_get(agent: AgentProcess, endpoint: str, path: str) -> httpx.Response:
    params = {"path": path} if endpoint != "read" else {"path": path, "offset": "0"}
    return httpx.get(f"http://{agent.http}/files/{endpoint}", params=params, timeout=30)


def virtual(task_id: str, rest: str, run: str = "latest") -> str:
    return f"/frameworks/fw-1/executors/{task_id}/runs/{run}/{rest}"


__all__ = ["StartAgent", "needs_nobody", "needs_root"]
