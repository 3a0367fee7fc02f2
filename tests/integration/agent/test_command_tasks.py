"""Command tasks on a real agent process driven by a fake master."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from protos.v1 import agent_internal_pb2 as ai
from protos.v1 import mesos_pb2
from tests.integration.agent.conftest import StartAgent, needs_root
from tests.integration.agent.fake_master import FakeMaster
from tests.integration.agent.support import (
    FW,
    command_task,
    executor_info_for,
    kill_task,
    processes_with,
    run_task,
    wait_until,
)

Reason = mesos_pb2.TaskStatus


def ready(work_dir: Path, task_id: str) -> bool:
    """Whether the command task created the file ``ready`` in its sandbox."""
    pattern = f"agents/*/frameworks/fw-1/executors/{task_id}/runs/latest/ready"
    return any(work_dir.glob(pattern))


def test_a_command_task_runs_and_finishes(master: FakeMaster, start_agent: StartAgent) -> None:
    agent = start_agent()
    hello = master.session().hello
    assert hello.HasField("register_agent")
    assert hello.register_agent.agent_info.port == int(agent.http.rsplit(":", 1)[1])
    master.send(run_task(command_task("t1", "echo hello from t1")))
    running = master.wait_and_ack("t1", mesos_pb2.TASK_RUNNING)
    assert running.framework_id.value == FW
    assert running.status.source == Reason.SOURCE_EXECUTOR
    assert len(running.status.uuid) == 16
    finished = master.wait_and_ack("t1", mesos_pb2.TASK_FINISHED)
    assert finished.status.message == "Command exited with status 0"
    assert finished.latest_state == mesos_pb2.TASK_FINISHED
    path = "/frameworks/fw-1/executors/t1/runs/latest/stdout"
    read = httpx.get(f"http://{agent.http}/files/read", params={"path": path, "offset": 0})
    assert read.status_code == 200
    assert read.json()["data"] == "hello from t1\n"
    wait_until(lambda: httpx.get(f"http://{agent.http}/state").json()["frameworks"] == [], "retire")


def test_a_failing_command_fails_with_its_status(
    master: FakeMaster, start_agent: StartAgent
) -> None:
    start_agent()
    master.send(run_task(command_task("t1", "exit 3")))
    master.wait_and_ack("t1", mesos_pb2.TASK_RUNNING)
    failed = master.wait_and_ack("t1", mesos_pb2.TASK_FAILED)
    assert failed.status.message == "Command exited with status 3"


def test_kill_ends_the_whole_process_tree(
    master: FakeMaster, start_agent: StartAgent, tmp_path: Path
) -> None:
    agent = start_agent()
    marker = f"tree-{tmp_path.name}"
    # A shell that ignores SIGTERM, with two children: only SIGKILL after the grace ends it.
    script = f"trap '' TERM; sleep 1000 & sleep 1000 & touch ready; wait # {marker}"
    master.send(run_task(command_task("t1", script)))
    master.wait_and_ack("t1", mesos_pb2.TASK_RUNNING)
    wait_until(lambda: ready(agent.work_dir, "t1"), "the task to be ready")
    master.send(kill_task("t1", grace_seconds=0.5))
    killed = master.wait_and_ack("t1", mesos_pb2.TASK_KILLED)
    assert killed.status.message == "Command terminated by signal 9 (KILL)"
    assert processes_with(marker) == []


def test_the_kill_grace_period_lets_the_task_exit_cleanly(
    master: FakeMaster, start_agent: StartAgent
) -> None:
    agent = start_agent()
    master.send(run_task(command_task("t1", "trap 'exit 0' TERM; sleep 1000 & touch ready; wait")))
    master.wait_and_ack("t1", mesos_pb2.TASK_RUNNING)
    wait_until(lambda: ready(agent.work_dir, "t1"), "the task to be ready")
    master.send(kill_task("t1"))
    killed = master.wait_and_ack("t1", mesos_pb2.TASK_KILLED)
    assert killed.status.message == "Command exited with status 0"


def test_bad_launches_get_precise_updates_and_the_agent_keeps_running(
    master: FakeMaster, start_agent: StartAgent
) -> None:
    start_agent()
    ghost = executor_info_for("ghost", command=None)
    bad = command_task("no-executor", "true")
    bad.ClearField("command")
    master.send(run_task(bad, executor=ghost))
    unknown = master.wait_and_ack("no-executor", mesos_pb2.TASK_ERROR)
    assert "unknown executor 'ghost'" in unknown.status.message
    master.send(run_task(command_task("huge", "true", "cpus:64;mem:64")))
    huge = master.wait_and_ack("huge", mesos_pb2.TASK_ERROR)
    assert huge.status.message.startswith("task needs cpus:64;mem:64 but the agent has only")
    assert huge.status.reason == Reason.REASON_TASK_INVALID
    master.send(run_task(command_task("dup", "sleep 1000")))
    master.wait_and_ack("dup", mesos_pb2.TASK_RUNNING)
    master.send(run_task(command_task("dup", "echo other")))
    master.wait_for(lambda: master.messages("launch_refused"), "the duplicate's refusal")
    [refused] = master.messages("launch_refused")
    assert refused.launch_refused.task_id.value == "dup"
    assert "task_id 'dup' is in use" in refused.launch_refused.message
    master.send(kill_task("dup"))
    master.wait_and_ack("dup", mesos_pb2.TASK_KILLED)
    master.send(run_task(command_task("ok", "true")))
    master.wait_and_ack("ok", mesos_pb2.TASK_RUNNING)
    master.wait_and_ack("ok", mesos_pb2.TASK_FINISHED)


def test_uris_are_fetched_before_the_command_runs(
    master: FakeMaster, start_agent: StartAgent, tmp_path: Path
) -> None:
    script = tmp_path / "hello.sh"
    script.write_text("#!/bin/sh\necho fetched > $MESOS_SANDBOX/out\n")
    start_agent()
    task = command_task("t1", "./hello.sh && grep -q fetched out")
    task.command.uris.add(value=str(script), executable=True)
    master.send(run_task(task))
    master.wait_and_ack("t1", mesos_pb2.TASK_STARTING)
    master.wait_and_ack("t1", mesos_pb2.TASK_RUNNING)
    master.wait_and_ack("t1", mesos_pb2.TASK_FINISHED)


def test_a_failed_fetch_fails_the_task(master: FakeMaster, start_agent: StartAgent) -> None:
    start_agent()
    task = command_task("t1", "true")
    task.command.uris.add(value="/nonexistent/file.tgz")
    master.send(run_task(task))
    master.wait_and_ack("t1", mesos_pb2.TASK_STARTING)
    failed = master.wait_and_ack("t1", mesos_pb2.TASK_FAILED)
    assert failed.status.reason == Reason.REASON_CONTAINER_LAUNCH_FAILED
    assert "/nonexistent/file.tgz" in failed.status.message


def test_failing_health_checks_kill_the_task(master: FakeMaster, start_agent: StartAgent) -> None:
    start_agent()
    task = command_task("t1", "sleep 1000")
    check = task.health_check
    check.type = mesos_pb2.HealthCheck.COMMAND
    check.command.value = "exit 1"
    check.delay_seconds = 0
    check.interval_seconds = 0.1
    check.grace_period_seconds = 0
    check.consecutive_failures = 2
    master.send(run_task(task))
    master.wait_and_ack("t1", mesos_pb2.TASK_RUNNING)
    unhealthy = master.wait_update("t1", mesos_pb2.TASK_RUNNING, after=1)
    assert unhealthy.status.healthy is False
    assert unhealthy.status.reason == Reason.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED
    master.acknowledge(unhealthy)
    killed = master.wait_and_ack("t1", mesos_pb2.TASK_KILLED)
    assert killed.status.reason == Reason.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED


@pytest.mark.root
@needs_root
def test_a_task_over_its_memory_limit_fails_with_the_memory_reason(
    master: FakeMaster, start_agent: StartAgent
) -> None:
    start_agent(isolation="cgroups")
    hog = f"{sys.executable} -c 'b = bytearray(300 * 2**20); b[::4096] = b\"x\" * len(b[::4096])'"
    master.send(run_task(command_task("hog", hog, "cpus:0.5;mem:64")))
    master.wait_and_ack("hog", mesos_pb2.TASK_RUNNING)
    failed = master.wait_and_ack("hog", mesos_pb2.TASK_FAILED)
    assert failed.status.reason == Reason.REASON_CONTAINER_LIMITATION_MEMORY
    assert "Memory limit exceeded" in failed.status.message


def test_a_framework_shutdown_kills_its_tasks_without_updates(
    master: FakeMaster, start_agent: StartAgent, tmp_path: Path
) -> None:
    start_agent()
    marker = f"shutdown-{tmp_path.name}"
    master.send(run_task(command_task("t1", f"sleep 1000 # {marker}")))
    master.wait_and_ack("t1", mesos_pb2.TASK_RUNNING)
    message = ai.MasterMessage()
    message.shutdown_framework.framework_id.value = FW
    master.send(message)
    wait_until(lambda: processes_with(marker) == [], "the task to be killed")
