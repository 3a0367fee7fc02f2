"""kill -9 of the agent and restart: checkpointed tasks survive, the rest is cleaned up."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from protos.v1 import mesos_pb2
from tests.integration.agent.conftest import StartAgent, needs_root
from tests.integration.agent.fake_master import FakeMaster
from tests.integration.agent.support import (
    ROOT,
    command_task,
    executor_info_for,
    executor_task,
    kill_task,
    processes_with,
    run_task,
    wait_until,
)

Reason = mesos_pb2.TaskStatus
SDK_EXECUTOR = Path(__file__).with_name("sdk_executor.py")
WAIT_FOR_GO = "while [ ! -f go ]; do sleep 0.02; done; echo done"


def sandbox(work_dir: Path, agent_id: str, executor_id: str) -> Path:
    runs = work_dir / "agents" / agent_id / "frameworks/fw-1/executors" / executor_id / "runs"
    return runs / "latest"


def new_session(master: FakeMaster, count: int) -> None:
    master.wait_for(lambda: len(master.sessions) >= count, f"session {count}")


@pytest.mark.root
@needs_root
def test_a_checkpointed_task_survives_a_kill_9_and_finishes_after_the_restart(
    master: FakeMaster, start_agent: StartAgent, tmp_path: Path
) -> None:
    agent = start_agent()
    marker = f"survivor-{tmp_path.name}"
    master.send(run_task(command_task("t1", f"{WAIT_FOR_GO} # {marker}"), checkpoint=True))
    running = master.wait_update("t1", mesos_pb2.TASK_RUNNING)  # Not acknowledged.
    wait_until(lambda: processes_with(marker), "the task")
    shell = min(processes_with(marker))
    agent.crash()
    assert shell in processes_with(marker)  # The task does not notice.

    start_agent()
    new_session(master, 2)
    hello = master.session().hello
    assert hello.HasField("reregister_agent")
    [task] = hello.reregister_agent.tasks
    assert (task.task_id.value, task.state) == ("t1", mesos_pb2.TASK_RUNNING)
    assert task.status_update_uuid == running.status.uuid
    # The unacknowledged RUNNING comes again, with its uuid, from the checkpoint.
    again = master.wait_update("t1", mesos_pb2.TASK_RUNNING, after=1)
    assert again.status.uuid == running.status.uuid
    master.acknowledge(again)
    (sandbox(agent.work_dir, "agent-1", "t1") / "go").touch()
    finished = master.wait_and_ack("t1", mesos_pb2.TASK_FINISHED)
    assert finished.status.message == "Command exited with status 0"
    wait_until(lambda: not processes_with(marker), "the task to be gone")


def test_tasks_of_frameworks_without_checkpointing_are_destroyed_on_restart(
    master: FakeMaster, start_agent: StartAgent, tmp_path: Path
) -> None:
    agent = start_agent()
    marker = f"ephemeral-{tmp_path.name}"
    master.send(run_task(command_task("t1", f"sleep 1000 # {marker}"), checkpoint=False))
    master.wait_and_ack("t1", mesos_pb2.TASK_RUNNING)
    agent.crash()
    start_agent()
    new_session(master, 2)
    hello = master.session().hello
    assert hello.HasField("reregister_agent")
    assert list(hello.reregister_agent.tasks) == []
    assert processes_with(marker) == []


def test_recover_cleanup_starts_a_new_agent(
    master: FakeMaster, start_agent: StartAgent, tmp_path: Path
) -> None:
    agent = start_agent()
    marker = f"cleanup-{tmp_path.name}"
    master.send(run_task(command_task("t1", f"sleep 1000 # {marker}"), checkpoint=True))
    master.wait_and_ack("t1", mesos_pb2.TASK_RUNNING)
    agent.crash()
    start_agent(["--recover", "cleanup"])
    new_session(master, 2)
    assert master.session().hello.HasField("register_agent")
    assert master.session().agent_id == "agent-2"
    assert processes_with(marker) == []


def test_a_stopped_agent_keeps_checkpointed_tasks_for_its_restart(
    master: FakeMaster, start_agent: StartAgent, tmp_path: Path
) -> None:
    agent = start_agent()
    marker = f"sigterm-{tmp_path.name}"
    master.send(run_task(command_task("t1", f"sleep 1000 # {marker}"), checkpoint=True))
    master.wait_and_ack("t1", mesos_pb2.TASK_RUNNING)
    master.auto_ack = True  # In case the ack was not taken before the stop.
    assert agent.stop(signum=15) == 0
    assert processes_with(marker)
    restarted = start_agent()
    new_session(master, 2)
    assert [t.task_id.value for t in master.session().hello.reregister_agent.tasks] == ["t1"]
    state = httpx.get(f"http://{restarted.http}/state").json()
    assert state["frameworks"][0]["executors"][0]["tasks"][0]["state"] == "TASK_RUNNING"
    master.send(kill_task("t1"))
    master.wait_update("t1", mesos_pb2.TASK_KILLED)


def test_a_custom_executor_resubscribes_after_the_restart(
    master: FakeMaster, start_agent: StartAgent
) -> None:
    agent = start_agent()
    master.send(run_task(executor_task("a"), checkpoint=True, executor=executor_info_for("ex")))
    master.wait_and_ack("a", mesos_pb2.TASK_RUNNING)
    agent.crash()
    master.auto_ack = True  # The RUNNING may come again if its ack was not taken in time.
    restarted = start_agent()
    assert restarted.executor_port == agent.executor_port
    new_session(master, 2)
    wait_until(
        lambda: httpx.get(f"http://{restarted.http}/state").json()["frameworks"][0]["executors"][0][
            "connected"
        ],
        "the executor to subscribe again",
    )
    master.send(kill_task("a"))
    master.wait_update("a", mesos_pb2.TASK_KILLED)


def test_an_executor_that_does_not_come_back_is_destroyed(
    master: FakeMaster, start_agent: StartAgent
) -> None:
    agent = start_agent()
    executor = executor_info_for("ex")
    executor.command.environment.variables.add(name="RAW_EXECUTOR_STAY_AWAY", value="1")
    master.send(run_task(executor_task("a"), checkpoint=True, executor=executor))
    master.wait_and_ack("a", mesos_pb2.TASK_RUNNING)
    agent.crash()
    master.auto_ack = True
    start_agent(["--executor-reregistration-timeout", "500ms"])
    failed = master.wait_update("a", mesos_pb2.TASK_FAILED)
    assert failed.status.reason == Reason.REASON_EXECUTOR_REREGISTRATION_TIMEOUT


def test_an_sdk_executor_resubscribes_after_the_restart(
    master: FakeMaster, start_agent: StartAgent
) -> None:
    agent = start_agent()
    executor = executor_info_for("sdk", command=f"{sys.executable} {SDK_EXECUTOR}")
    executor.command.environment.variables.add(name="PYTHONPATH", value=str(ROOT))
    master.send(run_task(executor_task("a"), checkpoint=True, executor=executor))
    master.wait_and_ack("a", mesos_pb2.TASK_RUNNING)
    agent.crash()
    master.auto_ack = True
    restarted = start_agent()
    new_session(master, 2)
    wait_until(
        lambda: httpx.get(f"http://{restarted.http}/state").json()["frameworks"][0]["executors"][0][
            "connected"
        ],
        "the SDK executor to subscribe again",
    )
    master.send(kill_task("a"))
    master.wait_update("a", mesos_pb2.TASK_KILLED)
