"""The example's executor (ExecutorDriver) run by a real agent process, steered by a fake master.

The agent (``python -m agent``, posix isolation, a temporary work dir) launches
``examples.custom_executor.executor`` from the ExecutorInfo the example's scheduler builds; the
fake master of the agent's own tests (``tests.integration.agent``) plays the master: it sends
the launch and the framework messages, and receives the status updates and the pongs. This
checks the SDK against the agent's real executor API, including resubscription after the
agent is killed and restarted (checkpointing framework).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from examples.custom_executor.scheduler import TASK_RESOURCES, executor_info
from protos.v1 import agent_internal_pb2 as ai
from protos.v1 import mesos_pb2

agent_support = pytest.importorskip(
    "tests.integration.agent.support", reason="the agent's test support is not there"
)
fake_master = pytest.importorskip(
    "tests.integration.agent.fake_master", reason="the agent's fake master is not there"
)
FakeMaster = fake_master.FakeMaster
AgentProcess = agent_support.AgentProcess

FW = agent_support.FW
EXECUTOR_ID = "pingpong-t1"


@pytest.fixture
def master() -> Iterator[Any]:
    """The agent tests' fake master on 127.0.0.1, port 0."""
    fake = FakeMaster()
    yield fake
    fake.stop()


@pytest.fixture
def work_dir(tmp_path: Path) -> Iterator[Path]:
    """The agent's work dir; no process started under it may outlive the test."""
    work = tmp_path / "work"
    yield work
    agent_support.wait_until(
        lambda: not agent_support.processes_with(str(work)), "executor processes to end", 30
    )


def run_pingpong_task(checkpoint: bool) -> ai.MasterMessage:
    """RunTask for task t1 with the example's executor, as the master would send it."""
    task = mesos_pb2.TaskInfo(name="t1")
    task.task_id.value = "t1"
    task.resources.extend(TASK_RESOURCES.to_protos())
    info = executor_info(EXECUTOR_ID, None)
    message: ai.MasterMessage = agent_support.run_task(task, checkpoint=checkpoint, executor=info)
    return message


def to_executor(data: bytes) -> ai.MasterMessage:
    """A framework message for the executor."""
    message = ai.MasterMessage()
    message.framework_to_executor.framework_id.value = FW
    message.framework_to_executor.executor_id.value = EXECUTOR_ID
    message.framework_to_executor.data = data
    return message


def pongs(fake: Any) -> list[bytes]:
    """The framework messages the executor sent, in order."""
    return [m.executor_to_framework.data for m in fake.messages("executor_to_framework")]


def ack_until(master: Any, task_id: str, state: mesos_pb2.TaskState.ValueType) -> Any:
    """Acknowledge the task's updates as they come, until one in ``state`` arrives; that one.

    After an agent restart the agent resends an update whose acknowledgement it had not
    recorded, and holds the later ones behind it until that one is acknowledged.
    """
    acked: set[bytes] = set()

    def fresh() -> list[Any]:
        return [
            u
            for u in master.updates()
            if u.status.task_id.value == task_id and u.status.uuid not in acked
        ]

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        master.wait_for(fresh, f"an update of task {task_id}", deadline - time.monotonic())
        for update in fresh():
            master.acknowledge(update)
            acked.add(update.status.uuid)
            if update.status.state == state:
                return update
    raise AssertionError(f"no {mesos_pb2.TaskState.Name(state)} for task {task_id}")


def test_example_executor_on_a_real_agent(master: Any, work_dir: Path) -> None:
    agent = AgentProcess(master.address, work_dir, isolation="posix")
    try:
        master.send(run_pingpong_task(checkpoint=False))
        running = master.wait_and_ack("t1", mesos_pb2.TASK_RUNNING)
        assert running.status.source == mesos_pb2.TaskStatus.SOURCE_EXECUTOR
        assert running.status.executor_id.value == EXECUTOR_ID
        assert len(running.status.uuid) == 16
        for n in (1, 2):
            master.send(to_executor(f"ping {n}".encode()))
            master.wait_for(lambda n=n: len(pongs(master)) >= n, f"pong {n}")
        assert pongs(master) == [b"pong 1", b"pong 2"]
        master.send(to_executor(b"finish"))
        finished = master.wait_and_ack("t1", mesos_pb2.TASK_FINISHED)
        assert finished.status.message == "answered 2 pings"
        master.wait_for(lambda: master.messages("exited_executor"), "the executor to exit")
        [exited] = master.messages("exited_executor")
        assert exited.exited_executor.status == 0, agent.log()
    finally:
        agent.stop()


def test_executor_resubscribes_after_the_agent_restarts(master: Any, work_dir: Path) -> None:
    agent = AgentProcess(master.address, work_dir, isolation="posix")
    try:
        master.send(run_pingpong_task(checkpoint=True))
        master.wait_and_ack("t1", mesos_pb2.TASK_RUNNING)
        agent.crash()  # kill -9: the executor keeps running and resubscribes.
        agent = AgentProcess(master.address, work_dir, isolation="posix")
        master.wait_for(lambda: len(master.sessions) >= 2, "the agent to reregister")
        # Framework messages are best effort: one sent before the executor is back is
        # dropped, so ping until it answers.
        for _ in range(60):
            master.send(to_executor(b"ping 1"))
            try:
                master.wait_for(lambda: pongs(master), "a pong after the restart", timeout=1.0)
                break
            except AssertionError:
                continue
        assert pongs(master)[0] == b"pong 1"
        master.send(to_executor(b"finish"))
        finished = ack_until(master, "t1", mesos_pb2.TASK_FINISHED)
        assert finished.status.executor_id.value == EXECUTOR_ID
    finally:
        agent.stop()
