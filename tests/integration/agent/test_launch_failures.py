"""What a real agent cannot carry out, or no longer needs, ends explicitly and leaves nothing.

(Issue 10: a task id longer than a file name made the agent fail creating the sandbox; the
failure was only logged, the task stayed STAGING forever and its resources stayed allocated.)
"""

from __future__ import annotations

import httpx

from protos.v1 import agent_internal_pb2 as ai
from protos.v1 import mesos_pb2
from tests.integration.agent.conftest import StartAgent
from tests.integration.agent.fake_master import FakeMaster
from tests.integration.agent.support import FW, command_task, run_task, wait_until

Reason = mesos_pb2.TaskStatus


def agent_state(http: str) -> dict[str, object]:
    state: dict[str, object] = httpx.get(f"http://{http}/state").json()
    return state


def test_a_sandbox_that_cannot_be_created_fails_the_task_and_frees_it(
    master: FakeMaster, start_agent: StartAgent
) -> None:
    agent = start_agent()
    master.session()
    wait_until(lambda: agent_state(agent.http)["id"], "the agent to register")
    agent_id = agent_state(agent.http)["id"]
    # A file where the framework's sandbox directory must go: mkdir fails, even for root.
    blocker = agent.work_dir / "agents" / str(agent_id) / "frameworks" / FW
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a directory")

    master.send(run_task(command_task("t1", "true")))
    failed = master.wait_and_ack("t1", mesos_pb2.TASK_FAILED)
    assert failed.status.reason == Reason.REASON_CONTAINER_LAUNCH_FAILED
    assert "could not be prepared" in failed.status.message
    assert str(blocker) in failed.status.message  # The cause, named.
    wait_until(lambda: agent_state(agent.http)["frameworks"] == [], "the task to be forgotten")
    allocated = agent_state(agent.http)["allocated_resources"]
    assert isinstance(allocated, dict)
    assert not any(allocated.values()), allocated

    blocker.unlink()
    master.send(run_task(command_task("t2", "true")))
    master.wait_and_ack("t2", mesos_pb2.TASK_RUNNING)
    master.wait_and_ack("t2", mesos_pb2.TASK_FINISHED)


def test_a_task_id_too_long_for_a_directory_name_is_refused(
    master: FakeMaster, start_agent: StartAgent
) -> None:
    agent = start_agent()
    master.session()
    task_id = "x" * 300
    master.send(run_task(command_task(task_id, "true")))
    error = master.wait_and_ack(task_id, mesos_pb2.TASK_ERROR)
    assert error.status.reason == Reason.REASON_TASK_INVALID
    assert "300 bytes" in error.status.message
    state = agent_state(agent.http)
    assert state["frameworks"] == []
    allocated = state["allocated_resources"]
    assert isinstance(allocated, dict)
    assert not any(allocated.values()), allocated
    master.send(run_task(command_task("short", "true")))  # The agent goes on serving.
    master.wait_and_ack("short", mesos_pb2.TASK_RUNNING)
    master.wait_and_ack("short", mesos_pb2.TASK_FINISHED)


def test_a_torn_down_framework_leaves_nothing_on_the_agent(
    master: FakeMaster, start_agent: StartAgent
) -> None:
    """Issue 10: terminated executors of torn-down frameworks stayed in the agent for ever."""
    agent = start_agent()
    master.session()
    master.send(run_task(command_task("t1", "true"), checkpoint=True))
    master.wait_and_ack("t1", mesos_pb2.TASK_RUNNING)
    master.wait_update("t1", mesos_pb2.TASK_FINISHED)  # Never acknowledged: the framework goes.
    meta = agent.work_dir / "meta" / "agents"
    assert list(meta.glob(f"*/frameworks/{FW}/executors/t1"))  # Checkpointed.

    shutdown = ai.MasterMessage()
    shutdown.shutdown_framework.framework_id.value = FW
    master.send(shutdown)
    wait_until(lambda: agent_state(agent.http)["frameworks"] == [], "the framework to be forgotten")
    assert list(meta.glob(f"*/frameworks/{FW}")) == []  # Its checkpoint is removed.
    assert agent_state(agent.http)["pending_updates"] == 0
