"""Task groups under the agent's default executor, with real processes and a fake master."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from protos.v1 import mesos_pb2
from tests.integration.agent.conftest import StartAgent, needs_root
from tests.integration.agent.fake_master import FakeMaster
from tests.integration.agent.support import (
    command_task,
    kill_task,
    processes_with,
    run_task_group,
    wait_until,
)

Reason = mesos_pb2.TaskStatus
RUNNING, FINISHED = mesos_pb2.TASK_RUNNING, mesos_pb2.TASK_FINISHED
FAILED, KILLED = mesos_pb2.TASK_FAILED, mesos_pb2.TASK_KILLED


def sleeper(task_id: str, marker: str) -> mesos_pb2.TaskInfo:
    """A task that sleeps until killed, within a 1 s grace period."""
    task = command_task(task_id, f"sleep 1000 # {marker}")
    task.kill_policy.grace_period.nanoseconds = 1_000_000_000
    return task


def exited_executors(master: FakeMaster) -> list[int]:
    return [m.exited_executor.status for m in master.messages("exited_executor")]


def test_a_group_runs_each_task_in_its_own_container_and_finishes(
    master: FakeMaster, start_agent: StartAgent
) -> None:
    agent = start_agent()
    master.auto_ack = True
    script = 'echo "$MESOS_TASK_ID of $MESOS_EXECUTOR_ID in $(basename $MESOS_SANDBOX)"'
    master.send(run_task_group([command_task(t, script) for t in "abc"]))
    for task_id in "abc":
        finished = master.wait_update(task_id, FINISHED)
        assert finished.status.message == "Command exited with status 0"
        assert finished.executor_id.value == "dex"
    # The group started together: every RUNNING came before any task ended.
    first = [(u.status.task_id.value, u.status.state) for u in master.updates()[:3]]
    assert sorted(first) == [("a", RUNNING), ("b", RUNNING), ("c", RUNNING)]
    master.wait_for(lambda: exited_executors(master) == [0], "the executor's end")
    path = "/frameworks/fw-1/executors/dex/runs/latest/tasks/b/stdout"
    read = httpx.get(f"http://{agent.http}/files/read", params={"path": path, "offset": 0})
    assert read.json()["data"] == "b of dex in b\n"
    wait_until(lambda: httpx.get(f"http://{agent.http}/state").json()["frameworks"] == [], "retire")


def test_a_failure_or_a_kill_ends_the_whole_group_and_a_launch_is_all_or_nothing(
    master: FakeMaster, start_agent: StartAgent, tmp_path: Path
) -> None:
    start_agent()
    master.auto_ack = True
    marker = f"groups-{tmp_path.name}"
    # Three groups side by side on one agent, each under a default executor of its own.
    failing = command_task("c", "sleep 0.2; exit 3")
    master.send(run_task_group([sleeper("a", marker), sleeper("b", marker), failing], "dex-1"))
    master.send(run_task_group([sleeper(t, marker) for t in ("d", "e", "f")], "dex-2"))
    broken = command_task("h", "true")
    broken.command.uris.add(value="/nonexistent/file.tgz")
    master.send(run_task_group([sleeper("g", marker), broken], "dex-3"))

    # One task fails: the rest of its group is killed.
    assert master.wait_update("c", FAILED).status.message == "Command exited with status 3"
    for task_id in "ab":
        killed = master.wait_update(task_id, KILLED)
        assert killed.status.message.startswith(
            "Killed with its task group because task 'c' failed: Command terminated by signal"
        )

    # A KILL of one task kills its whole group.
    for task_id in "def":
        master.wait_update(task_id, RUNNING)
    master.send(kill_task("e", grace_seconds=0.5))
    assert master.wait_update("e", KILLED).status.message.startswith("Command terminated by")
    for task_id in "df":
        killed = master.wait_update(task_id, KILLED)
        assert "because task 'e' was killed" in killed.status.message

    # A container that cannot be launched fails its whole group, which never runs.
    for task_id in "gh":
        failed = master.wait_update(task_id, FAILED)
        assert failed.status.reason == Reason.REASON_CONTAINER_LAUNCH_FAILED
        assert "/nonexistent/file.tgz" in failed.status.message
    assert (
        "the container of task 'h' failed to launch"
        in master.wait_update("g", FAILED).status.message
    )
    assert not [
        u
        for u in master.updates()
        if u.status.task_id.value in ("g", "h") and u.status.state == RUNNING
    ]

    master.wait_for(lambda: len(exited_executors(master)) == 3, "the executors' end")
    assert exited_executors(master) == [0, 0, 0]
    assert processes_with(marker) == []


@pytest.mark.root
@needs_root
def test_a_checkpointed_group_survives_a_kill_9_of_the_agent(
    master: FakeMaster, start_agent: StartAgent, tmp_path: Path
) -> None:
    agent = start_agent()
    master.auto_ack = True
    marker = f"group-survivor-{tmp_path.name}"
    wait_for_go = f"while [ ! -f go ]; do sleep 0.02; done # {marker}"
    tasks = [command_task(t, wait_for_go) for t in "ab"]
    master.send(run_task_group(tasks, checkpoint=True))
    for task_id in "ab":
        master.wait_update(task_id, RUNNING)
    agent.crash()
    assert len(processes_with(marker)) >= 2  # The tasks do not notice.

    start_agent()
    master.wait_for(lambda: len(master.sessions) >= 2, "the agent to come back")
    hello = master.session().hello.reregister_agent
    assert sorted((t.task_id.value, t.executor_id.value) for t in hello.tasks) == [
        ("a", "dex"),
        ("b", "dex"),
    ]
    assert [e.executor_id.value for e in hello.executor_infos] == ["dex"]
    runs = agent.work_dir / "agents" / "agent-1" / "frameworks/fw-1/executors/dex/runs/latest"
    (runs / "tasks" / "a" / "go").touch()
    master.wait_update("a", FINISHED)
    assert not master.messages("exited_executor")  # 'b' still runs: so does its executor.
    (runs / "tasks" / "b" / "go").touch()
    master.wait_update("b", FINISHED)
    master.wait_for(lambda: exited_executors(master) == [0], "the executor's end")
    wait_until(lambda: not processes_with(marker), "the tasks to be gone")
